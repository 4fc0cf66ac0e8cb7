"""Nearest-centroid assignment of plays to mood clusters (the observed mood of a track)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from ..plays.schema import CLUSTER_FEATURES
from ..storage.files import CorruptFileError, read_json


def centroids_from_json(doc: dict, source: str = "mood_clusters.json") -> pd.DataFrame:
    """Centroids indexed by cluster_id, from the predecessor's schema ({"clusters": [{cluster_id, centroid}]})."""
    try:
        rows = {int(c["cluster_id"]): {f: float(c["centroid"][f]) for f in CLUSTER_FEATURES} for c in doc["clusters"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptFileError(f"{source} does not hold mood clusters in the expected schema ({exc!r})") from exc
    if not rows:
        raise CorruptFileError(f"{source} holds no clusters")
    return pd.DataFrame.from_dict(rows, orient="index")[CLUSTER_FEATURES].sort_index()


def read_centroids(path: Path) -> pd.DataFrame | None:
    """The fitted centroids by cluster id, or None when no clusters were fitted yet."""
    return centroids_from_json(read_json(path), str(path)) if path.exists() else None


def load_centroids(path: Path) -> tuple[pd.DataFrame, str] | None:
    """(centroids, fingerprint of the file) or None when no clusters were fitted yet."""
    centroids = read_centroids(path)
    if centroids is None:
        return None
    return centroids, hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def nearest_cluster(features: pd.DataFrame, centroids: pd.DataFrame) -> np.ndarray:
    """The id of the nearest centroid (Euclidean, over the six cluster features) for every row."""
    if len(features) == 0:
        return np.empty(0, dtype="int64")
    x = features[CLUSTER_FEATURES].to_numpy(dtype="float64")
    c = centroids[CLUSTER_FEATURES].to_numpy(dtype="float64")
    d2 = (x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None, :]
    return centroids.index.to_numpy(dtype="int64")[d2.argmin(axis=1)]
