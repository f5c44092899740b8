"""CAM Explorer's engine: explain an image classifier's decision with class activation maps.

    from cam_core import Explainer
    ex = Explainer("mobilenet_v2")
    an = ex.analyze(image)
    res = an.cam("gradcam", target=285)
"""

from . import methods as _method_modules  # noqa: F401 - registers every method; `methods` below is the function
from .analysis import Analysis, CamResult
from .errors import CamError, ImageError, ModelUnavailableError
from .evaluation import MapScores, score_map
from .explainer import Explainer
from .models import embedded_model_names, read_specs
from .registry import MethodCard, Param, methods
from .sanity import SanityReport, randomisation_check

__all__ = [
    "Analysis",
    "CamError",
    "CamResult",
    "Explainer",
    "ImageError",
    "MapScores",
    "MethodCard",
    "ModelUnavailableError",
    "Param",
    "SanityReport",
    "embedded_model_names",
    "methods",
    "randomisation_check",
    "read_specs",
    "score_map",
]
