"""Session-start features: one row per local hour, the one feature function of training and serving.

A row describes the hour beginning at `hour_start` (an instant; the listener's wall clock gives its
`date` and `hour`). Every feature uses only plays before `hour_start`:

- rolling_listening_frequency_7d/30d: of the 7 (30) local days before this one, how many had a
  session start in this local hour;
- time_since_last_session: hours since the most recent session start (NaN before the first);
- avg_session_duration_last_7d: mean duration in minutes of the sessions that started in the 7 days
  before the hour, each as far as it was observable then (a session still running counts its plays
  so far); 0 when there were none;
- total_tracks_last_7d/30d: plays in the 7 (30) days before the hour.

The target `target_session_start` is 1 when a session starts within the hour. Rows follow real
elapsed hours, so a spring-forward day has 23 rows and a fall-back day 25 (its repeated local hour
appears twice, with different instants).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from .local_time import cyclical, to_local

TARGET = "target_session_start"
FEATURE_COLUMNS = [
    "hour",
    "hour_sin",
    "hour_cos",
    "day_sin",
    "day_cos",
    "day_of_month",
    "is_weekend",
    "rolling_listening_frequency_7d",
    "rolling_listening_frequency_30d",
    "time_since_last_session",
    "avg_session_duration_last_7d",
    "total_tracks_last_7d",
    "total_tracks_last_30d",
]
HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)


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
    start = local_hour_start(first, tz)
    end = local_hour_start(last, tz)
    return pd.date_range(start, end, freq="h", tz="UTC").as_unit("ms")


def local_day_hours(day: pd.Timestamp, tz: ZoneInfo | str) -> pd.DatetimeIndex:
    """The hours of one local calendar day (23, 24 or 25 of them) as UTC instants."""
    midnight = pd.Timestamp(day.tz_convert(tz).date()).tz_localize(tz, ambiguous=False, nonexistent="shift_forward")
    next_midnight = pd.Timestamp((midnight + pd.Timedelta(hours=26)).date()).tz_localize(tz, ambiguous=False, nonexistent="shift_forward")
    hours = pd.date_range(midnight.tz_convert("UTC"), next_midnight.tz_convert("UTC"), freq="h", inclusive="left")
    return hours.as_unit("ms")


def _count_before(sorted_times: np.ndarray, moments: np.ndarray) -> np.ndarray:
    return np.searchsorted(sorted_times, moments, side="left")


def session_features(history: pd.DataFrame, hours: pd.DatetimeIndex, tz: ZoneInfo | str) -> pd.DataFrame:
    """FEATURE_COLUMNS for each hour in `hours` (UTC instants of local hour starts), plus `date` and `hour_start`."""
    tz = ZoneInfo(tz) if isinstance(tz, str) else tz
    hours = pd.DatetimeIndex(hours).tz_convert("UTC").as_unit("ms")
    local = to_local(pd.Series(hours), tz)
    t = hours.asi8  # ms since epoch
    out = pd.DataFrame({"date": local.dt.date.to_numpy(), "hour_start": hours})
    hour = local.dt.hour.to_numpy()
    dow = local.dt.day_of_week.to_numpy()
    out["hour"] = hour.astype("int64")
    out["hour_sin"], out["hour_cos"] = cyclical(hour, 24)
    out["day_sin"], out["day_cos"] = cyclical(dow, 7)
    out["day_of_month"] = local.dt.day.to_numpy().astype("int64")
    out["is_weekend"] = (dow >= 5).astype("int64")

    plays = np.sort(history["played_at"].dt.as_unit("ms").astype("int64").to_numpy()) if len(history) else np.empty(0, dtype="int64")
    sessions = sessions_table(history)
    starts = sessions["start"].dt.as_unit("ms").astype("int64").to_numpy()
    ends = sessions["end"].dt.as_unit("ms").astype("int64").to_numpy()
    day_ms, hour_ms = DAY.value // 10**6, HOUR.value // 10**6

    # rolling frequency: a (local day × local hour) grid of "had a session start", summed over earlier days
    out_day = pd.to_datetime(out["date"]).to_numpy().astype("datetime64[D]")
    start_local = to_local(sessions["start"], tz)
    start_day = start_local.dt.date.to_numpy().astype("datetime64[D]")
    all_days = np.concatenate([out_day, start_day, [np.datetime64("1970-01-01", "D")]]) if not len(out_day) else np.concatenate([out_day, start_day])
    base = all_days.min()
    n_days = int((all_days.max() - base).astype("int64")) + 2
    grid = np.zeros((n_days, 24), dtype="int64")
    if len(starts):
        grid[(start_day - base).astype("int64"), start_local.dt.hour.to_numpy()] = 1
    cum = np.vstack([np.zeros((1, 24), dtype="int64"), np.cumsum(grid, axis=0)])  # cum[d] = days before d
    d = (out_day - base).astype("int64")
    for days in (7, 30):
        out[f"rolling_listening_frequency_{days}d"] = cum[d, hour] - cum[np.maximum(d - days, 0), hour]

    k = _count_before(starts, t)  # sessions started before the hour
    last_start = starts[np.maximum(k - 1, 0)] if len(starts) else np.zeros(len(t), dtype="int64")
    out["time_since_last_session"] = np.where(k > 0, (t - last_start) / hour_ms, np.nan)

    # sessions started in [t - 7d, t): all but the newest are over (the next one has begun);
    # the newest counts its duration up to its last play before t
    lo = _count_before(starts, t - 7 * day_ms)
    duration = (ends - starts) / 60_000.0
    cum_duration = np.concatenate([[0.0], np.cumsum(duration)])
    last_play = plays[np.maximum(_count_before(plays, t) - 1, 0)] if len(plays) else np.zeros(len(t), dtype="int64")
    newest_observed = np.where(k > 0, (last_play - last_start) / 60_000.0, 0.0)
    count = k - lo
    total = cum_duration[np.maximum(k - 1, lo)] - cum_duration[lo] + np.where(count > 0, newest_observed, 0.0)
    out["avg_session_duration_last_7d"] = np.where(count > 0, total / np.maximum(count, 1), 0.0)

    before = _count_before(plays, t)
    for days in (7, 30):
        out[f"total_tracks_last_{days}d"] = (before - _count_before(plays, t - days * day_ms)).astype("int64")
    return out[["date", "hour_start"] + FEATURE_COLUMNS]


def session_targets(history: pd.DataFrame, hours: pd.DatetimeIndex) -> np.ndarray:
    """1 where a session starts within [hour_start, hour_start + 1 h), else 0."""
    starts = sessions_table(history)["start"].dt.as_unit("ms").astype("int64").to_numpy()
    t = pd.DatetimeIndex(hours).tz_convert("UTC").as_unit("ms").asi8
    return (_count_before(starts, t + HOUR.value // 10**6) > _count_before(starts, t)).astype("int64")


def session_dataset(history: pd.DataFrame, tz: ZoneInfo | str) -> pd.DataFrame:
    """processed/session_start_train.parquet: every local hour from the first play's to the last play's."""
    if len(history) == 0:
        empty = session_features(history, pd.DatetimeIndex([], tz="UTC"), tz)
        return empty.assign(**{TARGET: pd.Series(dtype="int64")})
    hours = hour_grid(history["played_at"].min(), history["played_at"].max(), tz)
    out = session_features(history, hours, tz)
    out[TARGET] = session_targets(history, hours)
    return out
