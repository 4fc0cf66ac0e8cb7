"""Building dashboard_data.json from history and the ML layer's reports: pure functions.

The JSON keeps the predecessor's keys (the owner's website reads them) and adds what it lacked:
baselines, model versions and their plain-words explanation, freshness, demo flag, timezone,
listening stats per range and the yearly recap. The models in `schema.py` describe it, and the
writer checks every document against them.
"""

import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from ..ml.online import live_quality
from ..plays.schema import CLUSTER_FEATURES, is_demo
from . import website
from .plain import details, explain, explain_live, prediction_note
from .recap import yearly_recap
from .schema import SCHEMA_VERSION
from .stats import listening_stats, prepare

RECENT_TRACKS = 25
TRAJECTORY_BIN = "15min"
STALE_AFTER_HOURS = 2.0
UPDATE_EVERY = pd.Timedelta(minutes=30)  # the slot sensor's :00/:30 UTC slots
RETRAIN_AT = pd.Timedelta(minutes=15)  # full_retrain_daily's 00:15 UTC


@dataclass
class Inputs:
    """Everything the dashboard shows; missing reports are None (a fresh install has none)."""

    history: pd.DataFrame
    now: pd.Timestamp  # the listener's clock: what "today" and "the last 24 hours" mean
    timezone: str
    generated_at: pd.Timestamp | None = None  # the wall clock, for freshness (defaults to `now`)
    clusters: dict | None = None
    predictions: dict | None = None
    mood_evaluation: dict | None = None
    session_evaluation: dict | None = None
    metrics_history: list | None = None
    drift: dict | None = None
    prediction_scores: dict | None = None
    models: dict = field(default_factory=dict)  # "mood"/"session" → {"version", "trained_at"} of the model in use
    last_ingestion: pd.Timestamp | None = None
    pending_features: int = 0
    unavailable_features: int = 0
    recommended: list = field(default_factory=list)
    gaps: list = field(default_factory=list)  # metrics/ingestion_gaps.json: plays lost to the 50-play window
    listened: pd.DataFrame | None = None  # the export's ms_played by (track_id, played_at), where imported
    scheduled: frozenset = frozenset()  # jobs whose trigger Dagster's daemon is running: their next run is known


def _iso(ts: Any, tz: ZoneInfo) -> str | None:
    if ts is None or (not isinstance(ts, str) and pd.isna(ts)):
        return None
    return pd.Timestamp(ts).tz_convert(tz).isoformat()


def _labels(clusters: dict | None) -> dict[int, str]:
    return {int(c["cluster_id"]): c["label"] for c in (clusters or {}).get("clusters", [])}


def _start_counts(history: pd.DataFrame, tz: ZoneInfo) -> pd.Series:
    starts = history.groupby("session_id")["played_at"].min().dt.tz_convert(tz).dt.hour
    return starts.value_counts().reindex(range(24), fill_value=0)


def session_actual(history: pd.DataFrame, tz: ZoneInfo) -> dict[str, float]:
    """Share of sessions starting in each local hour, max-normalized (the predecessor's convention)."""
    if len(history) == 0:
        return {}
    counts = _start_counts(history, tz)
    return {str(h): round(float(v), 6) for h, v in (counts / counts.max()).items()}


def session_start_share(history: pd.DataFrame, tz: ZoneInfo) -> dict[str, float]:
    """Share of all past sessions that started in each local hour (sums to 1): a scale people read."""
    if len(history) == 0:
        return {}
    counts = _start_counts(history, tz)
    return {str(h): round(float(v), 6) for h, v in (counts / counts.sum()).items()}


def mood_trajectory(history: pd.DataFrame, now: pd.Timestamp, tz: ZoneInfo) -> list[dict]:
    """Mean valence and energy of the last 24 hours' plays in 15-minute bins (bins with plays only)."""
    recent = history[(history["played_at"] > now - pd.Timedelta(hours=24)) & (history["played_at"] <= now)]
    if len(recent) == 0:
        return []
    binned = recent.groupby(recent["played_at"].dt.floor(TRAJECTORY_BIN)).agg(
        valence=("valence", "mean"), energy=("energy", "mean"), plays=("track_id", "size")
    )
    return [
        {"time": _iso(t, tz), "valence": round(float(r.valence), 6), "energy": round(float(r.energy), 6), "plays": int(r.plays)}
        for t, r in binned.iterrows()
    ]


def recently_played(history: pd.DataFrame, labels: dict[int, str], tz: ZoneInfo) -> list[dict]:
    recent = history.sort_values("played_at").tail(RECENT_TRACKS).iloc[::-1]
    return [
        {
            "track_id": r.track_id,
            "track_name": r.track_name,
            "artist_name": r.artist_name,
            "played_at": _iso(r.played_at, tz),
            "image_url": r.image_url or "",
            "mood_cluster_id": int(r.mood_cluster_id),
            "mood_label": labels.get(int(r.mood_cluster_id)),
        }
        for r in recent.itertuples()
    ]


def mood_clusters(history: pd.DataFrame, clusters: dict | None) -> list[dict]:
    counts = history["mood_cluster_id"].value_counts() if len(history) else pd.Series(dtype=int)
    total = max(int(counts[counts.index >= 0].sum()), 1)
    return [
        {
            "cluster_id": int(c["cluster_id"]),
            "label": c["label"],
            "centroid": {f: float(c["centroid"][f]) for f in CLUSTER_FEATURES},
            "plays": int(counts.get(int(c["cluster_id"]), 0)),
            "share": round(int(counts.get(int(c["cluster_id"]), 0)) / total, 6),
        }
        for c in (clusters or {}).get("clusters", [])
    ]


def next_prediction(predictions: dict | None, clusters: dict | None, recommended: list) -> dict:
    nxt = (predictions or {}).get("next_mood") or {}
    if not nxt.get("available"):
        return {
            "available": False, "mood_cluster_id": None, "mood_label": None, "confidence": None,
            "cluster_centroid": None, "probabilities": [], "recommended_tracks": [],
            "note": prediction_note(nxt) if nxt else "No guess yet: the models are trained by the daily retrain.",
            "reason": nxt.get("reason"),
        }
    centroids = {int(c["cluster_id"]): c["centroid"] for c in (clusters or {}).get("clusters", [])}
    cid = int(nxt["mood_cluster_id"])
    return {
        "available": True,
        "mood_cluster_id": cid,
        "mood_label": nxt.get("mood_label") or str(cid),
        "confidence": float(nxt["confidence"]),
        "cluster_centroid": {f: float(centroids[cid][f]) for f in CLUSTER_FEATURES} if cid in centroids else None,
        "probabilities": [
            {"mood_cluster_id": int(p["cluster_id"]), "mood_label": p.get("label") or str(p["cluster_id"]), "probability": float(p["probability"])}
            for p in nxt.get("probabilities", [])
        ],
        "recommended_tracks": recommended,
        "note": prediction_note(nxt),
        "reason": nxt.get("reason"),
    }


def session_probs(predictions: dict | None) -> tuple[dict[str, float], list[dict]]:
    """Today's probability per local hour (on a 25-hour DST day the repeated hour keeps its larger value)."""
    start = (predictions or {}).get("session_start") or {}
    if not start.get("available"):
        return {}, []
    probs: dict[str, float] = {}
    for row in start.get("hours", []):
        key = str(int(row["hour"]))
        probs[key] = max(probs.get(key, 0.0), float(row["probability"]))
    top = [{"hour": int(t["hour"]), "probability": float(t["probability"])} for t in start.get("top_hours", [])][:3]
    return dict(sorted(probs.items(), key=lambda kv: int(kv[0]))), top


def comparison(evaluation: dict | None) -> dict | None:
    """The model's primary metric on the held-out window against each baseline's, and who wins."""
    if not evaluation or evaluation.get("status") != "trained":
        return None
    metric = evaluation["primary_metric"]
    return {
        "metric": metric,
        "model": ((evaluation.get("candidate") or {}).get("test") or {}).get(metric),
        "baselines": {name: scores.get(metric) for name, scores in (evaluation.get("baselines") or {}).items()},
        "beats": dict(evaluation.get("beats_baselines") or {}),
    }


def model_info(kind: str, evaluation: dict | None, in_use: dict | None, serving: str | None, tz: ZoneInfo) -> dict:
    """The model in use, and in plain words what it does and who makes the guesses (`note` = `summary`)."""
    decision = (evaluation or {}).get("decision") or {}
    plain = explain(kind, evaluation, in_use, serving)
    return {
        "available": bool(in_use),
        "version": (in_use or {}).get("version"),
        "trained_at": _iso((in_use or {}).get("trained_at"), tz),
        "promoted": decision.get("promoted"),
        "note": plain["summary"],
        **plain,
        "details": details(evaluation),
    }


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, (int, float)) else str(value)


DRIFT_LABELS = {
    "session_duration_mean": "Average session length (minutes)",
    "session_duration_std": "Spread of session lengths (minutes)",
    "sessions_per_day": "Sessions per day",
    "tracks_per_day": "Songs per day",
    "start_hour_entropy": "How spread out your start times are",
    "session_start_rate": "Share of hours with a session start",
    "share_of_days_with_session": "Share of days with a session",
}
DRIFT_SHARES = {"session_start_rate", "share_of_days_with_session"}  # shown as percentages


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def drift_summary(drift: dict | None, tz: ZoneInfo) -> dict:
    """Flagged changes with a name for people, the values compared and the windows they come from."""
    if not drift:
        return {"available": False, "generated_at": None, "flags": [], "report": None, "windows": None}
    flags = [
        {"metric": r["metric"], "change": r.get("change"), "detail": f"{_short(r.get('reference'))} → {_short(r.get('current'))}",
         "label": DRIFT_LABELS.get(r["metric"], r["metric"].replace("_", " ").capitalize()), "percent": r["metric"] in DRIFT_SHARES,
         "reference": _number(r.get("reference")), "current": _number(r.get("current"))}
        for r in drift.get("metrics", [])
        if r.get("flagged")
    ]
    flags += [
        {"metric": r["metric"], "change": r.get("change"), "detail": f"{_short(r.get('reference'))} → {_short(r.get('current'))}",
         "label": "Session starts in this hour (per day)", "hour": int(r["hour"]),
         "reference": _number(r.get("reference")), "current": _number(r.get("current"))}
        for r in drift.get("per_hour_start_frequency", [])
        if r.get("flagged")
    ]
    flags += [
        {"metric": f"{r['feature']}_distribution", "change": None, "detail": f"PSI {_short(r.get('psi'))}",
         "label": f"The {r['feature'].replace('_', ' ')} of your songs", "reference": _number(r.get("reference_mean")),
         "current": _number(r.get("current_mean"))}
        for r in drift.get("feature_psi", [])
        if r.get("flagged")
    ]
    windows = drift.get("windows") or {}
    days = {k: (windows.get(k) or {}).get("days") for k in ("current", "reference")}
    return {
        "available": True,
        "generated_at": _iso(drift.get("generated_at"), tz),
        "windows": {f"{k}_days": v for k, v in days.items()} if all(isinstance(v, int) for v in days.values()) else None,
        "flags": flags,
        "report": drift,
    }


def next_runs(generated: pd.Timestamp, scheduled: frozenset, tz: ZoneInfo) -> dict:
    """When the next `update` and `full_retrain` start, for the jobs Dagster's daemon is there to start."""
    retrain = generated.floor("D") + RETRAIN_AT
    runs = {
        "update": generated.floor(UPDATE_EVERY) + UPDATE_EVERY,
        "full_retrain": retrain if retrain > generated else retrain + pd.Timedelta(days=1),
    }
    return {job: (_iso(at, tz) if job in scheduled else None) for job, at in runs.items()}


def gaps(recorded: list[dict], history: pd.DataFrame, tz: ZoneInfo) -> list[dict]:
    """Spans lost to the 50-play window, with the plays history holds inside now (an import fills them)."""
    played = pd.to_datetime(history["played_at"], utc=True)
    return [
        {
            "from": _iso(g["from"], tz),
            "to": _iso(g["to"], tz),
            "estimated_plays": int(g["estimated_plays"]),
            "plays_in_history": int(played.between(pd.Timestamp(g["from"]), pd.Timestamp(g["to"]), inclusive="neither").sum()),
            "detected_at": _iso(g["detected_at"], tz),
        }
        for g in recorded
    ]


def build_dashboard(inputs: Inputs) -> dict:
    tz = ZoneInfo(inputs.timezone)
    history = inputs.history
    labels = _labels(inputs.clusters)
    probs, top = session_probs(inputs.predictions)
    now = pd.Timestamp(inputs.now).tz_convert("UTC")
    generated = pd.Timestamp(inputs.generated_at if inputs.generated_at is not None else now).tz_convert("UTC")
    last_ingestion = inputs.last_ingestion
    stale = last_ingestion is None or (generated - pd.Timestamp(last_ingestion)) > pd.Timedelta(hours=STALE_AFTER_HOURS)
    entries = list(inputs.metrics_history or [])
    listening = prepare(history, now, tz, inputs.listened)
    sources = {k: (((inputs.predictions or {}).get(key) or {}).get("source")) for k, key in (("mood", "next_mood"), ("session", "session_start"))}
    data = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": _iso(generated, tz),
        "as_of": _iso(now, tz),
        "timezone": inputs.timezone,
        "is_demo": is_demo(history["origin"]),
        "next_prediction": next_prediction(inputs.predictions, inputs.clusters, inputs.recommended),
        "session_probs": probs,
        "top_hours": top,
        "session_actual": session_actual(history, tz),
        "session_start_share": session_start_share(history, tz),
        "mood_clusters": mood_clusters(history, inputs.clusters),
        "mood_trajectory": mood_trajectory(history, now, tz),
        "recently_played": recently_played(history, labels, tz),
        "metrics": {"latest": entries[-1] if entries else None, "history": entries[-11:-1]},
        "baselines": {"mood": comparison(inputs.mood_evaluation), "session": comparison(inputs.session_evaluation)},
        "models": {
            "mood": model_info("mood", inputs.mood_evaluation, inputs.models.get("mood"), sources["mood"], tz),
            "session": model_info("session", inputs.session_evaluation, inputs.models.get("session"), sources["session"], tz),
        },
        "freshness": {
            "last_play": _iso(history["played_at"].max(), tz) if len(history) else None,
            "last_ingestion": _iso(last_ingestion, tz),
            "pending_features": int(inputs.pending_features),
            "unavailable_features": int(inputs.unavailable_features),
            "stale": bool(stale),
            "stale_after_hours": STALE_AFTER_HOURS,
            "next_runs": next_runs(generated, inputs.scheduled, tz),
        },
        "gaps": gaps(inputs.gaps, history, tz),
        "drift": drift_summary(inputs.drift, tz),
        "live_quality": explain_live(live_quality(inputs.prediction_scores)),
        "stats": listening_stats(listening, labels),
        "recap": {"years": yearly_recap(listening, labels)},
    }
    # the predecessor's website reads its own key names: added beside ours (dashboard/website.py)
    return website.add_website_keys(
        data, inputs.predictions, inputs.mood_evaluation, inputs.session_evaluation, history, inputs.models.get("mood")
    )


#: an absolute POSIX path of two components or more; a URL's path follows its host or "//", not this
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])/(?:[\w.@+~-]+/)+[\w.@+~-]*")
#: Spotify's names and links are the listener's content, published as they are
_VERBATIM = {"track_id", "track_name", "artist_name", "image_url", "url"}


def scrub_local_paths(data: Any, private: dict[str, str]) -> tuple[Any, int]:
    """`data` with each `private` folder (the data root, the home directory) replaced by its label and
    any other absolute path cut to its last component, and how many were found. The last guard: the
    messages that reach the dashboard are path-free at their source, and this keeps a new one from
    publishing how the owner's machine is laid out."""
    folders = [
        (re.compile(r"(?<![\w.~:/-])" + re.escape(folder) + r"(?![\w.@+~-])"), label)
        for folder, label in sorted(private.items(), key=lambda kv: -len(kv[0]))  # the data root may lie in home
        if folder.strip("/")
    ]
    found = 0

    def text(value: str) -> str:
        nonlocal found
        for pattern, label in folders:
            value, n = pattern.subn(label, value)
            found += n
        value, n = _ABSOLUTE_PATH.subn(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], value)
        found += n
        return value

    def walk(value: Any, key: str | None = None) -> Any:
        if isinstance(value, str):
            return value if key in _VERBATIM else text(value)
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        return value

    return walk(data), found


def recommendation_rows(items: list[dict]) -> list[dict]:
    """ReccoBeats recommendation items → the dashboard's track entries."""
    rows = []
    for item in items:
        href = item.get("href") or ""
        track_id = href.rstrip("/").rsplit("/", 1)[-1] if href else str(item.get("id", ""))
        rows.append(
            {
                "track_id": track_id,
                "track_name": item.get("trackTitle") or "",
                "artist_name": ", ".join(a.get("name", "") for a in item.get("artists") or []),
                "url": f"https://open.spotify.com/track/{track_id}",
            }
        )
    return rows
