"""Plays lost to the recently-played window: detecting the gap and estimating what it held.

Spotify lists only the newest 50 plays. When a run's page is full and even its oldest play is newer
than the newest play already stored, whatever was played between the two fell out of the window
before any run saw it. Only Spotify's data export can bring those plays back.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

#: with this much history the estimate uses the listener's hour of the week, else the hour of the day
WEEKLY_PROFILE_DAYS = 14
HOUR = pd.Timedelta(hours=1)


def find_gap(page_played_at: pd.Series, newest_known: pd.Timestamp | None, window: int) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """(newest stored play, oldest play on the page) when the page is full and does not reach back to
    the stored plays; None when the page may hold everything since (or nothing is stored yet)."""
    if newest_known is None or pd.isna(newest_known) or len(page_played_at) < window:
        return None
    oldest = pd.to_datetime(page_played_at, utc=True, format="ISO8601").min()
    return (pd.Timestamp(newest_known), oldest) if oldest > newest_known else None


def _profile_key(hours: pd.DatetimeIndex, tz: ZoneInfo, weekly: bool) -> np.ndarray:
    local = hours.tz_convert(tz)
    return (local.day_of_week * 24 + local.hour).to_numpy() if weekly else local.hour.to_numpy()


def estimate_plays(played_at: pd.Series, start: pd.Timestamp, end: pd.Timestamp, tz: ZoneInfo | str) -> float:
    """Plays the listener would typically have made between `start` and `end`.

    The mean number of plays in each local hour of the week (of the day, with under two weeks of
    history) over the stored history's span, summed over the gap's hours (partial hours pro rata).
    """
    tz = ZoneInfo(str(tz))
    played = pd.DatetimeIndex(pd.to_datetime(played_at, utc=True))
    if len(played) == 0 or end <= start:
        return 0.0
    first, last = played.min().floor("h"), played.max().floor("h")
    weekly = last - first >= pd.Timedelta(days=WEEKLY_PROFILE_DAYS)
    span = pd.date_range(first, last, freq="h")
    occurrences = np.bincount(_profile_key(span, tz, weekly), minlength=168 if weekly else 24)
    plays = np.bincount(_profile_key(played.floor("h"), tz, weekly), minlength=len(occurrences))
    rate = np.divide(plays, occurrences, out=np.zeros(len(occurrences)), where=occurrences > 0)
    gap_hours = pd.date_range(start.floor("h"), end.floor("h"), freq="h")
    covered = ((np.minimum(gap_hours + HOUR, end) - np.maximum(gap_hours, start)) / HOUR).to_numpy().clip(0, 1)
    return float((rate[_profile_key(gap_hours, tz, weekly)] * covered).sum())


def gap_record(start: pd.Timestamp, end: pd.Timestamp, estimated: float, detected_at: pd.Timestamp, partition: str) -> dict:
    return {
        "from": start.tz_convert("UTC").isoformat(),
        "to": end.tz_convert("UTC").isoformat(),
        "hours": round((end - start) / HOUR, 2),
        "estimated_plays": int(round(estimated)),
        "detected_at": pd.Timestamp(detected_at).tz_convert("UTC").isoformat(),
        "partition": partition,
    }


def add_gap(recorded: list[dict], gap: dict) -> list[dict]:
    """`recorded` with `gap` (one entry per span: a re-run that finds the same gap keeps the first)."""
    spans = {(g["from"], g["to"]) for g in recorded}
    out = list(recorded) + ([gap] if (gap["from"], gap["to"]) not in spans else [])
    return sorted(out, key=lambda g: pd.Timestamp(g["from"]))
