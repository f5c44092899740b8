"""How concentrated a map is: its Gini index (sparseness) and its entropy (complexity)."""

from __future__ import annotations

import numpy as np

from cam_core.evaluation.pointing import as_map


def gini(saliency: np.ndarray) -> float:
    """Gini index of the map's values (Chalasani et al. 2020, after Hurley & Rickard 2009), 0..1: 0 when every pixel
    has the same value, towards 1 when one pixel holds it all; nan for a blank (all-zero) map."""
    values = np.sort(as_map(saliency).ravel())
    count, total = values.size, values.sum()
    if total == 0:
        return float("nan")
    ranks = np.arange(1, count + 1)
    return float(np.sum((2 * ranks - count - 1) * values) / (count * total))


def entropy(saliency: np.ndarray) -> float:
    """Shannon entropy (nats) of the map normalised to sum 1 (0 log 0 = 0): 0 when one pixel holds it all, log(H·W)
    when every pixel has the same value; nan for a blank (all-zero) map."""
    values = as_map(saliency).ravel()
    total = values.sum()
    if total == 0:
        return float("nan")
    shares = values[values > 0] / total
    return float(-np.sum(shares * np.log(shares)))
