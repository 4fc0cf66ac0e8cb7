"""Next-track mood features: the one feature function that training and serving share.

A row describes a *context*: the last `window` plays of a session, ending at some play. Everything
in it is known when that play has been played: the window's moods (as integers, oldest first, and
one-hot per lag: `last1_is_<id>` is the newest play's mood), whether the mood changed between
consecutive plays of the window (`changed_1` between the newest two), how many plays in a row the
newest mood has lasted (`run_length`), the local hour and weekday of the newest play, how many plays
the session has had and for how long it has run, and (the `audio` group) the window's audio-feature
means and spreads and the newest play's features. Training pairs each context with the mood of the
session's next play; serving computes the context ending at the newest play.

The audio-independent part is computed once (`contexts`); the mood columns are filled in for a
given labelling of the plays (`with_moods`), so a backtest fold can relabel the plays with clusters
fitted before its cut without recomputing the rest.

The predecessor's `session_length` (the whole session's length, unknown while the session is still
running) is dropped: `session_position`, the number of plays so far, is its causal counterpart.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ..plays.schema import CLUSTER_FEATURES, UNASSIGNED_MOOD
from .local_time import calendar_features, to_local

DEFAULT_WINDOW = 3
TARGET = "target_mood_cluster"
CALENDAR = ["hour_sin", "hour_cos", "day_sin", "day_cos", "is_weekend"]
AUDIO = [f"{f}_{stat}" for f in CLUSTER_FEATURES for stat in ("mean", "std")] + [f"current_{f}" for f in CLUSTER_FEATURES]
#: columns of the dataset that are not features: the split uses them
SPLIT_COLUMNS = ["session_id", "played_at"]
_REQUIRED = ["played_at", "session_id", "mood_cluster_id"] + CLUSTER_FEATURES


def mood_columns(window: int) -> list[str]:
    """The window's moods as integers, oldest first (what the Markov baselines read)."""
    return [f"mood_cluster_{i}" for i in range(window)]


def feature_columns(window: int = DEFAULT_WINDOW, cluster_ids=(), audio: bool = True) -> list[str]:
    """The model's inputs, in order: moods of the window (integers, one-hot per lag, changes, run
    length), time, position, and with `audio` the window's audio-feature statistics."""
    onehot = [f"last{k}_is_{int(c)}" for k in range(1, window + 1) for c in sorted(cluster_ids)]
    changes = [f"changed_{k}" for k in range(1, window)]
    return mood_columns(window) + onehot + changes + ["run_length"] + CALENDAR + ["session_position", "time_since_session_start"] + (AUDIO if audio else [])


def _prepare(history: pd.DataFrame, window: int) -> pd.DataFrame:
    if window < 1:
        raise ValueError(f"the mood window must hold at least one play, got {window}")
    missing = [c for c in _REQUIRED if c not in history]
    if missing:
        raise ValueError(f"history lacks the columns {missing}")
    return history.sort_values("played_at", kind="stable").reset_index(drop=True)


@dataclass
class Contexts:
    """Every window of `window` plays of one session, with what does not depend on the moods."""

    window: int
    base: pd.DataFrame  # calendar, position, audio statistics, session_id, context_played_at, row
    lags: np.ndarray  # contexts × window row indices into the sorted history, oldest first
    session: np.ndarray  # session id of every play of the sorted history
    played_at: np.ndarray  # play times of the sorted history (datetime64[ms, UTC] values)


def contexts(history: pd.DataFrame, window: int, tz: ZoneInfo | str) -> Contexts:
    """The mood-independent part of every context: computed once, shared by every labelling."""
    df = _prepare(history, window)
    position = df.groupby("session_id", sort=False).cumcount().to_numpy()
    ends = np.flatnonzero(position >= window - 1)
    lags = ends[:, None] - np.arange(window - 1, -1, -1)[None, :]  # oldest first
    feats = df[CLUSTER_FEATURES].to_numpy(dtype="float64")[lags]  # rows × window × features
    played_at = df["played_at"].iloc[ends].reset_index(drop=True)
    base = pd.DataFrame(calendar_features(to_local(played_at, tz)).to_numpy(), columns=CALENDAR)
    base["is_weekend"] = base["is_weekend"].astype("int64")
    base["session_position"] = position[ends] + 1
    session_start = df.groupby("session_id", sort=False)["played_at"].transform("min").iloc[ends].reset_index(drop=True)
    base["time_since_session_start"] = (played_at - session_start).dt.total_seconds().to_numpy() / 60.0
    mean, std = feats.mean(axis=1), feats.std(axis=1)
    for j, f in enumerate(CLUSTER_FEATURES):
        base[f"{f}_mean"] = mean[:, j]
        base[f"{f}_std"] = std[:, j]
    for j, f in enumerate(CLUSTER_FEATURES):
        base[f"current_{f}"] = feats[:, -1, j]
    base["session_id"] = df["session_id"].to_numpy(dtype="int64")[ends]
    base["context_played_at"] = played_at
    base["row"] = ends
    return Contexts(window, base, lags, df["session_id"].to_numpy(dtype="int64"), df["played_at"].to_numpy())


def with_moods(ctx: Contexts, moods: np.ndarray, cluster_ids, targets: bool = True) -> pd.DataFrame:
    """The contexts whose window moods are all assigned, with the mood columns of this labelling
    (`moods`: one cluster id per play of the sorted history) and, with `targets`, only those followed
    by an assigned play of the same session: TARGET and `played_at` (the target play's time)."""
    moods = np.asarray(moods, dtype="int64")
    window = ctx.window
    lag_moods = moods[ctx.lags] if len(ctx.lags) else np.empty((0, window), dtype="int64")
    keep = (lag_moods != UNASSIGNED_MOOD).all(axis=1)
    if targets:
        nxt = ctx.base["row"].to_numpy() + 1
        inside = nxt < len(moods)
        nxt_safe = np.where(inside, nxt, 0)
        keep &= inside & (ctx.session[nxt_safe] == ctx.base["session_id"].to_numpy()) & (moods[nxt_safe] != UNASSIGNED_MOOD)
    # run length: plays in a row with the newest mood, within the session
    new_run = np.r_[True, (ctx.session[1:] != ctx.session[:-1]) | (moods[1:] != moods[:-1])]
    run_length = pd.Series(np.cumsum(new_run)).groupby(np.cumsum(new_run)).cumcount().to_numpy() + 1
    rows = ctx.base["row"].to_numpy()[keep]
    lag_moods = lag_moods[keep]
    columns = {f"mood_cluster_{i}": lag_moods[:, i] for i in range(window)}
    for k in range(1, window + 1):
        for c in sorted(int(c) for c in cluster_ids):
            columns[f"last{k}_is_{c}"] = (lag_moods[:, window - k] == c).astype("int64")
    for k in range(1, window):
        columns[f"changed_{k}"] = (lag_moods[:, window - k] != lag_moods[:, window - k - 1]).astype("int64")
    columns["run_length"] = run_length[rows]
    out = pd.concat([pd.DataFrame(columns), ctx.base[keep].reset_index(drop=True)], axis=1)
    if targets:
        out["played_at"] = pd.to_datetime(ctx.played_at[rows + 1], utc=True).as_unit("ms")
        out[TARGET] = moods[rows + 1]
    return out


def _cluster_ids(history: pd.DataFrame, cluster_ids) -> list[int]:
    if cluster_ids is not None:
        return sorted(int(c) for c in cluster_ids)
    ids = history["mood_cluster_id"].to_numpy() if len(history) else np.empty(0, dtype="int64")
    return sorted(int(c) for c in np.unique(ids[ids != UNASSIGNED_MOOD]))


def context_features(history: pd.DataFrame, window: int, tz: ZoneInfo | str, cluster_ids=None) -> pd.DataFrame:
    """One row per play that closes `window` plays of its session with observed moods.

    Columns: feature_columns(window, cluster_ids), then `session_id`, `context_played_at` (the
    window's last play) and `row` (that play's position in `history` sorted by time).
    """
    df = _prepare(history, window)
    return with_moods(contexts(df, window, tz), df["mood_cluster_id"].to_numpy(), _cluster_ids(df, cluster_ids), targets=False)


def mood_dataset(history: pd.DataFrame, window: int = DEFAULT_WINDOW, tz: ZoneInfo | str = "UTC", cluster_ids=None) -> pd.DataFrame:
    """processed/mood_nexttrack_train.parquet: every context followed by a play in the same session.

    `played_at` is the target play's time (what the backtest cuts on); `session_id` groups the rows
    of a session (the bootstrap resamples sessions). One-hot columns cover `cluster_ids` (default:
    the moods in history).
    """
    df = _prepare(history, window)
    ids = _cluster_ids(df, cluster_ids)
    out = with_moods(contexts(df, window, tz), df["mood_cluster_id"].to_numpy(), ids)
    return out[feature_columns(window, ids) + ["session_id", "played_at", TARGET]].reset_index(drop=True)


def latest_context(history: pd.DataFrame, window: int, tz: ZoneInfo | str, cluster_ids=None) -> pd.DataFrame:
    """The context ending at the newest play (0 rows when its session has fewer than `window` plays)."""
    if len(history) == 0:
        return context_features(history, window, tz, cluster_ids or [])
    df = _prepare(history, window)
    ids = _cluster_ids(df, cluster_ids)
    last_session = df["session_id"].iloc[-1]
    tail = df[df["session_id"] == last_session].reset_index(drop=True)
    ctx = context_features(tail, window, tz, ids)
    return ctx[ctx["row"] == len(tail) - 1].reset_index(drop=True)
