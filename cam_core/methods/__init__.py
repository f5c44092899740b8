"""Every CAM method; importing this package registers them all (one module per family, in menu order)."""

from . import gradient  # noqa: F401, I001
from . import gradient_more  # noqa: F401
from . import eigen  # noqa: F401
from . import headless  # noqa: F401
from . import score  # noqa: F401
from . import cluster  # noqa: F401
from . import multilayer  # noqa: F401
from . import guided  # noqa: F401
from . import attention  # noqa: F401
from . import perturbation  # noqa: F401
