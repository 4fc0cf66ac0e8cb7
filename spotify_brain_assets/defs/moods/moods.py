"""The mood layer: clusters of audio features, the next-track dataset, its classifier and report."""

from typing import Optional

import dagster as dg
import pandas as pd

from ...ml.assign import read_centroids
from ...ml.classifiers import mood_candidate, skipped_outcome
from ...ml.clusters import ClusterSettings, NotEnoughPlays, clusters_document, fit_mood_clusters
from ...ml.evaluation import MOOD_METRICS
from ...ml.mood_features import DEFAULT_WINDOW, TARGET, feature_columns
from ...ml.mood_features import mood_dataset as build_mood_dataset
from ...ml.model_store import previous_path
from ...plays.schema import is_demo
from ...plays.store import history_or_empty, load_plays
from ...resources import DataStore
from ...storage.files import CorruptFileError, keep_previous, parquet_metadata, read_parquet, write_json, write_parquet, writer_lock
from ..classifiers import (
    ORIGINS_KEY,
    TIMEZONE_KEY,
    ClassifierConfig,
    classifier_metadata,
    dataset_context,
    gate_result,
    model_in_use,
    evaluation_result,
    store_outcome,
)
from ..factory import listener_asset, listener_check, per_listener
from ..common import table, table_metadata

WINDOW_KEY = "spotify_brain.window"


class MoodClustersConfig(dg.Config):
    k_min: int = 3
    k_max: int = 15
    plays_per_cluster: int = 10  # K is at most (plays / this)
    selection_sample: int = 10_000  # seeded sample the candidate K's are fitted on
    silhouette_sample: int = 3_000  # seeded sample each silhouette is computed on
    match_radius: float = 0.15  # a refitted centroid this close to a previous one keeps its id
    seed: int = 42

    def settings(self) -> ClusterSettings:
        return ClusterSettings(
            k_min=self.k_min,
            k_max=self.k_max,
            plays_per_cluster=self.plays_per_cluster,
            selection_sample=self.selection_sample,
            silhouette_sample=self.silhouette_sample,
            match_radius=self.match_radius,
            seed=self.seed,
        )


@listener_asset(deps=["plays"], group_name="moods", kinds={"scikitlearn", "json"})
def mood_clusters(context: dg.AssetExecutionContext, config: MoodClustersConfig, store: DataStore) -> dg.MaterializeResult:
    """The listener's moods: KMeans clusters of valence, energy, danceability, acousticness,
    instrumentalness and normalized tempo over every play (`models/mood_clusters.json`).

    K (3–15, at most one per 10 plays) maximizes the silhouette on a seeded sample; the elbow of the
    inertia curve decides when no silhouette can. Refits keep the ids of moods that stayed (their
    centroids are matched to the previous file's), so dashboards and models do not reshuffle.
    Too few plays: nothing is fitted and the previous file stays.
    """
    paths = store.paths
    settings = config.settings()
    with writer_lock(paths.lock):
        plays_df, _ = load_plays(paths)
        previous = None
        try:
            previous = read_centroids(paths.mood_clusters)
        except CorruptFileError as exc:
            context.log.warning(f"previous clusters unreadable, ids start afresh: {exc}")
        try:
            fit = fit_mood_clusters(plays_df, settings, previous)
        except NotEnoughPlays as exc:
            context.log.warning(f"mood clusters not fitted: {exc}")
            return dg.MaterializeResult(metadata={"skipped": str(exc), "num_plays": len(plays_df), "kept_previous_file": previous is not None})
        origins = sorted(plays_df["origin"].astype("string").unique().tolist())
        doc = clusters_document(
            fit,
            settings,
            {"fitted_at": pd.Timestamp.now(tz="UTC").isoformat(), "demo_data": is_demo(plays_df["origin"]), "origins": origins},
        )
        keep_previous(paths.mood_clusters, previous_path(paths.mood_clusters))
        write_json(doc, paths.mood_clusters)

    chosen = fit.scores.set_index("k").loc[fit.k]
    clusters = pd.DataFrame([{k: c[k] for k in ("cluster_id", "label", "plays", "share")} for c in doc["clusters"]])
    return dg.MaterializeResult(
        metadata={
            "k": fit.k,
            "method": fit.method,
            "silhouette": float(chosen["silhouette"]) if pd.notna(chosen["silhouette"]) else None,
            "num_plays": len(plays_df),
            "matched_ids": ", ".join(str(m["cluster_id"]) for m in fit.matching["matched"]) or "none",
            "new_ids": ", ".join(map(str, fit.matching["new_ids"])) or "none",
            "retired_ids": ", ".join(map(str, fit.matching["retired_ids"])) or "none",
            "demo_data": doc["demo_data"],
            "clusters": table(clusters),
            "k_selection": table(fit.scores.round(4)),
            "path": dg.MetadataValue.path(str(paths.mood_clusters)),
        }
    )


class MoodDatasetConfig(dg.Config):
    window: int = DEFAULT_WINDOW  # plays of the session so far that predict the next play's mood


@listener_asset(deps=["history"], group_name="moods", kinds={"parquet"})
def mood_dataset(context: dg.AssetExecutionContext, config: MoodDatasetConfig, store: DataStore) -> dg.MaterializeResult:
    """Next-track training set (`processed/mood_nexttrack_train.parquet`): one row per position in a
    session where the last `window` plays predict the next play's mood cluster.

    Features: the window's moods (as integers and one-hot per lag), whether the mood changed between
    its plays, how long the newest mood has lasted, local hour/weekday, the position in the session
    and minutes since it began, and the window's audio features (mean, std, newest play's). The
    predecessor's `session_length` is dropped (unknown until the session ends): `session_position`
    is its causal counterpart. `played_at` is the target play's time, for the time split.
    """
    paths = store.paths
    with writer_lock(paths.lock):
        hist = history_or_empty(paths)
        centroids = read_centroids(paths.mood_clusters)
        ids = centroids.index.tolist() if centroids is not None else None
        ds = build_mood_dataset(hist, config.window, store.tz, ids)
        origins = ",".join(sorted(hist["origin"].astype("string").unique().tolist())) if len(hist) else ""
        write_parquet(ds, paths.mood_dataset, {WINDOW_KEY: str(config.window), ORIGINS_KEY: origins, TIMEZONE_KEY: store.timezone})
    per_target = ds[TARGET].value_counts().rename_axis("target_mood_cluster").reset_index(name="rows").sort_values("target_mood_cluster")
    if len(ds) == 0:
        context.log.warning(f"mood dataset is empty: no session has {config.window + 1} plays with assigned moods yet")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(ds),
            "sessions": int(ds["session_id"].nunique()),
            "window": config.window,
            "features": len(feature_columns(config.window, ids or [])),
            **({"first_target": str(ds["played_at"].min()), "last_target": str(ds["played_at"].max())} if len(ds) else {}),
            "demo_data": is_demo(hist["origin"]),
            "rows_per_target": table(per_target),
            "path": dg.MetadataValue.path(str(paths.mood_dataset)),
        }
    )


@listener_check(asset=mood_dataset, blocking=True)
def targets_are_current_clusters(store: DataStore) -> dg.AssetCheckResult:
    """Every target mood is a cluster of models/mood_clusters.json: labels are observed, never predicted."""
    paths = store.paths
    ds = read_parquet(paths.mood_dataset, [TARGET])
    if len(ds) == 0:
        return dg.AssetCheckResult(passed=True, metadata={"rows": 0})
    centroids = read_centroids(paths.mood_clusters)
    known = set(centroids.index.tolist()) if centroids is not None else set()
    unknown = sorted(set(ds[TARGET].unique().tolist()) - known)
    return dg.AssetCheckResult(passed=not unknown, metadata={"unknown_cluster_ids": ", ".join(map(str, unknown)) or "none"})


class MoodClassifierConfig(ClassifierConfig):
    feature_sets: list[str] = ["mood+audio", "mood"]  # XGBoost with and without the window's audio features


@listener_asset(deps=[mood_dataset, "history"], group_name="moods", kinds={"xgboost"})
def mood_classifier(context: dg.AssetExecutionContext, config: MoodClassifierConfig, store: DataStore) -> dg.MaterializeResult:
    """The next-track mood model in use (`models/mood_classifier.pkl`, XGBoost multi:softprob).

    A rolling-origin backtest (6 cut dates over the newest half of history; each fold's moods are
    clustered from the plays before its cut) trains XGBoost with and without the audio features
    and the baselines (majority, persistence, Markov chains over the last 1–3 moods) on each fold's
    past and scores them on its future. The better recipe, refit on every row, replaces the model
    in use only when its log loss is clearly lower than the best baseline's and the model in use's
    (the upper end of the 95% interval of the difference below zero, resampling sessions);
    otherwise the model in use or the best baseline serves. The `promotion_gate` check says which
    and why.
    """
    paths = store.paths
    with writer_lock(paths.lock):
        hist = history_or_empty(paths)
        centroids = read_centroids(paths.mood_clusters)
        window = int(parquet_metadata(paths.mood_dataset).get(WINDOW_KEY, DEFAULT_WINDOW))
        in_use, problem = model_in_use(paths.mood_classifier, "mood_classifier")
        settings = config.settings([("xgboost", f) for f in config.feature_sets])
        ctx = dataset_context(paths.mood_dataset, len(read_parquet(paths.mood_dataset, [TARGET])))
        if centroids is None:
            outcome = skipped_outcome("mood_classifier", "no mood clusters fitted yet", ctx, in_use is not None)
        else:
            outcome = mood_candidate(hist, centroids, window, settings, in_use, problem, ctx)
        report = store_outcome(paths, "mood_classifier", paths.mood_classifier, outcome, context.log)
    return dg.MaterializeResult(metadata=classifier_metadata(report, paths.mood_classifier))


@listener_check(asset=mood_classifier, blocking=True, name="promotion_gate")
def mood_promotion_gate(store: DataStore) -> dg.AssetCheckResult:
    """Was the newest candidate promoted? If not, what serves instead and why (not clearly better
    than the best baseline or the model in use on the backtest, or too little data)."""
    return gate_result(store.paths, "mood_classifier", store.paths.mood_classifier)


@listener_asset(deps=[mood_classifier], group_name="moods", kinds={"json"})
def mood_evaluation(context: dg.AssetExecutionContext, store: DataStore) -> dg.MaterializeResult:
    """How the newest mood candidate did on the backtest (`metrics/mood_evaluation.json`): log loss
    (deciding), accuracy, macro F1, one-vs-rest ROC-AUC and calibration error per fold and over all
    folds with 95% intervals, for every recipe and baseline; the differences that decided; a
    reliability table; and one plain sentence (`summary`) saying what serves and why. Appends to
    `metrics/metrics_history.json`.
    """
    _, meta = evaluation_result(context, store.paths, "mood_classifier", store.paths.mood_evaluation, "mood_model", MOOD_METRICS)
    return dg.MaterializeResult(metadata=meta)


@dg.definitions
def defs() -> dg.Definitions:
    return per_listener(mood_clusters, mood_dataset, targets_are_current_clusters, mood_classifier, mood_promotion_gate, mood_evaluation)
