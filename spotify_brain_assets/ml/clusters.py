"""Mood clusters: KMeans over the six cluster features, K chosen by silhouette, ids kept stable.

K is chosen on a fixed-size seeded sample (silhouette on an even smaller one, whose distances are
computed once for every K), so the choice costs the same on a month or on years of history; the
chosen K is then fitted on every play, started from the sample's centroids. Everything is seeded:
the same plays give the same clusters.

Cluster ids are kept across refits: the new centroids are matched one-to-one to the previous
file's centroids by minimum total distance (Hungarian assignment); a pair closer than
`match_radius` keeps the previous id, any other new cluster gets the smallest id that the previous
file did not use, and previous moods left unmatched are reported as retired.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

import numpy as np
import pandas as pd

from ..plays.schema import CLUSTER_FEATURES

# scikit-learn and SciPy are imported by the functions that use them, so loading the definitions stays fast
if TYPE_CHECKING:
    from sklearn.cluster import KMeans


class NotEnoughPlays(ValueError):
    """Too few plays (or too few distinct ones) for the smallest K allowed."""


@dataclass(frozen=True)
class ClusterSettings:
    k_min: int = 3
    k_max: int = 15
    plays_per_cluster: int = 10  # K is at most n / plays_per_cluster
    selection_sample: int = 10_000  # plays the candidate K's are fitted on
    silhouette_sample: int = 3_000  # plays each silhouette is computed on
    n_init: int = 3
    match_radius: float = 0.15  # a refitted centroid this close to a previous one keeps its id
    seed: int = 42

    def __post_init__(self) -> None:
        if not 2 <= self.k_min <= self.k_max:
            raise ValueError(f"K range must satisfy 2 <= k_min <= k_max, got {self.k_min}..{self.k_max}")
        if self.plays_per_cluster < 1 or self.selection_sample < 100 or self.silhouette_sample < 50:
            raise ValueError("plays_per_cluster >= 1, selection_sample >= 100 and silhouette_sample >= 50 are required")
        if self.match_radius < 0:
            raise ValueError("match_radius must be >= 0")


@dataclass
class ClusterFit:
    centroids: pd.DataFrame  # indexed by cluster_id, CLUSTER_FEATURES columns
    sizes: pd.Series  # plays per cluster_id
    k: int
    method: str  # "silhouette" or "elbow"
    scores: pd.DataFrame  # k, silhouette, inertia (on the selection sample)
    inertia: float  # of the final fit on every play
    matching: dict = field(default_factory=dict)


def mood_label(centroid: Mapping[str, float]) -> str:
    """The predecessor's rule: energy High/Low/Medium, valence positive/negative/neutral, acoustic."""
    energy, valence = float(centroid["energy"]), float(centroid["valence"])
    level = "High" if energy > 0.6 else "Low" if energy < 0.4 else "Medium"
    tone = "positive" if valence > 0.6 else "negative" if valence < 0.4 else "neutral"
    label = f"{level} energy, {tone}"
    return label + ", acoustic" if float(centroid["acousticness"]) > 0.5 else label


def unique_labels(centroids: pd.DataFrame) -> dict[int, str]:
    """Labels by cluster id; a label shared by several clusters gets " (2)", " (3)" in id order."""
    labels = {int(cid): mood_label(row) for cid, row in centroids.iterrows()}
    seen: dict[str, int] = {}
    out = {}
    for cid in sorted(labels):
        seen[labels[cid]] = seen.get(labels[cid], 0) + 1
        out[cid] = labels[cid] if seen[labels[cid]] == 1 else f"{labels[cid]} ({seen[labels[cid]]})"
    return out


def elbow_k(ks: np.ndarray, inertia: np.ndarray) -> int:
    """K at the maximum curvature of the inertia curve (both axes scaled to [0, 1])."""
    ks = np.asarray(ks, dtype="float64")
    inertia = np.asarray(inertia, dtype="float64")
    if len(ks) < 3:
        return int(ks[0])
    x = (ks - ks.min()) / (ks.max() - ks.min())
    span = inertia.max() - inertia.min()
    y = (inertia - inertia.min()) / span if span > 0 else np.zeros_like(inertia)
    h = x[1] - x[0]  # K steps by one
    dy = (y[2:] - y[:-2]) / (2 * h)  # central differences at the interior points
    d2y = (y[2:] - 2 * y[1:-1] + y[:-2]) / h**2
    curvature = np.abs(d2y) / (1 + dy**2) ** 1.5
    return int(ks[1 + int(np.argmax(curvature))])


def select_k(scores: pd.DataFrame) -> tuple[int, str]:
    """The K with the best silhouette; the elbow when no silhouette could be computed."""
    finite = scores[np.isfinite(scores["silhouette"])]
    if len(finite):
        best = finite.sort_values(["silhouette", "k"], ascending=[False, True]).iloc[0]
        return int(best["k"]), "silhouette"
    return elbow_k(scores["k"].to_numpy(), scores["inertia"].to_numpy()), "elbow"


def _seeded_sample(n: int, size: int, seed: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def _kmeans(k: int, seed: int, n_init: int, init="k-means++") -> KMeans:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=n_init if isinstance(init, str) else 1, init=init, random_state=seed)


def canonical_order(centroids: np.ndarray) -> np.ndarray:
    """A deterministic order of centroids (by energy, then valence, then the rest) for fresh ids."""
    cols = [CLUSTER_FEATURES.index(c) for c in ("energy", "valence", "danceability", "acousticness", "instrumentalness", "tempo_norm")]
    return np.lexsort([centroids[:, c] for c in reversed(cols)])


def match_cluster_ids(new: np.ndarray, previous: pd.DataFrame | None, radius: float) -> tuple[np.ndarray, dict]:
    """Ids for the rows of `new` (K × 6): previous ids where a centroid matches, fresh ids elsewhere."""
    k = len(new)
    ids = np.full(k, -1, dtype="int64")
    order = canonical_order(new)
    matched: list[dict] = []
    if previous is not None and len(previous):
        from scipy.optimize import linear_sum_assignment

        prev = previous[CLUSTER_FEATURES].to_numpy(dtype="float64")
        prev_ids = previous.index.to_numpy(dtype="int64")
        cost = np.sqrt(((new[:, None, :] - prev[None, :, :]) ** 2).sum(axis=2))
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols):
            if cost[r, c] <= radius:
                ids[r] = prev_ids[c]
                matched.append({"cluster_id": int(prev_ids[c]), "distance": round(float(cost[r, c]), 6)})
        taken = set(prev_ids.tolist())
    else:
        prev_ids = np.empty(0, dtype="int64")
        taken = set()
    fresh = (i for i in range(k + len(taken) + 1) if i not in taken)
    new_ids = []
    for r in order:
        if ids[r] < 0:
            ids[r] = next(fresh)
            new_ids.append(int(ids[r]))
    retired = sorted(set(prev_ids.tolist()) - set(ids.tolist()))
    info = {
        "previous_k": int(len(prev_ids)),
        "matched": sorted(matched, key=lambda m: m["cluster_id"]),
        "new_ids": sorted(new_ids),
        "retired_ids": [int(i) for i in retired],
        "match_radius": radius,
    }
    return ids, info


def fit_mood_clusters(features: pd.DataFrame, settings: ClusterSettings = ClusterSettings(), previous: pd.DataFrame | None = None) -> ClusterFit:
    """Fit the mood clusters on every row of `features` (CLUSTER_FEATURES, no missing values)."""
    missing = [c for c in CLUSTER_FEATURES if c not in features]
    if missing:
        raise ValueError(f"cluster features missing: {missing}")
    x = features[CLUSTER_FEATURES].to_numpy(dtype="float64")
    if not np.isfinite(x).all():
        raise ValueError("cluster features hold missing or infinite values; history should only hold plays with features")
    n = len(x)
    pick = _seeded_sample(n, settings.selection_sample, settings.seed)
    sample = x[pick]
    distinct = len(np.unique(sample.round(6), axis=0))
    k_max = min(settings.k_max, n // settings.plays_per_cluster, distinct)
    if k_max < settings.k_min:
        raise NotEnoughPlays(
            f"{n} plays ({distinct} distinct in the sample) allow at most K={max(k_max, 0)}, below k_min={settings.k_min}: "
            f"need at least {settings.k_min * settings.plays_per_cluster} plays with features"
        )
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import pairwise_distances, silhouette_score
    from threadpoolctl import threadpool_limits

    sil_pick = _seeded_sample(len(sample), settings.silhouette_sample, settings.seed + 1)
    rows, fitted = [], {}
    # one thread: these fits are small, and OpenMP threads waiting on each other cost more than they
    # save (measured 10x slower with two threads on a busy 2-core machine)
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        distances = pairwise_distances(sample[sil_pick])  # the silhouette sample's, once for every K
        for k in range(settings.k_min, k_max + 1):
            km = _kmeans(k, settings.seed, settings.n_init).fit(sample)
            labels = km.labels_[sil_pick]
            n_labels = len(np.unique(labels))
            sil = float(silhouette_score(distances, labels, metric="precomputed")) if 2 <= n_labels < len(sil_pick) else float("nan")
            rows.append({"k": k, "silhouette": sil, "inertia": float(km.inertia_)})
            fitted[k] = km.cluster_centers_
        scores = pd.DataFrame(rows)
        k, method = select_k(scores)
        final = _kmeans(k, settings.seed, 1, init=fitted[k]).fit(x)
    centers = final.cluster_centers_
    ids, matching = match_cluster_ids(centers, previous, settings.match_radius)
    centroids = pd.DataFrame(centers, columns=CLUSTER_FEATURES, index=pd.Index(ids, name="cluster_id")).sort_index()
    sizes = pd.Series(np.bincount(final.labels_, minlength=k), index=ids).sort_index()
    return ClusterFit(centroids, sizes, k, method, scores, float(final.inertia_), matching)


def clusters_document(fit: ClusterFit, settings: ClusterSettings, extra: dict) -> dict:
    """models/mood_clusters.json: the predecessor's schema plus how the fit was chosen."""
    labels = unique_labels(fit.centroids)
    total = int(fit.sizes.sum())
    clusters = [
        {
            "cluster_id": int(cid),
            "label": labels[int(cid)],
            "centroid": {f: round(float(row[f]), 6) for f in CLUSTER_FEATURES},
            "plays": int(fit.sizes[cid]),
            "share": round(float(fit.sizes[cid]) / total, 6) if total else 0.0,
        }
        for cid, row in fit.centroids.iterrows()
    ]
    return {
        "optimal_k": int(fit.k),
        "clusters": clusters,
        **extra,
        "num_plays": total,
        "features": CLUSTER_FEATURES,
        "selection": {
            "method": fit.method,
            "k_range": [settings.k_min, settings.k_max],
            "plays_per_cluster": settings.plays_per_cluster,
            "selection_sample": settings.selection_sample,
            "silhouette_sample": settings.silhouette_sample,
            "seed": settings.seed,
            "scores": [
                {"k": int(r.k), "silhouette": round(float(r.silhouette), 6) if np.isfinite(r.silhouette) else None, "inertia": round(float(r.inertia), 6)}
                for r in fit.scores.itertuples()
            ],
            "final_inertia": round(fit.inertia, 6),
        },
        "id_matching": fit.matching,
    }


def fold_centroids(features: pd.DataFrame, k: int, sample: int = 5_000, seed: int = 42) -> np.ndarray:
    """K centroids fitted on (a seeded sample of) `features`: a backtest fold's moods, fitted on the
    plays before its cut with the K chosen on all plays (choosing K again per fold would cost a
    silhouette sweep each, and K moves little as history grows)."""
    x = features[CLUSTER_FEATURES].to_numpy(dtype="float64")
    sample_x = x[_seeded_sample(len(x), sample, seed)]
    k = min(k, len(np.unique(sample_x.round(6), axis=0)))
    if k < 1:
        raise NotEnoughPlays("no plays before the cut to fit clusters on")
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _kmeans(k, seed, 2).fit(sample_x).cluster_centers_
