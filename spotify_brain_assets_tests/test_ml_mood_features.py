"""Next-track mood features on hand-made sessions with known answers."""

import numpy as np
import pandas as pd
import pytest

from spotify_brain_assets.ml.mood_features import TARGET, context_features, feature_columns, latest_context, mood_dataset
from spotify_brain_assets.plays.schema import CLUSTER_FEATURES

pytestmark = pytest.mark.fast  # pure logic


def make_history(rows: list[tuple[str, int, int]]) -> pd.DataFrame:
    """(UTC time, session id, mood) rows; the features are a simple known ramp per row."""
    df = pd.DataFrame(rows, columns=["played_at", "session_id", "mood_cluster_id"])
    df["played_at"] = pd.to_datetime(df["played_at"], utc=True).dt.as_unit("ms")
    ramp = np.arange(len(df), dtype="float64")
    for i, f in enumerate(CLUSTER_FEATURES):
        df[f] = 0.1 * (i + 1) + 0.01 * ramp
    return df


SESSION = [
    ("2026-01-05 08:00", 0, 1),
    ("2026-01-05 08:04", 0, 1),
    ("2026-01-05 08:07", 0, 2),
    ("2026-01-05 08:11", 0, 2),
    ("2026-01-05 08:15", 0, 0),
    ("2026-01-05 12:00", 1, 3),  # a second session, too short for a window of 3 plus a target
    ("2026-01-05 12:03", 1, 3),
    ("2026-01-05 12:06", 1, 3),
]


def test_one_row_per_position_with_known_moods_position_and_target():
    ds = mood_dataset(make_history(SESSION), window=3, tz="UTC")
    assert len(ds) == 2  # contexts ending at plays 3 and 4 of session 0; session 1 has no 4th play
    assert ds[["mood_cluster_0", "mood_cluster_1", "mood_cluster_2"]].values.tolist() == [[1, 1, 2], [1, 2, 2]]
    assert ds[TARGET].tolist() == [2, 0]
    assert ds["session_position"].tolist() == [3, 4]  # plays so far, the window's last included
    assert ds["time_since_session_start"].tolist() == [7.0, 11.0]  # minutes, up to the window's last play
    assert ds["played_at"].tolist() == list(pd.to_datetime(["2026-01-05 08:11", "2026-01-05 08:15"], utc=True))
    assert ds["session_id"].tolist() == [0, 0]
    assert list(ds.columns) == feature_columns(3, [0, 1, 2, 3]) + ["session_id", "played_at", TARGET]
    assert "session_length" not in ds.columns


def test_lags_are_one_hot_with_changes_and_the_run_length_of_the_newest_mood():
    ds = mood_dataset(make_history(SESSION), window=3, tz="UTC")
    # contexts [1, 1, 2] and [1, 2, 2] (oldest first): last1 is the newest play's mood
    assert ds[["last1_is_2", "last2_is_1", "last3_is_1", "last1_is_1"]].values.tolist() == [[1, 1, 1, 0], [1, 0, 1, 0]]
    assert ds[[c for c in ds.columns if c.startswith("last")]].sum(axis=1).tolist() == [3, 3]  # one mood per lag
    assert ds[["changed_1", "changed_2"]].values.tolist() == [[1, 0], [0, 1]]
    assert ds["run_length"].tolist() == [1, 2]
    lean = feature_columns(3, [0, 1], audio=False)
    assert "valence_mean" not in lean and "current_valence" not in lean and "last3_is_1" in lean


def test_window_statistics_are_over_the_window_only():
    ds = mood_dataset(make_history(SESSION), window=3, tz="UTC")
    valence = 0.1 + 0.01 * np.arange(3)  # plays 0..2
    assert ds.loc[0, "valence_mean"] == pytest.approx(valence.mean())
    assert ds.loc[0, "valence_std"] == pytest.approx(valence.std())
    assert ds.loc[0, "current_valence"] == pytest.approx(valence[-1])
    assert ds.loc[1, "current_tempo_norm"] == pytest.approx(0.6 + 0.03)


def test_unassigned_moods_never_become_windows_or_targets():
    rows = [r if i != 0 else (r[0], r[1], -1) for i, r in enumerate(SESSION)]
    ds = mood_dataset(make_history(rows), window=3, tz="UTC")
    assert len(ds) == 1 and ds.loc[0, "mood_cluster_0"] == 1  # the only window without the -1 play
    assert ds.loc[0, "session_position"] == 4  # the unassigned play still counts as played
    rows = [r if i != 4 else (r[0], r[1], -1) for i, r in enumerate(SESSION)]
    ds = mood_dataset(make_history(rows), window=3, tz="UTC")
    assert ds[TARGET].tolist() == [2]


def test_hours_and_weekdays_are_local_across_the_stockholm_spring_change():
    # DST starts 2026-03-29 at 01:00 UTC (02:00 CET -> 03:00 CEST)
    rows = [
        ("2026-03-28 23:20", 0, 1),  # 00:20 CET, Sunday 29 March locally (Saturday in UTC)
        ("2026-03-29 00:30", 0, 1),  # 01:30 CET
        ("2026-03-29 01:05", 0, 1),  # 03:05 CEST: the local clock jumped an hour
        ("2026-03-29 01:20", 0, 2),
    ]
    ctx = context_features(make_history(rows), 1, "Europe/Stockholm")
    hours = np.round(np.arctan2(ctx["hour_sin"], ctx["hour_cos"]) / (2 * np.pi) * 24) % 24
    assert hours.tolist() == [0, 1, 3, 3]
    assert ctx["is_weekend"].tolist() == [1, 1, 1, 1]
    utc = context_features(make_history(rows), 1, "UTC")
    assert utc.loc[0, "is_weekend"] == 1 and utc.loc[0, "day_sin"] != ctx.loc[0, "day_sin"]  # Saturday vs Sunday


def test_serving_features_equal_training_features_and_use_nothing_later():
    rng = np.random.default_rng(3)
    times = pd.Timestamp("2026-02-01", tz="UTC") + pd.to_timedelta(np.cumsum(rng.integers(2, 50, 120)), unit="min")
    session = np.cumsum(np.r_[0, np.diff(times.as_unit("ns").asi8) > 30 * 60_000_000_000])
    history = make_history(list(zip(times.astype(str), session, rng.integers(0, 4, 120))))
    ds = mood_dataset(history, window=3, tz="Europe/Stockholm", cluster_ids=[0, 1, 2, 3])
    assert len(ds) > 20
    cols = feature_columns(3, [0, 1, 2, 3])
    for _, row in ds.iterrows():
        known = history[history["played_at"] < row["played_at"]]  # everything before the target play
        served = latest_context(known, 3, "Europe/Stockholm", [0, 1, 2, 3])
        assert len(served) == 1
        np.testing.assert_allclose(served[cols].to_numpy(dtype=float)[0], row[cols].to_numpy(dtype=float))


def test_latest_context_is_empty_when_the_newest_session_is_shorter_than_the_window():
    history = make_history(SESSION[:5] + [("2026-01-05 12:00", 1, 3)])
    assert len(latest_context(history, 3, "UTC")) == 0
    assert len(latest_context(history, 1, "UTC")) == 1


def test_bad_window_is_refused():
    with pytest.raises(ValueError, match="at least one play"):
        mood_dataset(make_history(SESSION), window=0)
