"""The session layer: the hourly session-start dataset, its classifier and report."""

from typing import Optional

import dagster as dg
import numpy as np
import pandas as pd

from ..ml.classifiers import session_candidate
from ..ml.evaluation import SESSION_METRICS
from ..ml.session_features import FEATURE_COLUMNS, TARGET, session_dataset as build_session_dataset
from ..plays.schema import is_demo
from ..plays.store import history_or_empty
from ..resources import DataStore
from ..storage.files import read_parquet, write_parquet, writer_lock
from .classifiers import (
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
from .common import WRITER_POOL, md_table
from .history import history


@dg.asset(deps=[history], group_name="sessions", kinds={"parquet"}, pool=WRITER_POOL)
def session_dataset(context: dg.AssetExecutionContext, store: DataStore) -> dg.MaterializeResult:
    """Session-start training set (`processed/session_start_train.parquet`): one row per local hour
    from the first play to the last, target 1 when a listening session started in that hour.

    Features use only what was known before the hour began: local hour/weekday/day of month, on
    how many of the previous 7 and 30 days a session started in this hour, hours since the last
    session start, the recent sessions' mean duration, and plays in the last 7 and 30 days. Hours
    are the listener's (SPOTIFY_BRAIN_TIMEZONE): a daylight-saving day has 23 or 25 rows.
    """
    paths = store.paths
    with writer_lock(paths.lock):
        hist = history_or_empty(paths)
        ds = build_session_dataset(hist, store.tz)
        origins = ",".join(sorted(hist["origin"].astype("string").unique().tolist())) if len(hist) else ""
        write_parquet(ds, paths.session_dataset, {ORIGINS_KEY: origins, TIMEZONE_KEY: store.timezone})
    by_hour = ds.groupby("hour")[TARGET].agg(["size", "sum"]).reset_index() if len(ds) else pd.DataFrame(columns=["hour", "size", "sum"])
    by_hour.columns = ["local_hour", "hours", "session_starts"]
    return dg.MaterializeResult(
        metadata={
            "rows": len(ds),
            "positives": int(ds[TARGET].sum()) if len(ds) else 0,
            "positive_rate": float(ds[TARGET].mean()) if len(ds) else 0.0,
            "first_hour": str(ds["hour_start"].min()) if len(ds) else "none",
            "last_hour": str(ds["hour_start"].max()) if len(ds) else "none",
            "timezone": store.timezone,
            "demo_data": is_demo(hist["origin"]),
            "session_starts_by_local_hour": md_table(by_hour, max_rows=24),
            "path": dg.MetadataValue.path(str(paths.session_dataset)),
        }
    )


@dg.asset_check(asset=session_dataset, blocking=True)
def one_row_per_hour(store: DataStore) -> dg.AssetCheckResult:
    """The rows are consecutive hours without gaps or repeats, and no feature is missing except
    `time_since_last_session` before the first session."""
    ds = read_parquet(store.paths.session_dataset, ["hour_start", TARGET])
    if len(ds) == 0:
        return dg.AssetCheckResult(passed=True, metadata={"rows": 0})
    steps = np.diff(pd.DatetimeIndex(pd.to_datetime(ds["hour_start"], utc=True)).as_unit("ms").asi8)
    bad_steps = int((steps != 3_600_000).sum())
    nulls = int(ds[[c for c in FEATURE_COLUMNS if c != "time_since_last_session"]].isna().sum().sum())
    return dg.AssetCheckResult(passed=bad_steps == 0 and nulls == 0, metadata={"irregular_steps": bad_steps, "missing_values": nulls})


class SessionClassifierConfig(ClassifierConfig):
    gate_metric: str = "pr_auc"  # the held-out metric the gate compares (pr_auc, roc_auc, f1, calibration_error)
    window_days: Optional[int] = 90  # a rolling window: habits change, old hours mislead


@dg.asset(deps=[session_dataset], group_name="sessions", kinds={"xgboost"}, pool=WRITER_POOL)
def session_classifier(context: dg.AssetExecutionContext, config: SessionClassifierConfig, store: DataStore) -> dg.MaterializeResult:
    """The session-start model in use (`models/session_classifier.pkl`, XGBoost binary:logistic):
    the probability that a listening session starts in a given local hour.

    Trained on a rolling 90-day window: its older 80% trains (early-stopped on the newest tenth of
    that), its newest 20% is held out and scores the candidate against always-negative, the
    hour-of-day prior, the hour-of-week prior and the model in use, by PR-AUC. The candidate
    (`models/candidates/`) is promoted only when it is not worse than any of them; the
    `promotion_gate` check says which happened and why.
    """
    paths = store.paths
    with writer_lock(paths.lock):
        ds = read_parquet(paths.session_dataset, [TARGET, "hour_start"] + FEATURE_COLUMNS)
        in_use, problem = model_in_use(paths.session_classifier, "session_classifier")
        outcome = session_candidate(ds, config.xgb(), config.gate(config.gate_metric, config.window_days), in_use, problem, dataset_context(paths.session_dataset, len(ds)))
        report = store_outcome(paths, "session_classifier", paths.session_classifier, outcome, context.log)
    return dg.MaterializeResult(metadata=classifier_metadata(report, paths.session_classifier))


@dg.asset_check(asset=session_classifier, blocking=True, name="promotion_gate")
def session_promotion_gate(store: DataStore) -> dg.AssetCheckResult:
    """Was the newest candidate promoted? If not, why the model in use stays (worse than the best
    baseline or than the model in use on the held-out window, or too little data)."""
    return gate_result(store.paths, "session_classifier", store.paths.session_classifier)


@dg.asset(deps=[session_classifier], group_name="sessions", kinds={"json"}, pool=WRITER_POOL)
def session_evaluation(context: dg.AssetExecutionContext, store: DataStore) -> dg.MaterializeResult:
    """How the newest session candidate did (`metrics/session_evaluation.json`): PR-AUC (primary),
    ROC-AUC, F1 at 0.5 and at thresholds 0.1–0.9, calibration error, and per local time of day
    (morning 6–11, afternoon 12–17, evening 18–23, night 0–5), against always-negative and the
    hour-of-day and hour-of-week priors fitted on the training period, on the same held-out hours.
    Says plainly whether the model beats each baseline. Appends to `metrics/metrics_history.json`.
    """
    report, meta = evaluation_result(
        context, store.paths, "session_classifier", store.paths.session_evaluation, "session_model", SESSION_METRICS
    )
    if report["status"] == "trained":
        test = report["candidate"]["test"]
        buckets = pd.DataFrame([{"time_of_day": k, **v} for k, v in test["by_time_of_day"].items()])
        meta["by_time_of_day"] = md_table(buckets)
        meta["f1_at_thresholds"] = md_table(pd.DataFrame([{"threshold": k, "f1": v} for k, v in test["f1_at"].items()]))
    return dg.MaterializeResult(metadata=meta)
