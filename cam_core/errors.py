"""Errors that carry a message meant for the person using CAM Explorer."""


class CamError(ValueError):
    """A problem the user can fix (bad input, unknown name, unsupported combination)."""


class ModelUnavailableError(CamError):
    """A models.yaml entry that cannot be loaded on this machine."""


class ImageError(CamError):
    """An input that is not a usable image."""
