"""Provenance: what a download or an output was made from (model, weights, image, method, settings, versions), as a
manifest.json, and re-running a map from it."""
