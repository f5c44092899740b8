"""ROAD, Remove And Debias (Rong, Leemann, Borisov, Kasneci & Kasneci, ICML 2022): the class probability as a
growing share of the pixels, most relevant first (MoRF) or least relevant first (LeRF), is removed by noisy linear
imputation, which fills the removed pixels from the kept ones so that the removal's shape does not tell the class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import splu

from cam_core.errors import CamError
from cam_core.evaluation.metrics import Curve, Model, pixel_ranks, probabilities

ORDERS = ("morf", "lerf")
# The authors' percentages, 10 % to 90 % of the pixels removed.
FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# The authors' noise: standard deviation 0.01 on images in [0, 1], before the normalisation.
PIXEL_NOISE = 0.01
# The authors' neighbour weights: (row offset, column offset, weight), direct neighbours 1/6, diagonal ones 1/12.
NEIGHBOURS = tuple((dr, dc, 1 / 6 if dr == 0 or dc == 0 else 1 / 12)
                   for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0))
LEAF = 64  # pixels below which the nested dissection stops splitting


def noisy_linear_imputation(
    model_input: torch.Tensor,
    removed: torch.Tensor,
    noise: float | Sequence[float] = PIXEL_NOISE,
    seed: int = 0,
) -> torch.Tensor:
    """The (1, C, H, W) input with the removed (H, W) pixels imputed: each one the weighted mean of its 8 neighbours
    inside the image (weights 1/6 direct, 1/12 diagonal), solved for all removed pixels at once per channel, plus
    Gaussian noise of standard deviation noise (one value, or one per channel) drawn from seed."""
    if model_input.ndim != 4 or model_input.shape[0] != 1:
        raise CamError(f"the model input must be one (1, C, H, W) image, not of shape {tuple(model_input.shape)}")
    channels, height, width = model_input.shape[1:]
    removed = torch.as_tensor(removed, dtype=torch.bool)
    if tuple(removed.shape) != (height, width):
        raise CamError(f"the removed pixels must be a ({height}, {width}) mask, not {tuple(removed.shape)}")
    spread = torch.as_tensor(noise, dtype=torch.float64).reshape(-1)
    if spread.numel() not in (1, channels) or bool((spread < 0).any()):
        raise CamError(f"noise must be one standard deviation ≥ 0 or one per channel ({channels}), not {noise!r}")
    mask = removed.numpy().ravel()
    unknown = np.flatnonzero(mask)
    if unknown.size == 0:
        return model_input.clone()
    if unknown.size == mask.size:
        raise CamError("noisy linear imputation needs at least one kept pixel")
    values = model_input[0].reshape(channels, -1).double().numpy()
    variable = np.full(mask.size, -1)
    variable[unknown] = np.arange(unknown.size)
    rows, columns = np.divmod(unknown, width)
    diagonal = np.zeros(unknown.size)
    right = np.zeros((unknown.size, channels))
    entries_i, entries_j, entries_w = [], [], []
    for dr, dc, weight in NEIGHBOURS:
        r, c = rows + dr, columns + dc
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        diagonal[inside] += weight
        equation = np.flatnonzero(inside)
        neighbour = r[inside] * width + c[inside]
        missing = mask[neighbour]
        entries_i.append(equation[missing])
        entries_j.append(variable[neighbour[missing]])
        entries_w.append(np.full(int(missing.sum()), -weight))
        right[equation[~missing]] += weight * values[:, neighbour[~missing]].T
    size = unknown.size
    order = np.concatenate(_dissection(rows, columns, np.arange(size)))
    position = np.empty(size, dtype=np.int64)
    position[order] = np.arange(size)
    system = coo_matrix(
        (np.concatenate([diagonal, *entries_w]),
         (position[np.concatenate([np.arange(size), *entries_i])],
          position[np.concatenate([np.arange(size), *entries_j])])),
        shape=(size, size),
    ).tocsc()
    # Symmetric and diagonally dominant (positive definite while a pixel is kept): no pivoting needed.
    factors = splu(system, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    solved = factors.solve(right[order]).reshape(size, channels)[position].T
    generator = torch.Generator().manual_seed(seed)
    drawn = torch.randn((channels, size), generator=generator, dtype=torch.float64) * spread.reshape(-1, 1)
    filled = torch.from_numpy(values.copy())
    filled[:, unknown] = torch.from_numpy(solved) + drawn
    return filled.reshape(1, channels, height, width).to(model_input.dtype)


def _dissection(rows: np.ndarray, columns: np.ndarray, members: np.ndarray) -> list[np.ndarray]:
    """A nested-dissection order of the pixels members (rows, columns: all pixels' coordinates): split along the
    longer side by the median line, which no 8-neighbour link crosses, both halves first and the line last, so that
    the factorisation of the system stays sparse."""
    if members.size <= LEAF:
        return [members]
    rows_in, columns_in = rows[members], columns[members]
    across = rows_in if np.ptp(rows_in) >= np.ptp(columns_in) else columns_in
    middle = int(np.median(across))
    low, high = members[across < middle], members[across > middle]
    if low.size == 0 or high.size == 0:
        return [members]
    return [*_dissection(rows, columns, low), *_dissection(rows, columns, high), members[across == middle]]


def road_curve(
    model: Model,
    model_input: torch.Tensor,
    saliency: np.ndarray,
    target: int,
    order: str = "morf",
    fractions: Sequence[float] = FRACTIONS,
    noise: float | Sequence[float] = PIXEL_NOISE,
    seed: int = 0,
    batch_size: int = 16,
) -> Curve:
    """The ROAD curve of a map: the class probability with each fraction of the model input's pixels removed by noisy
    linear imputation, most relevant first ("morf": lower area is better) or least relevant first ("lerf": higher
    is better); ties in pixel order, noise in the input's units."""
    if order not in ORDERS:
        raise CamError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    shares = np.asarray(fractions, dtype=np.float64)
    if shares.ndim != 1 or shares.size < 2 or not np.all((shares > 0) & (shares < 1)) or np.any(np.diff(shares) <= 0):
        raise CamError(f"fractions must be at least two increasing shares between 0 and 1, not {fractions!r}")
    rank = pixel_ranks(saliency, model_input)
    total = rank.numel()
    counts = np.round(shares * total).astype(np.int64)
    inputs = torch.cat([
        noisy_linear_imputation(model_input, rank < count if order == "morf" else rank >= total - count, noise, seed)
        for count in counts
    ])
    return Curve(f"road_{order}", shares, probabilities(model, inputs, target, batch_size))
