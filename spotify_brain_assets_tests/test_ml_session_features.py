"""Session-start features of the day-ahead outlook: known answers, no leakage, local hours through DST."""

import numpy as np
import pandas as pd
import pytest

from spotify_brain_assets.ml.session_features import (
    FEATURE_COLUMNS,
    LEADS,
    TARGET,
    hour_grid,
    outlook_features,
    session_dataset,
    training_origins,
)
from spotify_brain_assets.plays.sessions import session_ids

pytestmark = pytest.mark.fast  # pure logic


def plays_at(times: list[str]) -> pd.DataFrame:
    played = pd.Series(pd.to_datetime(times, utc=True)).sort_values(ignore_index=True).dt.as_unit("ms")
    return pd.DataFrame({"played_at": played, "session_id": session_ids(played)})


HANDMADE = plays_at(
    [
        "2026-01-05 08:10", "2026-01-05 08:20", "2026-01-05 08:40",  # A: 30 minutes
        "2026-01-06 08:05",  # B: one play
        "2026-01-07 20:00", "2026-01-07 20:15",  # C
        "2026-01-08 12:00",  # D: makes every hour above known
    ]
)


def ahead(origin: str, history=HANDMADE, tz="UTC") -> pd.DataFrame:
    return outlook_features(history, pd.DatetimeIndex([pd.Timestamp(origin, tz="UTC")]), tz).set_index("hour_start")


def test_known_answers_for_a_prediction_made_mid_hour_while_a_session_may_run():
    rows = ahead("2026-01-06 08:30")
    assert len(rows) == LEADS and rows.index[0] == pd.Timestamp("2026-01-06 09:00", tz="UTC")
    assert rows["lead_hours"].tolist() == [0.5 + i for i in range(LEADS)]
    first = rows.iloc[0]
    assert first["session_running"] == 1  # the last play was 25 minutes ago, within the session gap
    assert first["minutes_since_last_play"] == pytest.approx(25)
    assert first["minutes_since_last_session_end"] == pytest.approx(23 * 60 + 50)  # A ended 08:40 the day before
    assert first["starts_last_24h"] == 1 and first["starts_last_7d"] == 2
    assert first["avg_session_duration_last_7d"] == pytest.approx((30 + 0) / 2)  # B so far: one play
    assert first["total_tracks_last_7d"] == 4 and first["total_tracks_last_30d"] == 4
    eight = rows.loc[pd.Timestamp("2026-01-07 08:00", tz="UTC")]
    assert eight["lead_hours"] == 23.5 and eight["hour"] == 8 and eight["day_of_week"] == 2
    # only A's 08:00 counts: B's hour holds the prediction time, so it had not elapsed
    assert eight["rolling_listening_frequency_7d"] == 1 and eight["hour_of_week_starts_4w"] == 0
    assert eight[TARGET] == 0
    assert (rows["session_running"] == 1).all()  # the state is the one at the prediction time, on every row


def test_known_answers_for_a_prediction_on_the_hour_after_a_quiet_spell():
    rows = ahead("2026-01-07 00:00")
    assert rows.index[0] == pd.Timestamp("2026-01-07 00:00", tz="UTC") and rows["lead_hours"].iloc[0] == 0
    c = rows.loc[pd.Timestamp("2026-01-07 20:00", tz="UTC")]
    assert c[TARGET] == 1 and c["lead_hours"] == 20 and c["rolling_listening_frequency_7d"] == 0
    assert c["session_running"] == 0 and c["minutes_since_last_play"] == pytest.approx(15 * 60 + 55)
    assert c["minutes_since_last_session_end"] == c["minutes_since_last_play"]  # B ended at its only play
    assert rows.loc[pd.Timestamp("2026-01-07 08:00", tz="UTC"), "rolling_listening_frequency_7d"] == 2
    before_any = ahead("2026-01-01 00:00").iloc[0]
    assert before_any["minutes_since_last_play"] == before_any["minutes_since_last_session_end"] == 90 * 24 * 60  # capped: never
    assert before_any["starts_last_7d"] == 0 and before_any["hour_of_week_rate"] == 0


def test_hours_after_the_newest_play_have_no_target_yet():
    rows = ahead("2026-01-08 00:00")
    known = rows[TARGET].notna()
    assert known.loc[: pd.Timestamp("2026-01-08 10:00", tz="UTC")].all()
    assert rows[TARGET].loc[pd.Timestamp("2026-01-08 12:00", tz="UTC") :].isna().all()


def random_plays(seed: int, days: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    starts = pd.Timestamp("2026-02-20", tz="UTC") + pd.to_timedelta(np.sort(rng.uniform(0, days * 24, days * 2)), unit="h")
    lengths = rng.integers(1, 25, len(starts))  # sessions of up to two hours straddle hour starts
    offsets = np.concatenate([np.arange(n) * rng.integers(2, 6) for n in lengths])
    times = np.repeat(starts.as_unit("ns").asi8, lengths) + offsets * 60_000_000_000
    return plays_at(list(pd.to_datetime(np.unique(times), utc=True).astype(str)))


@pytest.mark.parametrize("seed", [1, 2])
def test_no_feature_uses_anything_from_the_prediction_time_on(seed):
    plays = random_plays(seed)
    rng = np.random.default_rng(seed)
    span = plays["played_at"].max() - plays["played_at"].min()
    origins = pd.DatetimeIndex(plays["played_at"].min() + span * np.sort(rng.uniform(0.1, 0.9, 30))).floor("s")
    full = outlook_features(plays, origins, "Europe/Stockholm")
    known = pd.concat([outlook_features(plays[plays["played_at"] < o], pd.DatetimeIndex([o]), "Europe/Stockholm") for o in origins], ignore_index=True)
    pd.testing.assert_frame_equal(known[FEATURE_COLUMNS], full[FEATURE_COLUMNS], check_dtype=False)


def test_local_hours_through_both_stockholm_changes():
    tz = "Europe/Stockholm"
    days = pd.date_range("2026-03-20 07:30", "2026-04-01 07:30", freq="D", tz=tz)
    autumn = pd.date_range("2026-10-15 07:30", "2026-10-27 07:30", freq="D", tz=tz)
    plays = plays_at(list(days.tz_convert("UTC").astype(str)) + list(autumn.tz_convert("UTC").astype(str)))
    spring = outlook_features(plays, pd.DatetimeIndex([pd.Timestamp("2026-03-28 22:00", tz=tz).tz_convert("UTC")]), tz)
    assert len(spring) == 24 and 2 not in spring["hour"].tolist()  # 02:00 does not exist on 29 March
    assert (spring["hour_start"].diff().dropna() == pd.Timedelta(hours=1)).all()
    seven = spring[spring["hour"] == 7].iloc[0]
    assert seven["rolling_listening_frequency_7d"] == 7 and seven[TARGET] == 1  # 07:30 local every day, across the change
    fall = outlook_features(plays, pd.DatetimeIndex([pd.Timestamp("2026-10-24 22:00", tz=tz).tz_convert("UTC")]), tz)
    assert fall["hour"].tolist().count(2) == 2  # 02:00 happens twice on 25 October
    assert fall[fall["hour"] == 7].iloc[0]["rolling_listening_frequency_7d"] == 7


def test_training_origins_fall_every_few_hours_at_a_random_minute_with_a_known_day_ahead():
    plays = random_plays(3)
    origins = training_origins(plays, "UTC", 3, seed=5)
    assert (origins == training_origins(plays, "UTC", 3, seed=5)).all()
    grid = hour_grid(plays["played_at"].min(), plays["played_at"].max(), "UTC")
    assert set(origins.floor("h")) <= set(grid[::3])
    assert origins.minute.nunique() > 10
    assert (origins + pd.Timedelta(hours=LEADS + 1) <= plays["played_at"].max()).all()
    ds = session_dataset(plays, "UTC", 3, seed=5)
    assert len(ds) == LEADS * len(origins) and ds[TARGET].isin([0, 1]).all() and not ds[FEATURE_COLUMNS].isna().any().any()
    with pytest.raises(ValueError, match="at least one hour"):
        training_origins(plays, "UTC", 0, seed=5)


def test_empty_history_gives_an_empty_dataset_with_the_columns():
    ds = session_dataset(plays_at([]), "UTC")
    assert len(ds) == 0 and set(FEATURE_COLUMNS + [TARGET, "origin", "hour_start"]) <= set(ds.columns)
