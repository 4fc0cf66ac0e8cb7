"""Mood clusters: the label rule, K selection, determinism and stable ids across refits."""

import numpy as np
import pandas as pd
import pytest

from spotify_brain_assets.ml.clusters import (
    ClusterSettings,
    NotEnoughPlays,
    _kmeans,
    _seeded_sample,
    clusters_document,
    elbow_k,
    fit_mood_clusters,
    match_cluster_ids,
    mood_label,
    select_k,
    unique_labels,
)
from spotify_brain_assets.plays.schema import CLUSTER_FEATURES

pytestmark = pytest.mark.fast  # pure logic

CENTRES = np.array(
    [
        [0.85, 0.80, 0.80, 0.10, 0.05, 0.50],  # High energy, positive
        [0.20, 0.25, 0.40, 0.80, 0.10, 0.35],  # Low energy, negative, acoustic
        [0.50, 0.50, 0.45, 0.30, 0.90, 0.45],  # Medium energy, neutral
        [0.15, 0.90, 0.50, 0.05, 0.50, 0.60],  # High energy, negative
        [0.70, 0.30, 0.60, 0.70, 0.00, 0.30],  # Low energy, positive, acoustic
    ]
)


def blobs(which: list[int], per: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = np.concatenate([CENTRES[i] + rng.normal(0, 0.04, (per, 6)) for i in which])
    return pd.DataFrame(x, columns=CLUSTER_FEATURES)


def nearest_centre(centroids: pd.DataFrame) -> dict[int, int]:
    c = centroids[CLUSTER_FEATURES].to_numpy()
    d = ((c[:, None, :] - CENTRES[None, :, :]) ** 2).sum(axis=2)
    return dict(zip(centroids.index.tolist(), d.argmin(axis=1).tolist()))


@pytest.mark.parametrize(
    "centroid, label",
    [
        ({"energy": 0.61, "valence": 0.61, "acousticness": 0.1}, "High energy, positive"),
        ({"energy": 0.6, "valence": 0.4, "acousticness": 0.5}, "Medium energy, neutral"),
        ({"energy": 0.39, "valence": 0.39, "acousticness": 0.51}, "Low energy, negative, acoustic"),
        ({"energy": 0.73, "valence": 0.34, "acousticness": 0.16}, "High energy, negative"),
    ],
)
def test_label_rule_is_the_predecessors(centroid, label):
    assert mood_label(centroid) == label


def test_labels_shared_by_two_clusters_are_numbered_in_id_order():
    centroids = pd.DataFrame([CENTRES[0], CENTRES[0] + 0.01, CENTRES[1]], columns=CLUSTER_FEATURES, index=[4, 1, 2])
    assert unique_labels(centroids) == {1: "High energy, positive", 2: "Low energy, negative, acoustic", 4: "High energy, positive (2)"}


def test_silhouette_finds_the_number_of_moods_and_the_fit_is_deterministic():
    data = blobs([0, 1, 2, 3])
    first = fit_mood_clusters(data)
    again = fit_mood_clusters(data)
    assert first.k == 4 and first.method == "silhouette"
    assert first.scores["k"].tolist() == list(range(3, 16))
    pd.testing.assert_frame_equal(first.centroids, again.centroids)
    assert first.sizes.tolist() == [300] * 4
    assert sorted(nearest_centre(first.centroids).values()) == [0, 1, 2, 3]


def test_silhouettes_on_distances_computed_once_equal_one_computation_per_k():
    """The sweep scores every K against one distance matrix: the same scores and K as computing the
    silhouette from the features for each K, as the sweep used to."""
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(3)
    data = pd.concat([blobs([0, 1, 2, 3, 4], per=300, seed=2), pd.DataFrame(rng.uniform(0, 1, (700, 6)), columns=CLUSTER_FEATURES)])
    settings = ClusterSettings(k_max=8, selection_sample=1_500, silhouette_sample=500)
    fit = fit_mood_clusters(data, settings)
    sample = data[CLUSTER_FEATURES].to_numpy()[_seeded_sample(len(data), settings.selection_sample, settings.seed)]
    pick = _seeded_sample(len(sample), settings.silhouette_sample, settings.seed + 1)
    old = [silhouette_score(sample[pick], _kmeans(k, settings.seed, settings.n_init).fit(sample).labels_[pick]) for k in range(3, 9)]
    np.testing.assert_allclose(fit.scores["silhouette"], old, rtol=1e-9)
    assert fit.k == 3 + int(np.argmax(old)) and fit.method == "silhouette"


def test_k_is_capped_at_one_cluster_per_ten_plays_and_tiny_histories_are_refused():
    fit = fit_mood_clusters(blobs([0, 1, 2, 3, 4], per=8))  # 40 plays: K in 3..4 only
    assert fit.scores["k"].tolist() == [3, 4]
    with pytest.raises(NotEnoughPlays, match="need at least 30 plays"):
        fit_mood_clusters(blobs([0, 1], per=10))


def test_ids_survive_a_refit_on_more_and_reordered_plays():
    base = fit_mood_clusters(blobs([0, 1, 2, 3], seed=1))
    grown = pd.concat([blobs([0, 1, 2, 3], seed=2), blobs([0, 1, 2, 3], per=30, seed=3)]).sample(frac=1, random_state=5)
    refit = fit_mood_clusters(grown, previous=base.centroids)
    assert nearest_centre(refit.centroids) == nearest_centre(base.centroids)
    assert [m["cluster_id"] for m in refit.matching["matched"]] == [0, 1, 2, 3]
    assert refit.matching["new_ids"] == [] and refit.matching["retired_ids"] == []


def test_a_new_mood_gets_a_fresh_id_and_a_vanished_one_is_retired():
    base = fit_mood_clusters(blobs([0, 1, 2, 3], seed=1))
    moods = nearest_centre(base.centroids)
    grown = fit_mood_clusters(blobs([0, 1, 2, 3, 4], seed=2), previous=base.centroids)
    after = nearest_centre(grown.centroids)
    assert {cid: after[cid] for cid in moods} == moods
    assert grown.matching["new_ids"] == [4] and after[4] == 4
    shrunk = fit_mood_clusters(blobs([0, 1, 2], seed=2), previous=base.centroids)
    gone = next(cid for cid, centre in moods.items() if centre == 3)
    assert shrunk.matching["retired_ids"] == [gone]
    assert {cid: nearest_centre(shrunk.centroids)[cid] for cid in shrunk.centroids.index} == {c: moods[c] for c in shrunk.centroids.index}


def test_matching_is_one_to_one_and_respects_the_radius():
    previous = pd.DataFrame(CENTRES[:2], columns=CLUSTER_FEATURES, index=[7, 3])
    new = np.vstack([CENTRES[1] + 0.01, CENTRES[0] + 0.01, CENTRES[2]])
    ids, info = match_cluster_ids(new, previous, radius=0.15)
    assert ids.tolist()[:2] == [3, 7] and ids[2] not in (3, 7) and info["new_ids"] == [int(ids[2])]
    far, _ = match_cluster_ids(CENTRES[:2] + 0.3, previous, radius=0.15)
    assert set(far.tolist()).isdisjoint({3, 7})


def test_elbow_is_the_fallback_when_no_silhouette_exists():
    ks = np.arange(3, 11)
    inertia = np.array([1000, 400, 120, 110, 100, 92, 85, 80], dtype=float)
    assert elbow_k(ks, inertia) == 5
    scores = pd.DataFrame({"k": ks, "silhouette": np.nan, "inertia": inertia})
    assert select_k(scores) == (5, "elbow")
    scores["silhouette"] = [0.2, 0.5, 0.5, 0.1, 0.1, 0.1, 0.1, 0.1]
    assert select_k(scores) == (4, "silhouette")  # ties go to the smaller K


def test_document_keeps_the_predecessors_schema_and_adds_the_selection():
    data = blobs([0, 1, 2])
    fit = fit_mood_clusters(data)
    doc = clusters_document(fit, ClusterSettings(), {"fitted_at": "2026-01-01T00:00:00+00:00", "demo_data": False})
    assert doc["optimal_k"] == 3 and len(doc["clusters"]) == 3
    first = doc["clusters"][0]
    assert set(first) >= {"cluster_id", "label", "centroid"} and set(first["centroid"]) == set(CLUSTER_FEATURES)
    assert doc["num_plays"] == 900 and doc["fitted_at"].startswith("2026")
    assert [s["k"] for s in doc["selection"]["scores"]] == list(range(3, 16))
    assert all(s["silhouette"] is not None and s["inertia"] > 0 for s in doc["selection"]["scores"])
