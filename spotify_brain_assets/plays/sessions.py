"""Listening sessions: a new session starts after a gap of more than `gap_minutes` without a play."""

from __future__ import annotations

import numpy as np
import pandas as pd

DEFAULT_GAP_MINUTES = 30


def session_ids(played_at: pd.Series, gap_minutes: int = DEFAULT_GAP_MINUTES, start: int = 0) -> np.ndarray:
    """Session ids for sorted play times, numbered from `start` and increasing with time."""
    if len(played_at) == 0:
        return np.empty(0, dtype="int64")
    gaps = played_at.diff() > pd.Timedelta(minutes=gap_minutes)
    return start + np.cumsum(gaps.to_numpy()).astype("int64")


def renumber_tail(df: pd.DataFrame, first_new: pd.Timestamp, gap_minutes: int = DEFAULT_GAP_MINUTES) -> pd.DataFrame:
    """Recompute `session_id` from the session that `first_new` joins or follows, keeping earlier ids.

    `df` is sorted by played_at; rows before `first_new` carry valid ids. Sessions that ended before
    the earliest new play keep their ids; only the tail from the last of them on is renumbered.
    """
    out = df.copy()
    times = out["played_at"]
    ids = out["session_id"] if "session_id" in out else pd.Series(np.nan, index=out.index)
    before = (times < first_new).to_numpy() & ids.notna().to_numpy()
    if not before.any():
        out["session_id"] = session_ids(times, gap_minutes)
        return out
    last_old = np.flatnonzero(before)[-1]
    anchor_session = int(ids.iloc[last_old])
    # the tail starts at the first play of the session holding the last play before first_new
    tail_start = int(np.flatnonzero(before & (ids.to_numpy() == anchor_session))[0])
    tail_ids = session_ids(times.iloc[tail_start:], gap_minutes, start=anchor_session)
    new_ids = ids.to_numpy(dtype="float64", na_value=np.nan).copy()
    new_ids[tail_start:] = tail_ids
    out["session_id"] = new_ids.astype("int64")
    return out


def gap_rule_violations(df: pd.DataFrame, gap_minutes: int = DEFAULT_GAP_MINUTES) -> int:
    """How many rows break the gap rule (a new id without a gap, or a gap without a new id)."""
    if len(df) < 2:
        return 0
    gap = (df["played_at"].diff() > pd.Timedelta(minutes=gap_minutes)).to_numpy()[1:]
    step = np.diff(df["session_id"].to_numpy())
    return int(((gap & (step != 1)) | (~gap & (step != 0))).sum())
