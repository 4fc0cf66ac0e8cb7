"""`prediction_scores`: every served prediction logged, and scored once what it predicted happened."""

from pathlib import Path

import dagster as dg
import pandas as pd

from ...ml.model_store import sidecar_path
from ...ml.online import LOG_COLUMNS, METRICS, MOOD, SERVED, SESSION, TASKS, WINDOWS, conform_log, empty_log, log_rows, score_report, unlogged
from ...plays.sessions import DEFAULT_GAP_MINUTES
from ...plays.store import history_or_empty
from ...resources import DataStore, ListeningSourceResource
from ...storage.files import CorruptFileError, parquet_metadata, quarantine, read_json, read_parquet, write_json, write_parquet, writer_lock
from ...storage.paths import DataPaths
from ..history.history import GAP_MINUTES
from ..factory import listener_asset, listener_check, per_listener, sibling
from ..common import table, table_metadata

CHECK_DAYS = 14
MIN_SCORED = 20  # fewer scored predictions than this say nothing about who is better


class PredictionScoresConfig(dg.Config):
    settle_minutes: int = 120  # an outcome counts once ingestion is this far past it (plays appear late)
    daily_days: int = 90  # days of per-day scores kept in the report


def append_to_log(path: Path, rows: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The log with the predictions it did not hold yet, and how many were added. Call under the
    writer lock: the log is read, extended and written whole to a temporary file renamed into
    place, so a killed run leaves the old log or the new one, never a torn or doubled prediction."""
    log = read_log(path)
    fresh = unlogged(log, rows)
    if len(fresh):
        log = conform_log(pd.concat([log, fresh], ignore_index=True))
        write_parquet(log, path)
    return log, len(fresh.drop_duplicates(["made_at", "task"]))


def read_log(path: Path) -> pd.DataFrame:
    return conform_log(read_parquet(path, LOG_COLUMNS)) if path.exists() else empty_log()


def _model_versions(paths: DataPaths) -> dict[str, str]:
    """`model:<sha256 prefix>` of the models in use (the dashboard's version), for files that name only `source: model`."""
    versions = {}
    for task, path in ((MOOD, paths.mood_classifier), (SESSION, paths.session_classifier)):
        try:
            versions[task] = f"model:{read_json(sidecar_path(path))['sha256'][:12]}"
        except (CorruptFileError, KeyError, TypeError):
            pass
    return versions


def _ingested_in_this_run(context: dg.AssetExecutionContext) -> bool:
    event = context.instance.get_latest_materialization_event(sibling(context.asset_key, "ingestions"))
    return event is not None and event.run_id == context.run.run_id and "skipped" not in event.asset_materialization.metadata


@listener_asset(deps=["predictions", "history"], group_name="reporting", kinds={"parquet", "json"})
def prediction_scores(
    context: dg.AssetExecutionContext, config: PredictionScoresConfig, store: DataStore, listening_source: ListeningSourceResource
) -> dg.MaterializeResult:
    """How good the served predictions turned out (`metrics/prediction_scores.json`). Each run adds
    the current `predictions` to the append-only `metrics/predictions_log.parquet` (once per
    prediction time), with the baselines computed from what was known then, and scores every logged
    prediction whose outcome is now known: the mood of the next play in the same session, whether a
    session started in each predicted hour. Log loss, Brier, accuracy and calibration per day and
    over the last 7, 14 and 30 days, for the served model and each baseline side by side.
    """
    paths = store.paths
    now = listening_source.now()
    notes = []
    with writer_lock(paths.lock):
        hist = history_or_empty(paths)
        doc = read_json(paths.predictions, None)
        rows = log_rows(doc, hist, store.tz, _model_versions(paths)) if doc else empty_log()
        try:
            log, added = append_to_log(paths.predictions_log, rows)
        except CorruptFileError as exc:  # kept in quarantine/, bytes untouched, and logging starts over
            record = quarantine(paths.predictions_log, paths.root, paths.quarantine, str(exc))
            notes.append(f"the predictions log was unreadable and was moved to {record['quarantined_path']}; a new log starts")
            log, added = append_to_log(paths.predictions_log, rows)
        try:
            previous = pd.Timestamp(read_json(paths.prediction_scores, {}).get("data_through") or pd.NaT)
        except CorruptFileError:
            previous = pd.NaT
        # how far ingestion has certainly caught up: this run's clock when it ingested, else what was known
        candidates = [previous, hist["played_at"].max() if len(hist) else pd.NaT, now if _ingested_in_this_run(context) else pd.NaT]
        data_through = max((pd.Timestamp(c).tz_convert("UTC") for c in candidates if not pd.isna(c)), default=now)
        gap = int(parquet_metadata(paths.history).get(GAP_MINUTES, DEFAULT_GAP_MINUTES)) if paths.history.exists() else DEFAULT_GAP_MINUTES
        report = score_report(
            log, hist, now, data_through, store.tz, pd.Timedelta(minutes=config.settle_minutes), pd.Timedelta(minutes=gap), config.daily_days
        )
        report["generated_at"] = pd.Timestamp.now(tz="UTC").isoformat()
        write_json(report, paths.prediction_scores)
    for note in notes:
        context.log.warning(note)
    meta = {
        **table_metadata(log),  # the predictions log, the table this asset grows
        "predictions_logged": added,
        "log_rows": int(len(log)),
        "data_through": report["data_through"],
        "path": dg.MetadataValue.path(str(paths.prediction_scores)),
        "log": dg.MetadataValue.path(str(paths.predictions_log)),
    }
    if notes:
        meta["notes"] = "; ".join(notes)
    for task in TASKS:
        part = report["tasks"][task]
        meta[f"{task}_scored"] = part["outcomes"]["scored"]
        meta[f"{task}_awaiting"] = part["outcomes"]["awaiting"]
        for days in (7, WINDOWS[-1]):
            block = part["windows"][f"{days}d"]
            served = block["predictors"].get(SERVED)
            meta[f"{task}_n_{days}d"] = served["n"] if served else 0
            for metric in METRICS:
                if served and served[metric] is not None:
                    meta[f"{task}_{metric}_{days}d"] = served[metric]
            if block["best_baseline"]:
                meta[f"{task}_best_baseline_log_loss_{days}d"] = block["predictors"][block["best_baseline"]]["log_loss"]
        predictors = pd.DataFrame([{"predictor": k, **v} for k, v in part["windows"][f"{WINDOWS[-1]}d"]["predictors"].items()])
        meta[f"{task}_{WINDOWS[-1]}d"] = table(predictors)
    return dg.MaterializeResult(metadata=meta)


@listener_check(asset=prediction_scores, description=f"WARN when the served model scored worse (log loss) than the best baseline over the last {CHECK_DAYS} days")
def served_model_beats_baselines_live(store: DataStore) -> dg.AssetCheckResult:
    report = read_json(store.paths.prediction_scores, None)
    worse, meta = [], {}
    for task in TASKS:
        block = (((report or {}).get("tasks") or {}).get(task) or {}).get("windows", {}).get(f"{CHECK_DAYS}d") or {}
        served = (block.get("predictors") or {}).get(SERVED)
        best = block.get("best_baseline")
        n = served["n"] if served else 0
        meta[f"{task}_n"] = n
        if not served or not best or n < MIN_SCORED:
            meta[f"{task}"] = f"not enough live scores yet ({n} of {MIN_SCORED})"
            continue
        baseline = block["predictors"][best]["log_loss"]
        meta[f"{task}_served_log_loss"], meta[f"{task}_best_baseline_log_loss"] = served["log_loss"], baseline
        meta[f"{task}"] = f"served {served['log_loss']:.4f} vs {best} {baseline:.4f}"
        if served["log_loss"] > baseline:
            worse.append(f"{task}: served {served['log_loss']:.4f} > {best} {baseline:.4f} over {n} scored")
    return dg.AssetCheckResult(
        passed=not worse,
        severity=dg.AssetCheckSeverity.WARN,
        description=("worse than a baseline on live data: " + "; ".join(worse)) if worse else "the served predictions are not worse than any baseline",
        metadata=meta,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return per_listener(prediction_scores, served_model_beats_baselines_live)
