"""The listener's clock: every hour-of-day and day-of-week the models see is local, never UTC."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd


def to_local(played_at: pd.Series | pd.DatetimeIndex, tz: ZoneInfo | str) -> pd.Series:
    """UTC instants as wall-clock times in `tz` (daylight saving applied per instant)."""
    series = pd.Series(played_at) if isinstance(played_at, pd.DatetimeIndex) else played_at
    if series.dt.tz is None:
        raise ValueError("timestamps must be timezone-aware (UTC); naive times are ambiguous")
    return series.dt.tz_convert(tz)


def cyclical(values: np.ndarray | pd.Series, period: float) -> tuple[np.ndarray, np.ndarray]:
    """sin/cos encoding so that 23:00 sits next to 00:00 and Sunday next to Monday."""
    angle = 2 * np.pi * np.asarray(values, dtype="float64") / period
    return np.sin(angle), np.cos(angle)


def calendar_features(local: pd.Series) -> pd.DataFrame:
    """hour_sin/cos, day_sin/cos (Monday = 0) and is_weekend of local times."""
    hour = local.dt.hour.to_numpy()
    dow = local.dt.day_of_week.to_numpy()
    hour_sin, hour_cos = cyclical(hour, 24)
    day_sin, day_cos = cyclical(dow, 7)
    return pd.DataFrame(
        {
            "hour_sin": hour_sin,
            "hour_cos": hour_cos,
            "day_sin": day_sin,
            "day_cos": day_cos,
            "is_weekend": (dow >= 5).astype("int64"),
        },
        index=local.index,
    )
