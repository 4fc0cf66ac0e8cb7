"""The session layer: the hourly session-start dataset, its classifier and report."""

import dagster as dg
import pandas as pd

from ...ml.classifiers import session_candidate
from ...ml.evaluation import SESSION_METRICS
from ...ml.session_features import FEATURE_COLUMNS, KEY_COLUMNS, LEADS, TARGET, session_dataset as build_session_dataset
from ...plays.schema import is_demo
from ...plays.store import history_or_empty
from ...resources import DataStore
from ...storage.files import read_parquet, write_parquet, writer_lock
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


class SessionDatasetConfig(dg.Config):
    origin_step_hours: int = 3  # a training prediction time every this many hours (at a seeded random minute)
    seed: int = 42


@listener_asset(deps=["history"], group_name="sessions", kinds={"parquet"})
def session_dataset(context: dg.AssetExecutionContext, config: SessionDatasetConfig, store: DataStore) -> dg.MaterializeResult:
    """Session-start training set (`processed/session_start_train.parquet`): the day-ahead outlook as
    it is served. A prediction time (`origin`) every 3 hours at a random minute, and for each the
    24 local hours after it: target 1 when a listening session started in that hour.

    Every feature is known at the prediction time: how far ahead the hour is, its local hour and
    weekday, how often a session started in it over the last 7 and 30 days and in its hour of the
    week over the last 4 and 12 weeks, the smoothed hour-of-day and hour-of-week rates, whether a
    session is running, minutes since the last play and since the last session ended, session
    starts in the last 24 hours and 7 days, recent session durations and plays. Hours are the
    listener's (SPOTIFY_BRAIN_TIMEZONE).
    """
    paths = store.paths
    with writer_lock(paths.lock):
        hist = history_or_empty(paths)
        ds = build_session_dataset(hist, store.tz, config.origin_step_hours, config.seed)
        origins = ",".join(sorted(hist["origin"].astype("string").unique().tolist())) if len(hist) else ""
        write_parquet(ds, paths.session_dataset, {ORIGINS_KEY: origins, TIMEZONE_KEY: store.timezone})
    by_hour = ds.groupby("hour")[TARGET].agg(["size", "sum"]).reset_index() if len(ds) else pd.DataFrame(columns=["hour", "size", "sum"])
    by_hour.columns = ["local_hour", "rows", "session_starts"]
    return dg.MaterializeResult(
        metadata={
            **table_metadata(ds),
            "prediction_times": int(ds["origin"].nunique()) if len(ds) else 0,
            "positives": int(ds[TARGET].sum()) if len(ds) else 0,
            **({"positive_rate": float(ds[TARGET].mean()), "first_origin": str(ds["origin"].min()), "last_origin": str(ds["origin"].max())} if len(ds) else {}),
            "timezone": store.timezone,
            "demo_data": is_demo(hist["origin"]),
            "session_starts_by_local_hour": table(by_hour, max_rows=24),
            "path": dg.MetadataValue.path(str(paths.session_dataset)),
        }
    )


@listener_check(asset=session_dataset, blocking=True)
def one_row_per_hour_ahead(store: DataStore) -> dg.AssetCheckResult:
    """Every prediction time has its 24 consecutive hours ahead, each starting at or after it and
    within a day, and no feature is missing."""
    ds = read_parquet(store.paths.session_dataset, ["origin", "hour_start", TARGET] + FEATURE_COLUMNS)
    if len(ds) == 0:
        return dg.AssetCheckResult(passed=True, metadata={"rows": 0})
    per_origin = ds.groupby("origin").size()
    lead = (ds["hour_start"] - ds["origin"]).dt.total_seconds() / 3600
    steps = ds.groupby("origin")["hour_start"].diff().dropna().dt.total_seconds()
    bad = int((per_origin != LEADS).sum()) + int(((lead < 0) | (lead >= LEADS)).sum()) + int((steps != 3600).sum())
    nulls = int(ds[FEATURE_COLUMNS].isna().sum().sum())
    return dg.AssetCheckResult(passed=bad == 0 and nulls == 0, metadata={"irregular_rows": bad, "missing_values": nulls, "prediction_times": len(per_origin)})


class SessionClassifierConfig(ClassifierConfig):
    families: list[str] = ["xgboost", "logistic"]  # the model families the backtest compares


@listener_asset(deps=[session_dataset], group_name="sessions", kinds={"xgboost"})
def session_classifier(context: dg.AssetExecutionContext, config: SessionClassifierConfig, store: DataStore) -> dg.MaterializeResult:
    """The session-start model in use (`models/session_classifier.pkl`): the probability that a
    listening session starts in each of the next 24 local hours, as known at prediction time.

    A rolling-origin backtest (6 cut dates over the newest half of history, training on all the
    history before each cut) trains XGBoost and a regularized logistic regression beside the
    hour-of-day, hour-of-week, hour × weekend and "session running" priors, and scores them on each
    fold's future. The better family, refit on every row, replaces the model in use only when its
    log loss and Brier score are both clearly lower than the best prior's and the model in use's
    (the upper end of the 95% interval of the difference below zero, resampling days); otherwise
    the model in use or the best prior serves. The `promotion_gate` check says which and why.
    """
    paths = store.paths
    with writer_lock(paths.lock):
        ds = read_parquet(paths.session_dataset, KEY_COLUMNS + [TARGET] + FEATURE_COLUMNS)
        in_use, problem = model_in_use(paths.session_classifier, "session_classifier")
        settings = config.settings([(f, "session") for f in config.families])
        outcome = session_candidate(ds, settings, in_use, problem, dataset_context(paths.session_dataset, len(ds)))
        report = store_outcome(paths, "session_classifier", paths.session_classifier, outcome, context.log)
    return dg.MaterializeResult(metadata=classifier_metadata(report, paths.session_classifier))


@listener_check(asset=session_classifier, blocking=True, name="promotion_gate")
def session_promotion_gate(store: DataStore) -> dg.AssetCheckResult:
    """Was the newest candidate promoted? If not, what serves instead and why (not clearly better
    than the best prior or the model in use on the backtest, or too little data)."""
    return gate_result(store.paths, "session_classifier", store.paths.session_classifier)


@listener_asset(deps=[session_classifier], group_name="sessions", kinds={"json"})
def session_evaluation(context: dg.AssetExecutionContext, store: DataStore) -> dg.MaterializeResult:
    """How the newest session candidate did on the backtest (`metrics/session_evaluation.json`): log
    loss and Brier score (deciding), PR-AUC, ROC-AUC and calibration error per fold and over all
    folds with 95% intervals, for both families and every prior; scores by hours ahead; the
    differences that decided; a reliability table; and one plain sentence (`summary`) saying what
    serves and why. Appends to `metrics/metrics_history.json`.
    """
    report, meta = evaluation_result(
        context, store.paths, "session_classifier", store.paths.session_evaluation, "session_model", SESSION_METRICS
    )
    if report["status"] == "trained":
        meta["by_hours_ahead"] = table(pd.DataFrame(report["by_lead"]))
    return dg.MaterializeResult(metadata=meta)


@dg.definitions
def defs() -> dg.Definitions:
    return per_listener(session_dataset, one_row_per_hour_ahead, session_classifier, session_promotion_gate, session_evaluation)
