"""Session-start features for the day-ahead outlook: the one feature function of training and serving.

The task is the one `predictions` serves: at a prediction time `origin` (any instant), the
probability that a listening session starts in each of the 24 local hours after it. A row is one
(origin, hour) pair, and every feature is known at `origin`:

- the hour itself: `lead_hours` (how far ahead of origin it begins), local `hour`, `day_of_week`,
  their sin/cos and `is_weekend`;
- its habit, from the hours that had fully elapsed at origin: on how many of the last 7 and 30
  days a session started in this local hour (`rolling_listening_frequency_7d/30d`), in how many of
  the last 4 and 12 weeks one started in this hour of the week (`hour_of_week_starts_4w/12w`), and
  the smoothed rate of this hour of the day and of the week over all history (`hour_of_day_rate`,
  `hour_of_week_rate`, the priors the model must beat);
- the listener's state at origin: `session_running` (a play within the session gap), minutes since
  the last play and since the last session ended, session starts in the last 24 hours and 7 days,
  the mean duration of the last 7 days' sessions, plays in the last 7 and 30 days.

Training takes origins every few hours with seeded minute offsets (predictions run at any minute),
so the model is trained and evaluated the way it is served. Rows follow real elapsed hours: a
daylight-saving day has 23 or 25 local hours.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ..plays.sessions import DEFAULT_GAP_MINUTES
from .local_time import cyclical, to_local

TARGET = "target_session_start"
LEADS = 24
SLOT_COLUMNS = [
    "lead_hours",
    "hour",
    "hour_sin",
    "hour_cos",
    "day_of_week",
    "day_sin",
    "day_cos",
    "is_weekend",
    "rolling_listening_frequency_7d",
    "rolling_listening_frequency_30d",
    "hour_of_week_starts_4w",
    "hour_of_week_starts_12w",
    "hour_of_day_rate",
    "hour_of_week_rate",
]
STATE_COLUMNS = [
    "session_running",
    "minutes_since_last_play",
    "minutes_since_last_session_end",
    "starts_last_24h",
    "starts_last_7d",
    "avg_session_duration_last_7d",
    "total_tracks_last_7d",
    "total_tracks_last_30d",
]
FEATURE_COLUMNS = SLOT_COLUMNS + STATE_COLUMNS
#: columns of the dataset that are not features: what a row is about
KEY_COLUMNS = ["origin", "hour_start"]
HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)
HOUR_MS, DAY_MS, MINUTE_MS = 3_600_000, 86_400_000, 60_000
#: "long ago" for minutes-since features before the first play (90 days)
MINUTES_CAP = 90 * 24 * 60
#: pseudo-observations pulling a rate toward its parent (hour of week → hour of day → overall)
PRIOR_STRENGTH = 5.0


def sessions_table(history: pd.DataFrame) -> pd.DataFrame:
    """start, end (last play) and plays of every session, ordered by start."""
    if len(history) == 0:
        return pd.DataFrame({"start": pd.Series(dtype="datetime64[ms, UTC]"), "end": pd.Series(dtype="datetime64[ms, UTC]"), "plays": pd.Series(dtype="int64")})
    grouped = history.groupby("session_id")["played_at"]
    table = pd.DataFrame({"start": grouped.min(), "end": grouped.max(), "plays": grouped.size()})
    return table.sort_values("start").reset_index(drop=True)


def local_hour_start(moment: pd.Timestamp, tz: ZoneInfo | str) -> pd.Timestamp:
    """The instant at which the local hour holding `moment` began (works for :30 and :45 offsets)."""
    local = moment.tz_convert(tz)
    return (local - pd.Timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond, nanoseconds=local.nanosecond)).tz_convert("UTC")


def hour_grid(first: pd.Timestamp, last: pd.Timestamp, tz: ZoneInfo | str) -> pd.DatetimeIndex:
    """Every local hour from the one holding `first` to the one holding `last`, as UTC instants."""
    return pd.date_range(local_hour_start(first, tz), local_hour_start(last, tz), freq="h", tz="UTC").as_unit("ms")


def smoothed_rate(starts: np.ndarray, hours: np.ndarray, parent: np.ndarray | float, strength: float = PRIOR_STRENGTH) -> np.ndarray:
    """(starts + strength × parent) / (hours + strength): a cell's rate, shrunk toward its parent's."""
    return (np.asarray(starts, dtype="float64") + strength * parent) / (np.asarray(hours, dtype="float64") + strength)


def _ms(times) -> np.ndarray:
    return pd.DatetimeIndex(times).tz_convert("UTC").as_unit("ms").asi8


class _Counter:
    """How many grid hours of a slot (local hour, or hour of the week) lie in [a, b) of the grid, in
    all and with a session start: searchsorted on (slot, index) keys, no loop over hours."""

    def __init__(self, slot: np.ndarray, started: np.ndarray):
        self.n = len(slot) + 1
        keys = slot.astype("int64") * self.n + np.arange(len(slot))
        self.all, self.started = np.sort(keys), np.sort(keys[started])

    def _count(self, keys: np.ndarray, slot: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        base = slot.astype("int64") * self.n
        a, b = np.clip(a, 0, self.n - 1), np.clip(b, 0, self.n - 1)
        return np.searchsorted(keys, base + b) - np.searchsorted(keys, base + a)

    def starts(self, slot, a, b):
        return self._count(self.started, slot, a, b)

    def hours(self, slot, a, b):
        return self._count(self.all, slot, a, b)


def _state(history: pd.DataFrame, t: np.ndarray, gap_minutes: int) -> dict[str, np.ndarray]:
    """The listener's state at each instant of `t` (ms), from plays strictly before it."""
    plays = np.sort(history["played_at"].dt.as_unit("ms").astype("int64").to_numpy()) if len(history) else np.empty(0, dtype="int64")
    sessions = sessions_table(history)
    starts = sessions["start"].dt.as_unit("ms").astype("int64").to_numpy()
    ends = sessions["end"].dt.as_unit("ms").astype("int64").to_numpy()
    before = np.searchsorted(plays, t, side="left")
    last_play = plays[np.maximum(before - 1, 0)] if len(plays) else np.zeros(len(t), dtype="int64")
    since_play = np.where(before > 0, (t - last_play) / MINUTE_MS, np.inf)
    running = since_play <= gap_minutes
    k = np.searchsorted(starts, t, side="left")  # sessions started before t
    # the newest finished session: the one before the running one, else the newest one (ended at its last play)
    prev_end = ends[np.maximum(k - 2, 0)] if len(ends) else np.zeros(len(t), dtype="int64")
    since_end = np.where(running, np.where(k >= 2, (t - prev_end) / MINUTE_MS, np.inf), since_play)
    # sessions started in [t - 7d, t): all but the newest are over; the newest counts up to its last play before t
    lo = np.searchsorted(starts, t - 7 * DAY_MS, side="left")
    duration = (ends - starts) / MINUTE_MS
    cum = np.concatenate([[0.0], np.cumsum(duration)])
    newest = np.where(k > 0, (last_play - starts[np.maximum(k - 1, 0)]) / MINUTE_MS, 0.0) if len(starts) else np.zeros(len(t))
    count = k - lo
    total = cum[np.maximum(k - 1, lo)] - cum[lo] + np.where(count > 0, newest, 0.0)
    return {
        "session_running": running.astype("int64"),
        "minutes_since_last_play": np.minimum(since_play, MINUTES_CAP),
        "minutes_since_last_session_end": np.minimum(since_end, MINUTES_CAP),
        "starts_last_24h": k - np.searchsorted(starts, t - DAY_MS, side="left"),
        "starts_last_7d": count,
        "avg_session_duration_last_7d": np.where(count > 0, total / np.maximum(count, 1), 0.0),
        "total_tracks_last_7d": before - np.searchsorted(plays, t - 7 * DAY_MS, side="left"),
        "total_tracks_last_30d": before - np.searchsorted(plays, t - 30 * DAY_MS, side="left"),
    }


def hourly_starts(history: pd.DataFrame, grid: pd.DatetimeIndex) -> np.ndarray:
    """1 where a session starts within [hour, hour + 1 h), for each hour of `grid`."""
    starts = sessions_table(history)["start"].dt.as_unit("ms").astype("int64").to_numpy()
    t = _ms(grid)
    return (np.searchsorted(starts, t + HOUR_MS) > np.searchsorted(starts, t)).astype("int64")


def outlook_features(history: pd.DataFrame, origins, tz: ZoneInfo | str, gap_minutes: int = DEFAULT_GAP_MINUTES, leads: int = LEADS) -> pd.DataFrame:
    """FEATURE_COLUMNS for the `leads` local hours after each origin (one row per pair), plus
    `origin`, `hour_start`, `date` (the hour's local date) and TARGET where the hour is over in
    `history` (NaN for hours after its newest play: their outcome is not known yet)."""
    tz = ZoneInfo(tz) if isinstance(tz, str) else tz
    origins = pd.DatetimeIndex(origins).tz_convert("UTC").as_unit("ms")
    if len(origins) == 0:
        return pd.DataFrame(columns=KEY_COLUMNS + ["date"] + FEATURE_COLUMNS + [TARGET])
    first = min(history["played_at"].min(), origins.min()) if len(history) else origins.min()
    grid = hour_grid(first, origins.max() + (leads + 1) * HOUR, tz)
    g = _ms(grid)
    local = to_local(pd.Series(grid), tz)
    hour_of_day = local.dt.hour.to_numpy()
    dow = local.dt.day_of_week.to_numpy()
    started = hourly_starts(history, grid).astype(bool)
    by_hour, by_week = _Counter(hour_of_day, started), _Counter(dow * 24 + hour_of_day, started)

    t0 = _ms(origins)
    j = np.searchsorted(g, t0, side="right") - 1  # the grid hour holding each origin: hours before it have elapsed
    first_ahead = np.where(g[j] == t0, j, j + 1)
    rows_o = np.repeat(np.arange(len(t0)), leads)
    idx = np.repeat(first_ahead, leads) + np.tile(np.arange(leads), len(t0))
    jo, to = j[rows_o], t0[rows_o]
    h, w = hour_of_day[idx], dow[idx] * 24 + hour_of_day[idx]

    out = pd.DataFrame({"origin": origins[rows_o], "hour_start": grid[idx], "date": local.dt.date.to_numpy()[idx]})
    out["lead_hours"] = (g[idx] - to) / HOUR_MS
    out["hour"] = h.astype("int64")
    out["hour_sin"], out["hour_cos"] = cyclical(h, 24)
    out["day_of_week"] = dow[idx].astype("int64")
    out["day_sin"], out["day_cos"] = cyclical(dow[idx], 7)
    out["is_weekend"] = (dow[idx] >= 5).astype("int64")
    for days in (7, 30):
        out[f"rolling_listening_frequency_{days}d"] = by_hour.starts(h, jo - days * 24, jo)
    for weeks in (4, 12):
        out[f"hour_of_week_starts_{weeks}w"] = by_week.starts(w, jo - weeks * 168, jo)
    zero = np.zeros_like(jo)
    overall = np.r_[0, np.cumsum(started)][jo] / np.maximum(jo, 1)
    out["hour_of_day_rate"] = smoothed_rate(by_hour.starts(h, zero, jo), by_hour.hours(h, zero, jo), overall)
    out["hour_of_week_rate"] = smoothed_rate(by_week.starts(w, zero, jo), by_week.hours(w, zero, jo), out["hour_of_day_rate"].to_numpy())
    state = _state(history, t0, gap_minutes)
    for name in STATE_COLUMNS:
        out[name] = state[name][rows_o]
    newest = history["played_at"].max() if len(history) else None
    known = (g[idx] + HOUR_MS <= _ms([newest])[0]) if newest is not None else np.zeros(len(idx), dtype=bool)
    out[TARGET] = np.where(known, started[idx], np.nan)
    return out


def training_origins(history: pd.DataFrame, tz: ZoneInfo | str, step_hours: int, seed: int) -> pd.DatetimeIndex:
    """Prediction times to train on: every `step_hours` local hours from the first play's hour, each
    at a seeded random minute (predictions are made at any minute), while a full day ahead is known."""
    if step_hours < 1:
        raise ValueError(f"origin step must be at least one hour, got {step_hours}")
    if len(history) == 0:
        return pd.DatetimeIndex([], tz="UTC").as_unit("ms")
    newest = history["played_at"].max()
    grid = hour_grid(history["played_at"].min(), newest, tz)[::step_hours]
    offsets = np.random.default_rng(seed).integers(0, 60, len(grid))
    origins = grid + pd.to_timedelta(offsets, unit="min")
    return origins[origins + (LEADS + 1) * HOUR <= newest]


def session_dataset(history: pd.DataFrame, tz: ZoneInfo | str, step_hours: int = 3, seed: int = 42) -> pd.DataFrame:
    """processed/session_start_train.parquet: 24 rows (one per hour ahead) per training origin."""
    out = outlook_features(history, training_origins(history, tz, step_hours, seed), tz)
    out[TARGET] = out[TARGET].astype("int64")
    return out.reset_index(drop=True)
