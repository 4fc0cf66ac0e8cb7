"""What the dashboard reads: the drift report and the current predictions."""

import dagster as dg
import pandas as pd

from ..ml.assign import read_centroids
from ..ml.clusters import unique_labels
from ..ml.drift import DriftSettings, drift_report as build_drift_report
from ..ml.evaluation import set_run_drift
from ..ml.model_store import ModelRefused, load_model
from ..ml.predict import markov_next_mood, next_mood, prior_outlook, session_outlook
from ..plays.schema import is_demo
from ..plays.store import history_or_empty
from ..resources import DataStore, ListeningSourceResource
from ..storage.files import CorruptFileError, read_json, write_json, writer_lock
from .classifiers import drift_summary, report_path
from .common import WRITER_POOL, md_table
from .history import history
from .moods import mood_classifier, mood_clusters
from .sessions import session_classifier


class DriftConfig(dg.Config):
    current_days: int = 7  # the recent window
    reference_days: int = 30  # the window before it, compared against
    threshold: float = 0.2  # a metric whose relative change exceeds this is flagged
    psi_threshold: float = 0.2  # an audio feature whose PSI exceeds this is flagged
    psi_bins: int = 10


@dg.asset(deps=[history], group_name="reporting", kinds={"json"}, pool=WRITER_POOL)
def drift_report(
    context: dg.AssetExecutionContext, config: DriftConfig, store: DataStore, listening_source: ListeningSourceResource
) -> dg.MaterializeResult:
    """Is the listener changing? (`metrics/drift_report.json`) The last 7 days against the 30 before:
    session duration (mean, std), sessions and tracks per day, start-hour entropy; the session-start
    rate, share of days with a session and each local hour's start frequency; and each audio
    feature's distribution (population stability index). Changes beyond 20% (PSI beyond 0.2) are
    flagged with a timestamp.
    """
    paths = store.paths
    settings = DriftSettings(config.current_days, config.reference_days, config.threshold, config.psi_threshold, config.psi_bins)
    now = listening_source.now()
    with writer_lock(paths.lock):
        hist = history_or_empty(paths)
        report = build_drift_report(hist, now, store.tz, settings)
        report["demo_data"] = is_demo(hist["origin"])
        write_json(report, paths.drift_report)
        if paths.metrics_history.exists():
            entries = read_json(paths.metrics_history)
            updated = set_run_drift(entries, context.run.run_id, drift_summary(report)) if isinstance(entries, list) else None
            if updated is not None:
                write_json(updated, paths.metrics_history)
    table = pd.DataFrame(report["metrics"])[["metric", "kind", "reference", "current", "change", "flagged"]]
    psi = pd.DataFrame(report["feature_psi"])[["feature", "psi", "reference_mean", "current_mean", "flagged"]]
    return dg.MaterializeResult(
        metadata={
            "drift_detected": report["drift_detected"],
            "flagged": len(report["flagged"]),
            "flagged_metrics": ", ".join(report["flagged"]) or "none",
            "as_of": report["as_of"],
            "current_plays": report["windows"]["current"]["plays"],
            "reference_plays": report["windows"]["reference"]["plays"],
            "demo_data": report["demo_data"],
            "metrics": md_table(table),
            "feature_psi": md_table(psi),
            "path": dg.MetadataValue.path(str(paths.drift_report)),
        }
    )


def _why_no_model(paths, path, problem: str) -> str:
    """The gate's verdict when a model was never promoted; the loader's refusal otherwise."""
    report = report_path(paths, path.stem)
    if path.exists() or not report.exists():
        return problem
    try:
        return read_json(report)["decision"]["summary"]
    except (CorruptFileError, KeyError, TypeError):
        return problem


def _best_prior(paths) -> str:
    """The prior that did best in the newest session evaluation ("week" unless "day" won)."""
    try:
        best = read_json(report_path(paths, "session_classifier"))["decision"].get("best_baseline")
    except (CorruptFileError, KeyError, TypeError, OSError):
        return "week"
    return "day" if best == "hour_of_day_prior" else "week"


def _labels(paths) -> dict[int, str]:
    centroids = read_centroids(paths.mood_clusters)
    return unique_labels(centroids) if centroids is not None else {}


@dg.asset(
    deps=[history, mood_clusters, mood_classifier, session_classifier],
    group_name="reporting",
    kinds={"json"},
    pool=WRITER_POOL,
)
def predictions(context: dg.AssetExecutionContext, store: DataStore, listening_source: ListeningSourceResource) -> dg.MaterializeResult:
    """The current outlook (`processed/predictions.json`): the next track's mood, as a probability
    per mood cluster, from the latest session's last plays; and the probability that a session
    starts in each local hour of today. Computed by the promoted models from the same feature
    functions they were trained with. Without a model in use (none promoted yet, or one that fails
    its checksum) the best baseline answers instead — mood transitions, the hour-of-week prior —
    and `source` and `reason` say so.
    """
    paths = store.paths
    now = listening_source.now()
    with writer_lock(paths.lock):
        hist = history_or_empty(paths)
        try:
            labels = _labels(paths)
        except CorruptFileError as exc:
            labels = {}
            context.log.warning(str(exc))
        outlook = {}
        for key, path in (("next_mood", paths.mood_classifier), ("session_start", paths.session_classifier)):
            try:
                bundle, problem = load_model(path, path.stem), None
            except ModelRefused as exc:
                bundle, problem = None, str(exc)
            trained_tz = bundle["metadata"].get("timezone") if bundle else None
            if trained_tz and trained_tz != store.timezone:  # its hour features would mean other hours
                bundle, problem = None, f"it was trained for the timezone {trained_tz}, the listener's is {store.timezone}: run full_retrain"
            if key == "next_mood":
                answer = next_mood(hist, bundle, labels, store.tz) if bundle else markov_next_mood(hist, labels)
            else:
                answer = session_outlook(hist, bundle, store.tz, now) if bundle else prior_outlook(hist, store.tz, now, _best_prior(paths))
            if problem:
                why = f"no {path.stem} in use ({_why_no_model(paths, path, problem)})"
                answer["reason"] = f"{why}; its baseline answers" if answer["available"] else f"{why}; nor can its baseline: {answer['reason']}"
            outlook[key] = answer
        doc = {
            "generated_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "as_of": now.isoformat(),
            "timezone": store.timezone,
            "demo_data": is_demo(hist["origin"]),
            **outlook,
        }
        write_json(doc, paths.predictions)
    meta = {
        "as_of": doc["as_of"],
        "demo_data": doc["demo_data"],
        "next_mood_available": doc["next_mood"]["available"],
        "session_start_available": doc["session_start"]["available"],
        "path": dg.MetadataValue.path(str(paths.predictions)),
    }
    for key in ("next_mood", "session_start"):
        meta[f"{key}_source"] = doc[key]["source"]
        if doc[key]["reason"]:
            meta[f"{key}_reason"] = doc[key]["reason"]
            context.log.warning(f"{key}: {doc[key]['reason']}")
    if doc["next_mood"]["available"]:
        meta["next_mood"] = f"{doc['next_mood']['mood_label']} ({doc['next_mood']['confidence']:.0%})"
        meta["mood_probabilities"] = md_table(pd.DataFrame(doc["next_mood"]["probabilities"]))
    if doc["session_start"]["available"]:
        meta["top_hours"] = ", ".join(f"{h['hour']:02d}:00 ({h['probability']:.0%})" for h in doc["session_start"]["top_hours"])
        meta["today"] = md_table(pd.DataFrame(doc["session_start"]["hours"])[["hour", "probability", "past"]], max_rows=25)
    return dg.MaterializeResult(metadata=meta)
