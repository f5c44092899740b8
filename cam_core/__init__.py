"""CAM Explorer's engine: explain an image classifier's decision with class activation maps.

    from cam_core import Explainer
    ex = Explainer("mobilenet_v2")
    an = ex.analyze(image)
    res = an.cam("gradcam", target=285)
"""

from . import methods as _method_modules  # noqa: F401 - registers every method; `methods` below is the function
from .analysis import Analysis, CamResult
from .errors import CamError, ImageError, ModelUnavailableError
from .explainer import Explainer
from .models import embedded_model_names, read_specs
from .registry import MethodCard, Param, methods

__all__ = [
    "Analysis",
    "CamError",
    "CamResult",
    "Explainer",
    "ImageError",
    "MethodCard",
    "ModelUnavailableError",
    "Param",
    "embedded_model_names",
    "methods",
    "read_specs",
]
