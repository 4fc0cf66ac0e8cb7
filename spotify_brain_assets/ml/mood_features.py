"""Next-track mood features: the one feature function that training and serving share.

A row describes a *context*: the last `window` plays of a session, ending at some play. Everything
in it is known when that play has been played — its moods and audio features, the local hour and
weekday of its last play, how many plays the session has had so far and for how long it has run.
Training pairs each context with the mood of the session's next play; serving computes the context
ending at the newest play and asks the model about the play that has not happened yet.

The predecessor's `session_length` (the whole session's length, unknown while the session is still
running) is dropped: `session_position`, the number of plays so far, is its causal counterpart.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ..plays.schema import CLUSTER_FEATURES, UNASSIGNED_MOOD
from .local_time import calendar_features, to_local

DEFAULT_WINDOW = 3
TARGET = "target_mood_cluster"
CALENDAR = ["hour_sin", "hour_cos", "day_sin", "day_cos", "is_weekend"]
#: columns of the dataset that are not features: the split uses them
SPLIT_COLUMNS = ["session_id", "played_at"]
_REQUIRED = ["played_at", "session_id", "mood_cluster_id"] + CLUSTER_FEATURES


def feature_columns(window: int = DEFAULT_WINDOW) -> list[str]:
    """The model's inputs, in order: moods of the window (oldest first), window statistics, time, position."""
    return (
        [f"mood_cluster_{i}" for i in range(window)]
        + [f"{f}_{stat}" for f in CLUSTER_FEATURES for stat in ("mean", "std")]
        + CALENDAR
        + ["session_position", "time_since_session_start"]
        + [f"current_{f}" for f in CLUSTER_FEATURES]
    )


def _prepare(history: pd.DataFrame, window: int) -> pd.DataFrame:
    if window < 1:
        raise ValueError(f"the mood window must hold at least one play, got {window}")
    missing = [c for c in _REQUIRED if c not in history]
    if missing:
        raise ValueError(f"history lacks the columns {missing}")
    return history.sort_values("played_at", kind="stable").reset_index(drop=True)


def context_features(history: pd.DataFrame, window: int, tz: ZoneInfo | str) -> pd.DataFrame:
    """One row per play that closes `window` plays of its session with observed moods.

    Columns: feature_columns(window), then `session_id`, `context_played_at` (the window's last play)
    and `row` (that play's position in `history` sorted by time).
    """
    df = _prepare(history, window)
    position = df.groupby("session_id", sort=False).cumcount().to_numpy()
    ends = np.flatnonzero(position >= window - 1)
    lags = ends[:, None] - np.arange(window - 1, -1, -1)[None, :]  # oldest first
    moods = df["mood_cluster_id"].to_numpy(dtype="int64")[lags]
    keep = (moods != UNASSIGNED_MOOD).all(axis=1)
    ends, lags, moods = ends[keep], lags[keep], moods[keep]

    feats = df[CLUSTER_FEATURES].to_numpy(dtype="float64")[lags]  # rows × window × features
    out = pd.DataFrame(moods, columns=[f"mood_cluster_{i}" for i in range(window)])
    mean, std = feats.mean(axis=1), feats.std(axis=1)
    for j, f in enumerate(CLUSTER_FEATURES):
        out[f"{f}_mean"] = mean[:, j]
        out[f"{f}_std"] = std[:, j]
    played_at = df["played_at"].iloc[ends].reset_index(drop=True)
    out[CALENDAR] = calendar_features(to_local(played_at, tz)).to_numpy()
    out["is_weekend"] = out["is_weekend"].astype("int64")
    out["session_position"] = position[ends] + 1
    session_start = df.groupby("session_id", sort=False)["played_at"].transform("min").iloc[ends].reset_index(drop=True)
    out["time_since_session_start"] = (played_at - session_start).dt.total_seconds().to_numpy() / 60.0
    for j, f in enumerate(CLUSTER_FEATURES):
        out[f"current_{f}"] = feats[:, -1, j]
    out["session_id"] = df["session_id"].to_numpy(dtype="int64")[ends]
    out["context_played_at"] = played_at
    out["row"] = ends
    return out


def mood_dataset(history: pd.DataFrame, window: int = DEFAULT_WINDOW, tz: ZoneInfo | str = "UTC") -> pd.DataFrame:
    """processed/mood_nexttrack_train.parquet: every context followed by a play in the same session.

    `played_at` is the target play's time (what the time split cuts on); `session_id` keeps a
    session on one side of the split.
    """
    df = _prepare(history, window)
    ctx = context_features(df, window, tz)
    nxt = ctx["row"].to_numpy() + 1
    inside = nxt < len(df)
    nxt_safe = np.where(inside, nxt, 0)
    same_session = inside & (df["session_id"].to_numpy()[nxt_safe] == ctx["session_id"].to_numpy())
    target = df["mood_cluster_id"].to_numpy(dtype="int64")[nxt_safe]
    keep = same_session & (target != UNASSIGNED_MOOD)
    out = ctx.loc[keep, feature_columns(window) + ["session_id"]].reset_index(drop=True)
    out["played_at"] = df["played_at"].to_numpy()[nxt_safe[keep]]
    out["played_at"] = pd.to_datetime(out["played_at"], utc=True).dt.as_unit("ms")
    out[TARGET] = target[keep]
    return out


def latest_context(history: pd.DataFrame, window: int, tz: ZoneInfo | str) -> pd.DataFrame:
    """The context ending at the newest play (0 rows when its session has fewer than `window` plays)."""
    if len(history) == 0:
        return context_features(history, window, tz)
    df = _prepare(history, window)
    last_session = df["session_id"].iloc[-1]
    tail = df[df["session_id"] == last_session]
    ctx = context_features(tail, window, tz)
    return ctx[ctx["row"] == len(tail) - 1].reset_index(drop=True)
