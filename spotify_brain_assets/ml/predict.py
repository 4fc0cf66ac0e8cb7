"""The current outlook, computed by the promoted models from the same feature functions as training.

When no model is in use (none trained yet, or the newest candidates lost to their baselines), the
outlook comes from the baseline the gate compares against, and says so in `source` and `reason`:
first-order mood transitions for the next track, the hour-of-week prior for today's hours.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from . import mood_features, session_features
from .training import predict_proba

FALLBACK_DAYS = 90


def _ranked(probs: dict[int, float], labels: dict[int, str]) -> list[dict]:
    """Every current cluster (one the model never saw at probability 0), most likely first."""
    full = {cid: 0.0 for cid in labels} | probs
    return [{"cluster_id": cid, "label": labels.get(cid), "probability": round(p, 6)} for cid, p in sorted(full.items(), key=lambda kv: (-kv[1], kv[0]))]


def _mood_answer(ranked: list[dict], history: pd.DataFrame, context_moods: list[int], source: str, trained_at: str | None) -> dict:
    last = history.sort_values("played_at").iloc[-1]
    return {
        "available": True,
        "source": source,
        "reason": None,
        "mood_cluster_id": ranked[0]["cluster_id"],
        "mood_label": ranked[0]["label"],
        "confidence": ranked[0]["probability"],
        "probabilities": ranked,
        "session_id": int(last["session_id"]),
        "last_play_at": last["played_at"].isoformat(),
        "context_moods": context_moods,
        "model_trained_at": trained_at,
    }


def next_mood(history: pd.DataFrame, bundle: dict, labels: dict[int, str], tz: ZoneInfo | str) -> dict:
    """Probabilities per cluster for the play after the newest one, from its session's last plays."""
    meta = bundle["metadata"]
    window = int(meta["window_size"])
    if len(history) == 0:
        return {"available": False, "source": "model", "reason": "history is empty"}
    context = mood_features.latest_context(history, window, tz)
    if len(context) == 0:
        return {"available": False, "source": "model", "reason": f"the latest session has fewer than {window} plays with a mood; the model needs {window}"}
    proba = predict_proba(bundle["model"], meta["classes"], context, bundle["feature_cols"]).iloc[0]
    probs = {int(c): float(p) for c, p in proba.items()}
    moods = [int(context.iloc[0][f"mood_cluster_{i}"]) for i in range(window)]
    return _mood_answer(_ranked(probs, labels), history, moods, "model", meta.get("trained_at"))


def markov_next_mood(history: pd.DataFrame, labels: dict[int, str]) -> dict:
    """First-order transitions between consecutive plays of a session (add-one smoothing), from
    the newest play's mood: the mood model's strongest baseline."""
    source = "baseline:markov"
    if len(history) == 0:
        return {"available": False, "source": source, "reason": "history is empty"}
    df = history.sort_values("played_at")
    moods = df["mood_cluster_id"].to_numpy(dtype="int64")
    last = int(moods[-1])
    if last < 0:
        return {"available": False, "source": source, "reason": "the newest play has no mood cluster yet (run full_retrain)"}
    sessions = df["session_id"].to_numpy()
    follows = (sessions[1:] == sessions[:-1]) & (moods[:-1] == last) & (moods[1:] >= 0)
    classes = np.array(sorted(set(labels) | set(moods[moods >= 0].tolist())))
    counts = pd.Series(moods[1:][follows]).value_counts().reindex(classes, fill_value=0).to_numpy() + 1.0
    probs = {int(c): float(p) for c, p in zip(classes, counts / counts.sum())}
    return _mood_answer(_ranked(probs, labels), df, [last], source, None)


def _hours_answer(features: pd.DataFrame, p: np.ndarray, now: pd.Timestamp, tz, source: str, trained_at: str | None) -> dict:
    rows = [
        {"hour": int(h), "hour_start": s.isoformat(), "probability": round(float(v), 6), "past": bool(s + session_features.HOUR <= now)}
        for h, s, v in zip(features["hour"], features["hour_start"], p)
    ]
    top = sorted(rows, key=lambda r: (-r["probability"], r["hour_start"]))[:3]
    return {
        "available": True,
        "source": source,
        "reason": None,
        "date": str(now.tz_convert(tz).date()),
        "hours": rows,
        "top_hours": [{"hour": r["hour"], "probability": r["probability"]} for r in top],
        "model_trained_at": trained_at,
    }


def session_outlook(history: pd.DataFrame, bundle: dict, tz: ZoneInfo | str, now: pd.Timestamp) -> dict:
    """Session-start probability for every local hour of today (the listener's today at `now`)."""
    now = pd.Timestamp(now).tz_convert("UTC")
    hours = session_features.local_day_hours(now, tz)
    known = history[history["played_at"] <= now]
    features = session_features.session_features(known, hours, tz)
    proba = predict_proba(bundle["model"], bundle["metadata"]["classes"], features, bundle["feature_cols"])
    p = proba[1].to_numpy() if 1 in proba.columns else np.zeros(len(features))
    return _hours_answer(features, p, now, tz, "model", bundle["metadata"].get("trained_at"))


def prior_outlook(history: pd.DataFrame, tz: ZoneInfo | str, now: pd.Timestamp, by: str = "week", days: int = FALLBACK_DAYS) -> dict:
    """Each hour of today at its session-start rate over the last `days` days: on the same weekday
    and local hour (`by="week"`, the hour-of-day rate where a weekday-hour has no data) or on the
    same local hour (`by="day"`) — the session model's structural baselines."""
    if by not in ("week", "day"):
        raise ValueError(f"prior by 'week' or 'day', not {by!r}")
    source = f"baseline:hour_of_{by}_prior"
    now = pd.Timestamp(now).tz_convert("UTC")
    recent = history[(history["played_at"] <= now) & (history["played_at"] > now - pd.Timedelta(days=days))]
    if len(recent) == 0:
        return {"available": False, "source": source, "reason": f"no plays in the last {days} days"}
    past = session_features.session_dataset(recent, tz)
    by_hour = past.groupby("hour")[session_features.TARGET].mean()
    today = session_features.session_features(recent.iloc[:0], session_features.local_day_hours(now, tz), tz)
    p = by_hour.reindex(today["hour"]).fillna(0.0).to_numpy()
    if by == "week":
        past_key = pd.MultiIndex.from_arrays([pd.to_datetime(past["date"]).dt.day_of_week.to_numpy(), past["hour"].to_numpy()])
        by_week = past[session_features.TARGET].groupby(past_key).mean()
        key = pd.MultiIndex.from_arrays([np.full(len(today), now.tz_convert(tz).day_of_week), today["hour"].to_numpy()])
        week = by_week.reindex(key).to_numpy()
        p = np.where(np.isnan(week), p, week)
    return _hours_answer(today, p, now, tz, source, None)
