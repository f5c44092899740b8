"""CAM Explorer's engine: explain an image classifier's decision with class activation maps.

    from cam_core import Explainer
    ex = Explainer("mobilenet_v2")
    an = ex.analyze(image)
    res = an.cam("gradcam", target=285)
"""

from cam_core.engine.analysis import Analysis, CamResult
from cam_core.engine.explainer import Explainer
from cam_core.errors import CamError, ImageError, ModelUnavailableError
from cam_core.evaluation.sanity import SanityReport, randomisation_check
from cam_core.evaluation.scoring import MapScores, score_map
from cam_core.models.specs import embedded_model_names, read_specs
from cam_core.registry import MethodCard, Param, methods

from . import methods as _method_modules  # noqa: F401 - registers every method; `methods` below is the function

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
