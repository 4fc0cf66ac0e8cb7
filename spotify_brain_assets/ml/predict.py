"""The current outlook, from whatever the gate put in service: a promoted model (through the same
feature functions it was trained with) or the baseline that won.

- Next mood: a probability per mood cluster for the play after the newest one, conditioned on
  that play's session so far.
- Session start: for each of the 24 local hours after the prediction time, the probability that a
  session starts in it, as known at that time: the task the session model is trained on. When the
  newest play is older than the staleness (14 days by default) the listener looks inactive: the
  outlook says so and falls back to the hour-of-week prior decayed by the silence (halved per
  `decay_half_life_days`), never a confident forecast.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from . import mood_features, session_features
from .baselines import mood_baseline, session_baseline
from .training import predict_proba

STALE_DAYS = 14.0
DECAY_HALF_LIFE_DAYS = 14.0


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
        "distribution": {str(r["cluster_id"]): r["probability"] for r in ranked},
        "conditioned_on": {"track_id": str(last["track_id"]), "played_at": last["played_at"].isoformat()},
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
    context = mood_features.latest_context(history, window, tz, meta.get("cluster_ids"))
    if len(context) == 0:
        return {"available": False, "source": "model", "reason": f"the latest session has fewer than {window} plays with a mood; the model needs {window}"}
    proba = predict_proba(bundle["model"], meta["classes"], context, bundle["feature_cols"]).iloc[0]
    probs = {int(c): float(p) for c, p in proba.items()}
    moods = [int(context.iloc[0][f"mood_cluster_{i}"]) for i in range(window)]
    return _mood_answer(_ranked(probs, labels), history, moods, "model", meta.get("trained_at"))


def baseline_next_mood(history: pd.DataFrame, name: str, labels: dict[int, str], tz: ZoneInfo | str) -> dict:
    """The next mood by baseline `name` fitted on all of history. A Markov chain over more moods
    than the newest session has so far backs off to the moods it has."""
    source = f"baseline:{name}"
    if len(history) == 0:
        return {"available": False, "source": source, "reason": "history is empty"}
    df = history.sort_values("played_at", kind="stable").reset_index(drop=True)
    if int(df["mood_cluster_id"].iloc[-1]) < 0:
        return {"available": False, "source": source, "reason": "the newest play has no mood cluster yet (run full_retrain)"}
    session = df["session_id"].to_numpy()
    moods = df["mood_cluster_id"].to_numpy()
    newest = (session == session[-1]) & (moods >= 0)
    run = int(np.argmin(newest[::-1])) if not newest.all() else len(newest)  # assigned plays at the end of the newest session
    order = int(name.split("_")[1]) if name.startswith("markov_") else 1
    window = max(1, min(order, run))
    if name.startswith("markov_"):
        name = f"markov_{window}"
    classes = sorted(set(labels) | set(int(m) for m in np.unique(moods[moods >= 0])))
    train = mood_features.mood_dataset(df, window, tz, classes)
    context = mood_features.latest_context(df, window, tz, classes)
    probs = mood_baseline(name, train, context, classes, window)[0]
    moods_ctx = [int(context.iloc[0][f"mood_cluster_{i}"]) for i in range(window)]
    return _mood_answer(_ranked({c: float(p) for c, p in zip(classes, probs)}, labels), df, moods_ctx, source, None)


def _hours_answer(rows: pd.DataFrame, p: np.ndarray, now: pd.Timestamp, tz, source: str, trained_at: str | None) -> dict:
    hours = [
        {"hour": int(h), "hour_start": s.isoformat(), "lead_hours": round(float(lead), 4), "probability": round(float(v), 6)}
        for h, s, lead, v in zip(rows["hour"], rows["hour_start"], rows["lead_hours"], p)
    ]
    top = sorted(hours, key=lambda r: (-r["probability"], r["hour_start"]))[:3]
    return {
        "available": True,
        "source": source,
        "reason": None,
        "inactive": False,
        "date": str(now.tz_convert(tz).date()),
        "made_at": now.isoformat(),
        "hours": hours,
        "top_hours": [{"hour": r["hour"], "probability": r["probability"]} for r in top],
        "model_trained_at": trained_at,
    }


def _ahead(history: pd.DataFrame, now: pd.Timestamp, tz) -> pd.DataFrame:
    known = history[history["played_at"] <= now]
    return session_features.outlook_features(known, pd.DatetimeIndex([now]), tz)


def _inactive(history: pd.DataFrame, now: pd.Timestamp, staleness_days: float) -> float | None:
    """Days since the newest play when that is longer than the staleness, else None."""
    silent = (now - history["played_at"].max()) / pd.Timedelta(days=1)
    return float(silent) if silent > staleness_days else None


def session_outlook(history: pd.DataFrame, bundle: dict, tz: ZoneInfo | str, now: pd.Timestamp) -> dict:
    """The model's probability of a session start in each of the 24 local hours after `now`."""
    now = pd.Timestamp(now).tz_convert("UTC")
    rows = _ahead(history, now, tz)
    proba = predict_proba(bundle["model"], bundle["metadata"]["classes"], rows, bundle["feature_cols"])
    p = proba[1].to_numpy() if 1 in proba.columns else np.zeros(len(rows))
    return _hours_answer(rows, p, now, tz, "model", bundle["metadata"].get("trained_at"))


def prior_outlook(history: pd.DataFrame, name: str, tz: ZoneInfo | str, now: pd.Timestamp, decay: float = 1.0) -> dict:
    """Prior `name` fitted on every training row of history, for the 24 local hours after `now`,
    times `decay` (1: as fitted)."""
    now = pd.Timestamp(now).tz_convert("UTC")
    source = f"baseline:{name}"
    known = history[history["played_at"] <= now]
    train = session_features.session_dataset(known, tz)
    if len(train) == 0:
        return {"available": False, "source": source, "reason": "not a full day of listening history yet"}
    rows = _ahead(known, now, tz)
    return _hours_answer(rows, session_baseline(name, train, rows) * decay, now, tz, source, None)


def outlook(history: pd.DataFrame, bundle: dict | None, prior: str, tz: ZoneInfo | str, now: pd.Timestamp, staleness_days: float = STALE_DAYS, half_life_days: float = DECAY_HALF_LIFE_DAYS) -> dict:
    """The session outlook from the model in use (or prior `prior` without one), unless the listener
    looks inactive: then the hour-of-week prior decayed by the silence, and the answer says so."""
    now = pd.Timestamp(now).tz_convert("UTC")
    if len(history) == 0:
        return {"available": False, "source": "model" if bundle else f"baseline:{prior}", "reason": "history is empty", "inactive": False}
    silent = _inactive(history[history["played_at"] <= now], now, staleness_days)
    if silent is None:
        return session_outlook(history, bundle, tz, now) if bundle else prior_outlook(history, prior, tz, now)
    decay = 0.5 ** (silent / half_life_days)
    answer = prior_outlook(history, "hour_of_week", tz, now, decay)
    answer["inactive"] = True
    answer["reason"] = (
        f"No plays for {silent:.0f} days (the newest was at {history['played_at'].max():%Y-%m-%d %H:%M} UTC): you look inactive, "
        f"so this is your weekly habit scaled down for the silence (to {decay:.0%}), not a forecast."
    )
    return answer
