"""k-means clusters of a layer's channels: the groundwork of Group-, Cluster- and Cosine-CAM."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from cam_core.errors import CamError

ROWS = ("raw", "l2")


@dataclass(frozen=True)
class ChannelClusters:
    """Channels grouped by k-means on their flattened maps."""

    k: int
    rows: str
    labels: np.ndarray
    sizes: np.ndarray
    maps: np.ndarray
    projection: np.ndarray
    explained: np.ndarray

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.labels, self.sizes, self.maps, self.projection, self.explained))


def channel_rows(activations: torch.Tensor, rows: str) -> np.ndarray:
    """The (C, h·w) matrix of flattened channel maps; rows="l2" scales each row to unit length (no centring), so
    Euclidean k-means on it behaves like k-means on cosine distance."""
    if rows not in ROWS:
        raise CamError(f"rows must be one of {', '.join(ROWS)}, not {rows!r}")
    matrix = activations.reshape(activations.shape[0], -1).double().numpy()
    if rows == "l2":
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return matrix


def check_group_count(k: int, channels: int, minimum: int = 1, name: str = "k", where: str = "") -> None:
    """The one rule for a number of channel groups: between minimum and the layer's channels (a CamError
    naming both otherwise); where names the layer or method in the message."""
    if not minimum <= k <= channels:
        raise CamError(f"{name} must be between {minimum:g} and the {channels} channels{where}, not {k}")


def cluster_channels(activations: torch.Tensor, k: int, rows: str = "raw", seed: int = 0) -> ChannelClusters:
    """k-means (k-means++ start, fixed seed) over the channels' maps; each cluster's summed map; a 2-D PCA of the
    rows for plotting."""
    channels = activations.shape[0]
    check_group_count(k, channels, where=" of the layer")
    matrix = channel_rows(activations, rows)
    distinct = len(np.unique(matrix.round(12), axis=0))
    if k > distinct:
        raise CamError(f"only {distinct} channels differ from each other at this layer, so k can be at most {distinct}")
    labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(matrix).astype(np.int64)
    values = activations.double().numpy()
    maps = np.stack([values[labels == c].sum(axis=0) for c in range(k)]).astype(np.float32)
    components = min(2, matrix.shape[1], channels)
    pca = PCA(n_components=components, random_state=seed).fit(matrix)
    projection = pca.transform(matrix).astype(np.float32)
    if components < 2:
        projection = np.pad(projection, ((0, 0), (0, 2 - components)))
    return ChannelClusters(
        k=k,
        rows=rows,
        labels=labels,
        sizes=np.bincount(labels, minlength=k),
        maps=maps,
        projection=projection,
        explained=pca.explained_variance_ratio_.astype(np.float32),
    )
