"""Listening stats and the yearly recap on hand-made histories whose answers are known."""

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from spotify_brain_assets.dashboard.recap import yearly_recap
from spotify_brain_assets.dashboard.stats import listening_stats, play_minutes, prepare
from spotify_brain_assets.plays.schema import HISTORY_COLUMNS, conform

UTC = ZoneInfo("UTC")

pytestmark = pytest.mark.fast


def history(rows):
    """rows: (played_at, track_id, artist_name, length in minutes or None, mood, session)."""
    df = pd.DataFrame(rows, columns=["played_at", "track_id", "artist_name", "minutes", "mood_cluster_id", "session_id"])
    df["played_at"] = pd.to_datetime(df["played_at"], utc=True)
    df["duration_ms"] = (df["minutes"] * 60_000).round().astype("Int64")
    df["track_name"] = "Song " + df["track_id"]
    df["image_url"] = "https://img/" + df["track_id"]
    for feature in ["valence", "energy", "danceability", "acousticness", "instrumentalness", "tempo_norm"]:
        df[feature] = 0.5
    df["tempo"], df["origin"] = 125.0, "spotify"
    return conform(df.sort_values("played_at", kind="stable"), HISTORY_COLUMNS)


def spaced(start, track, artist, n, minutes, mood=0, session=0, every=None):
    """`n` plays of one track, each `every` minutes after the last (default: its length, no pause)."""
    step = pd.Timedelta(minutes=every if every is not None else minutes)
    return [(pd.Timestamp(start) + i * step, track, artist, minutes, mood, session) for i in range(n)]


def test_minutes_are_measured_then_the_length_cut_by_a_skip_then_the_gap_then_the_median():
    df = history([
        ("2026-03-01T10:00:00Z", "a", "X", 200 / 60, 0, 0),  # first play: its length
        ("2026-03-01T10:03:00Z", "b", "X", 4.0, 0, 0),  # came 3 min after a: skipped after 3 min
        ("2026-03-01T10:10:00Z", "c", "X", None, 0, 0),  # length unknown: the 7-minute gap
        ("2026-03-01T11:40:00Z", "d", "X", None, 0, 1),  # unknown, after a pause: the others' median, 190 s
        ("2026-03-01T11:44:00Z", "e", "X", None, 0, 1),  # the export measured it
    ])
    listened = pd.DataFrame({"track_id": ["e"], "played_at": [pd.Timestamp("2026-03-01T11:44:00Z")], "ms_played": [95_000]})
    out = play_minutes(df, listened)
    assert out["minutes"].tolist() == pytest.approx([200 / 60, 3.0, 7.0, 190 / 60, 95 / 60])
    assert out["estimated"].tolist() == [False, False, True, True, False]


def test_without_any_length_a_play_after_a_pause_counts_a_typical_track():
    df = history([("2026-03-01T10:00:00Z", "a", "X", None, 0, 0)])
    assert play_minutes(df)["minutes"].tolist() == [3.5]


NOW = pd.Timestamp("2026-03-10T12:00:00Z")


@pytest.fixture
def ranged():
    rows = (
        spaced("2026-03-08T09:00Z", "A", "X, Y", 3, 4.0, mood=1, every=30)  # in the last 7 days
        + spaced("2026-03-09T18:00Z", "B", "Z", 2, 5.0, mood=2, every=30)
        + spaced("2026-02-18T07:00Z", "C", "Z", 5, 3.0, mood=2, every=30)  # 20 days ago
        + spaced("2025-08-22T07:00Z", "D", "W", 1, 3.0, mood=0)  # 200 days ago
        + spaced("2024-03-01T07:00Z", "E", "W", 4, 3.0, mood=0, every=30)  # two years ago
        + spaced("2026-03-10T13:00Z", "F", "W", 1, 3.0, mood=0)  # after now (a frozen clock): left out
    )
    df = history(rows)
    return listening_stats(prepare(df, NOW, UTC), {0: "Low energy, neutral", 1: "High energy, positive", 2: "Medium energy, negative"})


def names(entries, key):
    return [(e[key], e["plays"], e["minutes"]) for e in entries]


def test_each_range_has_its_totals_and_top_lists(ranged):
    week = ranged["ranges"]["7d"]
    assert (week["plays"], week["minutes"], week["tracks"], week["artists"]) == (5, 22.0, 2, 3)
    assert names(week["top_tracks"], "track_id") == [("A", 3, 12.0), ("B", 2, 10.0)]
    assert names(week["top_artists"], "artist_name") == [("X", 3, 12.0), ("Y", 3, 12.0), ("Z", 2, 10.0)]  # a tie: first heard first
    assert names(week["top_moods"], "mood_label") == [("High energy, positive", 3, 12.0), ("Medium energy, negative", 2, 10.0)]
    assert week["top_tracks"][0]["image_url"] == "https://img/A" and week["estimated_share"] == 0.0
    month = ranged["ranges"]["4w"]
    assert names(month["top_tracks"], "track_id") == [("C", 5, 15.0), ("A", 3, 12.0), ("B", 2, 10.0)]
    assert names(month["top_artists"], "artist_name")[0] == ("Z", 7, 25.0)
    assert ranged["ranges"]["12m"]["plays"] == 11 and ranged["ranges"]["all"]["plays"] == 15
    assert names(ranged["ranges"]["all"]["top_artists"], "artist_name")[0] == ("Z", 7, 25.0)
    assert ("W", 5, 15.0) in names(ranged["ranges"]["all"]["top_artists"], "artist_name")
    assert ranged["ranges"]["all"]["start"] == "2024-03-01T07:00:00+00:00"
    assert ranged["ranges"]["7d"]["start"] == "2026-03-03T12:00:00+00:00" and week["end"] == "2026-03-10T12:00:00+00:00"


def test_the_clock_counts_plays_per_local_hour(ranged):
    clock = ranged["ranges"]["7d"]["clock"]
    assert len(clock) == 24 and clock[9] == 2 and clock[10] == 1 and clock[18] == 2 and sum(clock) == 5


def test_the_calendar_holds_the_last_365_local_days(ranged):
    cal = ranged["calendar"]
    assert (cal["start"], cal["end"]) == ("2025-03-11", "2026-03-10") and len(cal["plays"]) == 365
    day = lambda d: (pd.Timestamp(d) - pd.Timestamp(cal["start"])).days  # noqa: E731
    assert cal["plays"][day("2026-03-08")] == 3 and cal["minutes"][day("2026-03-08")] == 12
    assert cal["plays"][day("2026-02-18")] == 5 and cal["plays"][day("2025-08-22")] == 1
    assert sum(cal["plays"]) == 11  # the 2024 plays are older than a year


def test_a_day_of_daylight_saving_is_a_calendar_day_and_hours_are_wall_clock_hours():
    tz = ZoneInfo("Europe/Stockholm")
    df = history([
        ("2026-03-29T00:30Z", "a", "X", 3.0, 0, 0),  # 01:30 CET, before the clocks go forward
        ("2026-03-29T01:30Z", "b", "X", 3.0, 0, 1),  # 03:30 CEST: 02:xx does not exist that night
        ("2026-10-25T00:30Z", "c", "X", 3.0, 0, 2),  # 02:30 CEST
        ("2026-10-25T01:30Z", "d", "X", 3.0, 0, 3),  # 02:30 CET: the same wall-clock hour again
        ("2026-10-25T22:30Z", "e", "X", 3.0, 0, 4),  # 23:30 CET: still the 25th (a 25-hour day)
        ("2026-10-25T23:30Z", "f", "X", 3.0, 0, 5),  # 00:30 on the 26th
    ])
    stats = listening_stats(prepare(df, pd.Timestamp("2026-10-27T12:00Z"), tz), {})
    clock = stats["ranges"]["all"]["clock"]
    assert (clock[1], clock[2], clock[3], clock[23], clock[0]) == (1, 2, 1, 1, 1)
    cal = stats["calendar"]
    day = lambda d: (pd.Timestamp(d) - pd.Timestamp(cal["start"])).days  # noqa: E731
    assert cal["plays"][day("2026-03-29")] == 2 and cal["plays"][day("2026-10-25")] == 3 and cal["plays"][day("2026-10-26")] == 1
    assert cal["end"] == "2026-10-27" and sum(cal["plays"]) == 6


def test_a_listener_in_kolkata_gets_indian_hours_days_and_years():
    tz = ZoneInfo("Asia/Kolkata")  # UTC+05:30, no daylight saving
    df = history([
        ("2025-12-31T18:29Z", "a", "X", 3.0, 0, 0),  # 23:59 on 31 December
        ("2025-12-31T18:31Z", "b", "Y", 1.0, 0, 0),  # 00:01 on 1 January: a new year
        ("2026-03-01T18:45Z", "c", "Y", 3.0, 1, 1),  # 00:15 on 2 March
    ])
    listening = prepare(df, pd.Timestamp("2026-03-02T06:00Z"), tz)
    stats = listening_stats(listening, {})
    clock = stats["ranges"]["all"]["clock"]
    assert clock[23] == 1 and clock[0] == 2 and sum(clock) == 3
    assert stats["calendar"]["end"] == "2026-03-02" and stats["calendar"]["plays"][-1] == 1 and stats["calendar"]["plays"][-2] == 0
    assert stats["ranges"]["all"]["end"] == "2026-03-02T11:30:00+05:30"
    years = yearly_recap(listening, {})
    assert [(y["year"], y["plays"]) for y in years] == [(2026, 2), (2025, 1)]
    assert years[0]["first_day"] == "2026-01-01" and years[0]["new_artists"]["count"] == 1  # Y; X was heard in 2025


@pytest.fixture
def year():
    rows = (
        spaced("2024-12-30T12:00Z", "T0", "Old", 1, 3.0, mood=0, session=0)
        + spaced("2025-02-01T10:00Z", "A", "X", 3, 4.0, mood=1, session=1)
        + spaced("2025-06-15T20:00Z", "B", "Y, Old", 5, 5.0, mood=2, session=2)
        + spaced("2025-06-16T08:00Z", "A", "X", 2, 4.0, mood=1, session=3)
        + spaced("2025-11-03T08:00Z", "C", "Z", 1, 4.0, mood=1, session=4)
    )
    labels = {0: "Low energy, neutral", 1: "High energy, positive", 2: "Medium energy, negative"}
    return yearly_recap(prepare(history(rows), pd.Timestamp("2026-01-15T00:00Z"), UTC), labels)


def test_the_recap_of_a_year_with_known_content(year):
    assert [y["year"] for y in year] == [2025, 2024]
    y = year[0]
    assert (y["plays"], y["minutes"], y["tracks"], y["artists"]) == (11, 49.0, 3, 4)
    assert (y["in_progress"], y["first_year"], y["first_day"], y["last_day"]) == (False, False, "2025-02-01", "2025-11-03")
    assert names(y["top_tracks"], "track_id") == [("B", 5, 25.0), ("A", 5, 20.0), ("C", 1, 4.0)]
    assert names(y["top_artists"], "artist_name") == [("Old", 5, 25.0), ("Y", 5, 25.0), ("X", 5, 20.0), ("Z", 1, 4.0)]
    assert y["mood_of_year"] == {"mood_cluster_id": 1, "mood_label": "High energy, positive", "plays": 6, "minutes": 24.0, "share": round(6 / 11, 4)}
    assert [(m["month"], m["plays"], {x["mood_cluster_id"]: x["plays"] for x in m["moods"]}) for m in y["moods_by_month"]] == [
        (2, 3, {1: 3}), (6, 7, {1: 2, 2: 5}), (11, 1, {1: 1})]
    assert y["busiest_day"] == {"date": "2025-06-15", "plays": 5, "minutes": 25.0}
    assert y["longest_session"] == {"start": "2025-06-15T20:00:00+00:00", "end": "2025-06-15T20:20:00+00:00", "plays": 5, "minutes": 25.0}
    assert y["new_artists"] == {"count": 3, "top": [{"artist_name": "Y", "plays": 5}, {"artist_name": "X", "plays": 5}, {"artist_name": "Z", "plays": 1}]}
    assert [(h["hour"], h["plays"]) for h in y["habit_hours"]] == [(20, 5), (8, 3), (10, 3)]
    assert year[1]["first_year"] is True and year[1]["new_artists"]["count"] == 1


def test_the_current_year_is_in_progress_and_an_empty_history_has_no_recap():
    listening = prepare(history(spaced("2026-01-02T10:00Z", "A", "X", 2, 3.0)), pd.Timestamp("2026-01-15T00:00Z"), UTC)
    (only,) = yearly_recap(listening, {})
    assert only["in_progress"] is True and only["first_year"] is True and only["mood_of_year"]["mood_label"] == "Mood 0"
    empty = prepare(history([]), pd.Timestamp("2026-01-15T00:00Z"), UTC)
    assert yearly_recap(empty, {}) == []
    stats = listening_stats(empty, {})
    assert stats["ranges"]["all"]["plays"] == 0 and stats["ranges"]["all"]["clock"] == [0] * 24
    assert np.sum(stats["calendar"]["plays"]) == 0 and len(stats["calendar"]["plays"]) == 365
