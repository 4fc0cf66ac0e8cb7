"""What the dashboard reads: the drift report and the current predictions."""

import dagster as dg
import pandas as pd

from ...ml.assign import read_centroids
from ...ml.clusters import unique_labels
from ...ml.drift import DriftSettings, drift_report as build_drift_report
from ...ml.evaluation import set_run_drift
from ...ml.model_store import ModelRefused, load_model, sidecar_version
from ...ml.baselines import PLAIN
from ...ml.backtest import plain
from ...ml.classifiers import DEFAULT_BASELINE
from ...ml.families import Recipe
from ...ml.predict import baseline_next_mood, next_mood
from ...ml.predict import outlook as outlook_for
from ...plays.schema import is_demo
from ...plays.store import history_or_empty
from ...resources import DataStore, ListeningSourceResource
from ...storage.files import CorruptFileError, read_json, write_json, writer_lock
from ..classifiers import drift_summary, report_path
from ..factory import listener_asset, per_listener
from ..common import table


class DriftConfig(dg.Config):
    current_days: int = 7  # the recent window
    reference_days: int = 30  # the window before it, compared against
    threshold: float = 0.2  # a metric whose relative change exceeds this is flagged
    psi_threshold: float = 0.2  # an audio feature whose PSI exceeds this is flagged
    psi_bins: int = 10


@listener_asset(deps=["history"], group_name="reporting", kinds={"json"})
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
    metrics = pd.DataFrame(report["metrics"])[["metric", "kind", "reference", "current", "change", "flagged"]]
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
            "metrics": table(metrics),
            "feature_psi": table(psi),
            "path": dg.MetadataValue.path(str(paths.drift_report)),
        }
    )


def _report(paths, kind: str) -> dict | None:
    try:
        report = read_json(report_path(paths, kind), None)
    except CorruptFileError:
        return None
    return report if isinstance(report, dict) else None


def _serving_baseline(report: dict | None, kind: str) -> str:
    """The baseline the newest gate put in service (or would fall back to): the task's default
    when there is no usable report."""
    serving = ((report or {}).get("decision") or {}).get("serving") or {}
    if serving.get("kind") == "baseline" and serving.get("name") in PLAIN:
        return serving["name"]
    best = ((report or {}).get("decision") or {}).get("best_baseline")
    return best if best in PLAIN else DEFAULT_BASELINE[kind]


def _labels(paths) -> dict[int, str]:
    centroids = read_centroids(paths.mood_clusters)
    return unique_labels(centroids) if centroids is not None else {}


class PredictionsConfig(dg.Config):
    staleness_days: float = 14.0  # no play for longer than this: the listener is inactive, no forecast
    decay_half_life_days: float = 14.0  # an inactive listener's habit prior halves per this many days of silence


def _served_model(path, kind: str, timezone: str) -> tuple[dict | None, str | None]:
    """The model in use, or None and why it cannot serve (absent, refused, another timezone)."""
    try:
        bundle = load_model(path, kind)
    except ModelRefused as exc:
        return None, str(exc)
    trained_tz = bundle["metadata"].get("timezone")
    if trained_tz and trained_tz != timezone:  # its hour features would mean other hours
        return None, f"it was trained for the timezone {trained_tz}, the listener's is {timezone}: run full_retrain"
    return bundle, None


@listener_asset(
    deps=["history", "mood_clusters", "mood_classifier", "session_classifier"],
    group_name="reporting",
    kinds={"json"},
)
def predictions(context: dg.AssetExecutionContext, config: PredictionsConfig, store: DataStore, listening_source: ListeningSourceResource) -> dg.MaterializeResult:
    """The current outlook (`processed/predictions.json`), made at the listening source's clock
    (`made_at`; a frozen clock replays any past moment): the next track's mood as a probability per
    mood cluster, conditioned on the newest play; and the probability that a session starts in each
    of the 24 local hours after `made_at`. Each comes from what the gate put in service, named in
    `served` (a model with its version, or a baseline) — the model through the same feature
    function it was trained with. A listener silent for longer than the staleness (14 days) is
    said to be inactive, and the outlook is the decayed weekly habit, not a forecast.
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
            kind = path.stem
            report = _report(paths, kind)
            bundle, problem = _served_model(path, kind, store.timezone)
            baseline = _serving_baseline(report, kind)
            if key == "next_mood":
                answer = next_mood(hist, bundle, labels, store.tz) if bundle else baseline_next_mood(hist, baseline, labels, store.tz)
                if bundle and not answer["available"]:  # the session is too short for the model so far
                    problem, bundle = answer["reason"], None
                    answer = baseline_next_mood(hist, baseline, labels, store.tz)
            else:
                answer = outlook_for(hist, bundle, baseline, store.tz, now, config.staleness_days, config.decay_half_life_days)
            if bundle and answer["source"] == "model":
                meta = bundle["metadata"]
                name = Recipe(**meta["recipe"]).name if "recipe" in meta else meta.get("family", "model")
                answer["served"] = {"kind": "model", "name": name, "version": sidecar_version(path)}
            else:  # the baseline the gate chose, or the decayed habit of an inactive listener
                answer["served"] = {"kind": "baseline", "name": answer["source"].removeprefix("baseline:"), "version": None}
            if not bundle and not answer.get("inactive"):
                gate_said = report["summary"] if report and (report.get("served") or {}).get("kind") == "baseline" and not path.exists() else None
                why = gate_said or f"The {kind} cannot answer ({problem}), so {plain(baseline)} answers instead."
                answer["reason"] = why if answer["available"] else f"{why} It cannot answer yet either: {answer['reason']}"
            outlook[key] = answer
        doc = {
            "generated_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "made_at": now.isoformat(),
            "as_of": now.isoformat(),
            "timezone": store.timezone,
            "demo_data": is_demo(hist["origin"]),
            **outlook,
        }
        write_json(doc, paths.predictions)
    meta = {
        "made_at": doc["made_at"],
        "demo_data": doc["demo_data"],
        "next_mood_available": doc["next_mood"]["available"],
        "session_start_available": doc["session_start"]["available"],
        "inactive": bool(doc["session_start"].get("inactive")),
        "path": dg.MetadataValue.path(str(paths.predictions)),
    }
    for key in ("next_mood", "session_start"):
        served = doc[key]["served"]
        meta[f"{key}_served"] = f"{served['kind']}: {served['name']}" + (f" ({served['version']})" if served["version"] else "")
        if doc[key]["reason"]:
            meta[f"{key}_reason"] = doc[key]["reason"]
    if doc["next_mood"]["available"]:
        meta["next_mood"] = f"{doc['next_mood']['mood_label']} ({doc['next_mood']['confidence']:.0%})"
        meta["mood_probabilities"] = table(pd.DataFrame(doc["next_mood"]["probabilities"]))
    if doc["session_start"]["available"]:
        meta["top_hours"] = ", ".join(f"{h['hour']:02d}:00 ({h['probability']:.0%})" for h in doc["session_start"]["top_hours"])
        meta["next_24_hours"] = table(pd.DataFrame(doc["session_start"]["hours"])[["hour_start", "lead_hours", "probability"]], max_rows=25)
        meta["expected_sessions_next_24h"] = round(sum(h["probability"] for h in doc["session_start"]["hours"]), 3)
    return dg.MaterializeResult(metadata=meta)


@dg.definitions
def defs() -> dg.Definitions:
    return per_listener(drift_report, predictions)
