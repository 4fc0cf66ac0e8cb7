"""Session-start features: known answers, no leakage, local hours through daylight-saving changes."""

import numpy as np
import pandas as pd
import pytest

from spotify_brain_assets.ml.session_features import (
    FEATURE_COLUMNS,
    TARGET,
    hour_grid,
    local_day_hours,
    session_dataset,
    session_features,
)
from spotify_brain_assets.plays.sessions import session_ids


def plays_at(times: list[str]) -> pd.DataFrame:
    played = pd.Series(pd.to_datetime(times, utc=True)).sort_values(ignore_index=True).dt.as_unit("ms")
    return pd.DataFrame({"played_at": played, "session_id": session_ids(played)})


HANDMADE = plays_at(
    [
        "2026-01-05 08:10", "2026-01-05 08:20", "2026-01-05 08:40",  # A: 30 minutes
        "2026-01-06 08:05",  # B: one play
        "2026-01-07 20:00", "2026-01-07 20:15",  # C
    ]
)


def row(ds: pd.DataFrame, hour_start: str) -> pd.Series:
    return ds.set_index("hour_start").loc[pd.Timestamp(hour_start, tz="UTC")]


def test_known_answers_for_hand_made_sessions():
    ds = session_dataset(HANDMADE, "UTC")
    assert ds["hour_start"].min() == pd.Timestamp("2026-01-05 08:00", tz="UTC")
    assert ds["hour_start"].max() == pd.Timestamp("2026-01-07 20:00", tz="UTC")
    assert len(ds) == 24 * 2 + 12 + 1
    assert ds[TARGET].sum() == 3
    b = row(ds, "2026-01-06 08:00")
    assert b[TARGET] == 1
    assert b["rolling_listening_frequency_7d"] == 1 and b["rolling_listening_frequency_30d"] == 1
    assert b["time_since_last_session"] == pytest.approx(23 + 50 / 60)
    assert b["avg_session_duration_last_7d"] == pytest.approx(30.0)
    assert b["total_tracks_last_7d"] == 3 and b["total_tracks_last_30d"] == 3
    nine = row(ds, "2026-01-06 09:00")
    assert nine[TARGET] == 0
    assert nine["time_since_last_session"] == pytest.approx(55 / 60)
    assert nine["avg_session_duration_last_7d"] == pytest.approx((30 + 0) / 2)
    assert nine["total_tracks_last_7d"] == 4
    c = row(ds, "2026-01-07 20:00")
    assert c["rolling_listening_frequency_7d"] == 0  # nobody started a session at 20:00 before
    assert row(ds, "2026-01-07 08:00")["rolling_listening_frequency_7d"] == 2
    first = row(ds, "2026-01-05 08:00")
    assert np.isnan(first["time_since_last_session"]) and first["avg_session_duration_last_7d"] == 0
    assert first["total_tracks_last_7d"] == 0 and first["hour"] == 8 and first["day_of_month"] == 5


def test_a_running_session_counts_only_what_was_played_before_the_hour():
    plays = plays_at(["2026-01-05 08:50", "2026-01-05 09:10", "2026-01-05 09:35", "2026-01-05 10:05"])
    ds = session_dataset(plays, "UTC")
    assert row(ds, "2026-01-05 09:00")["avg_session_duration_last_7d"] == pytest.approx(0.0)
    assert row(ds, "2026-01-05 10:00")["avg_session_duration_last_7d"] == pytest.approx(45.0)


def random_plays(seed: int, days: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    starts = pd.Timestamp("2026-02-20", tz="UTC") + pd.to_timedelta(np.sort(rng.uniform(0, days * 24, days * 2)), unit="h")
    lengths = rng.integers(1, 25, len(starts))  # sessions of up to two hours straddle hour starts
    offsets = np.concatenate([np.arange(n) * rng.integers(2, 6) for n in lengths])
    times = np.repeat(starts.as_unit("ns").asi8, lengths) + offsets * 60_000_000_000
    return plays_at(list(pd.to_datetime(np.unique(times), utc=True).astype(str)))


@pytest.mark.parametrize("seed", [1, 2])
def test_no_feature_uses_anything_from_the_hour_on(seed):
    plays = random_plays(seed)
    full = session_dataset(plays, "Europe/Stockholm")
    rng = np.random.default_rng(seed)
    for cut in rng.choice(full["hour_start"].to_numpy()[24:], 40, replace=False):
        cut = pd.Timestamp(cut).tz_convert("UTC") if pd.Timestamp(cut).tzinfo else pd.Timestamp(cut, tz="UTC")
        hours = full["hour_start"][full["hour_start"] <= cut]
        known = plays[plays["played_at"] < cut]
        truncated = session_features(known, pd.DatetimeIndex(hours), "Europe/Stockholm")
        expected = full[full["hour_start"] <= cut].reset_index(drop=True)
        pd.testing.assert_frame_equal(truncated[FEATURE_COLUMNS], expected[FEATURE_COLUMNS], check_dtype=False)


def test_local_hours_and_day_lengths_through_both_stockholm_changes():
    tz = "Europe/Stockholm"
    # a session at 07:30 local every day from 25 March to 1 April, and around the October change
    spring = pd.date_range("2026-03-25 07:30", "2026-04-01 07:30", freq="D", tz=tz)
    autumn = pd.date_range("2026-10-23 07:30", "2026-10-27 07:30", freq="D", tz=tz)
    plays = plays_at(list(spring.tz_convert("UTC").astype(str)) + list(autumn.tz_convert("UTC").astype(str)))
    ds = session_dataset(plays, tz)
    per_day = ds.groupby("date").size()
    assert per_day[pd.Timestamp("2026-03-29").date()] == 23
    assert per_day[pd.Timestamp("2026-10-25").date()] == 25
    assert per_day[pd.Timestamp("2026-03-30").date()] == 24
    oct25 = ds[ds["date"] == pd.Timestamp("2026-10-25").date()]
    assert (oct25["hour"] == 2).sum() == 2 and (ds[ds["date"] == pd.Timestamp("2026-03-29").date()]["hour"] == 2).sum() == 0
    starts = ds[ds[TARGET] == 1]
    assert (starts["hour"] == 7).all() and len(starts) == len(spring) + len(autumn)  # 06:30 UTC in winter, 05:30 in summer
    april1 = ds[(ds["date"] == pd.Timestamp("2026-04-01").date()) & (ds["hour"] == 7)].iloc[0]
    assert april1["rolling_listening_frequency_7d"] == 7  # 25–31 March, across the change
    assert (ds["hour_start"].diff().dropna() == pd.Timedelta(hours=1)).all()


def test_grids_for_half_hour_offsets_and_one_local_day():
    grid = hour_grid(pd.Timestamp("2026-01-05 08:45", tz="UTC"), pd.Timestamp("2026-01-05 10:10", tz="UTC"), "Asia/Kolkata")
    assert [t.tz_convert("Asia/Kolkata").strftime("%H:%M") for t in grid] == ["14:00", "15:00"]
    day = local_day_hours(pd.Timestamp("2026-03-29 12:00", tz="UTC"), "Europe/Stockholm")
    assert len(day) == 23 and day[0] == pd.Timestamp("2026-03-28 23:00", tz="UTC")


def test_empty_history_gives_an_empty_dataset_with_the_columns():
    ds = session_dataset(plays_at([]), "UTC")
    assert len(ds) == 0 and set(FEATURE_COLUMNS + [TARGET, "date", "hour_start"]) <= set(ds.columns)
