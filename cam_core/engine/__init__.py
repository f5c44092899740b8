"""The engine: an Explainer (one model, its replicas and its analysis cache) and the per-image Analysis that caches
activations, gradients per class and masked-input scores, so a method or class switch only re-runs the weighting."""
