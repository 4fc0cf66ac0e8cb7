"""Plays lost to the 50-play window: detected, estimated, recorded, checked and shown on the dashboard."""

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from spotify_brain_assets.fakes import FakeServer, make_track
from spotify_brain_assets.plays.gaps import add_gap, estimate_plays, find_gap, gap_record
from spotify_brain_assets.sources.demo import DemoListener
from spotify_brain_assets.storage.files import read_json
from spotify_brain_assets.storage.paths import DataPaths

from .conftest import TIMEZONE, demo_at, materializations, run_job, step_errors
from .spotify_fakes import resource

T0 = pd.Timestamp("2026-11-26T09:00:00Z")


def at(*minutes):
    return pd.Series([T0 + pd.Timedelta(minutes=m) for m in minutes])


@pytest.mark.fast
def test_a_gap_needs_a_full_page_that_does_not_reach_the_stored_plays():
    full_after = at(*range(60, 110))  # 50 plays, all after the newest stored one
    assert find_gap(full_after, T0, 50) == (T0, T0 + pd.Timedelta(minutes=60))
    assert find_gap(full_after.iloc[1:], T0, 50) is None  # not full: the page holds all since
    assert find_gap(at(*range(-1, 49)), T0, 50) is None  # full, but it reaches back to the stored plays
    assert find_gap(full_after, None, 50) is None  # nothing stored yet


@pytest.mark.fast
def test_the_estimate_follows_the_listeners_hours():
    # four weeks of exactly 3 plays in the local 08:00 hour on weekdays, nothing else
    days = pd.date_range("2026-10-05", periods=28, freq="D", tz=TIMEZONE)
    days = days[days.day_of_week < 5]
    played = pd.Series(np.sort(np.concatenate([days + pd.Timedelta(hours=8, minutes=m) for m in (10, 30, 50)]))).dt.tz_convert("UTC")
    monday = pd.Timestamp("2026-11-02T00:00", tz=TIMEZONE).tz_convert("UTC")
    assert estimate_plays(played, monday, monday + pd.Timedelta(days=7), TIMEZONE) == pytest.approx(15)  # five mornings
    assert estimate_plays(played, monday + pd.Timedelta(days=5), monday + pd.Timedelta(days=7), TIMEZONE) == 0  # a weekend
    half = monday + pd.Timedelta(hours=8, minutes=30)
    assert estimate_plays(played, half, half + pd.Timedelta(hours=1), TIMEZONE) == pytest.approx(1.5)  # half the hour
    # under two weeks of history (the first five mornings): the hour of the day, a Saturday like any day
    assert estimate_plays(played.iloc[:15], monday + pd.Timedelta(days=5), monday + pd.Timedelta(days=6), TIMEZONE) == pytest.approx(3)
    assert estimate_plays(played.iloc[:0], monday, monday + pd.Timedelta(days=1), TIMEZONE) == 0


@pytest.mark.fast
def test_a_gap_found_again_is_recorded_once():
    gap = gap_record(T0, T0 + pd.Timedelta(hours=27), 14.6, T0 + pd.Timedelta(hours=28), "20261127_130000")
    assert gap["estimated_plays"] == 15 and gap["hours"] == 27
    older = gap_record(T0 - pd.Timedelta(days=9), T0 - pd.Timedelta(days=8), 3, T0, "20261118_090000")
    assert add_gap(add_gap([], gap), {**gap, "detected_at": "later"}) == [gap]
    assert add_gap([gap], older) == [older, gap]


def test_plays_lost_to_the_demo_listeners_window_are_recorded_and_shown(instance, data_root):
    paths = DataPaths.at(data_root)
    assert run_job("update", instance, data_root, demo_at(T0.isoformat()), "20261126_090000").success
    stored = pd.concat([pd.read_parquet(paths.history)["played_at"], pd.read_parquet(paths.pending_features)["played_at"]]).max()
    later = pd.Timestamp("2026-12-03T12:00:00Z")  # a week without a run: far more than 50 plays
    result = run_job("update", instance, data_root, demo_at(later.isoformat()), "20261203_120000")
    assert result.success, step_errors(result)

    listener = DemoListener(timezone=TIMEZONE, now=later.to_pydatetime())
    oldest_listed = pd.to_datetime([i["played_at"] for i in listener.recently_played(None)], utc=True).min()
    lost = listener.plays(stored, oldest_listed)
    lost = lost[lost["played_at"] > stored]
    [gap] = read_json(paths.ingestion_gaps)
    assert (pd.Timestamp(gap["from"]), pd.Timestamp(gap["to"])) == (stored, oldest_listed)
    assert abs(gap["estimated_plays"] - len(lost)) <= 0.25 * len(lost) and len(lost) > 50
    assert gap["partition"] == "20261203_120000"

    warn = next(c for c in result.get_asset_check_evaluations() if c.check_name == "no_plays_lost_to_window")
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN
    assert f"about {gap['estimated_plays']} plays" in warn.description and "Importing years of history" in warn.description
    assert materializations(result)["ingestions"]["gap_estimated_plays"] == gap["estimated_plays"]
    [shown] = json.loads(paths.dashboard_json.read_text())["gaps"]
    assert pd.Timestamp(shown["from"]) == stored and pd.Timestamp(shown["to"]) == oldest_listed
    assert shown["estimated_plays"] == gap["estimated_plays"] and shown["plays_in_history"] == 0

    # the next slot finds no new gap and the record stays
    again = run_job("update", instance, data_root, demo_at((later + pd.Timedelta(minutes=30)).isoformat()), "20261203_123000")
    assert next(c for c in again.get_asset_check_evaluations() if c.check_name == "no_plays_lost_to_window").passed
    assert read_json(paths.ingestion_gaps) == [gap]
    assert materializations(again)["ingestions"]["gap_estimated_plays"] == 0


def test_a_27_hour_outage_against_the_fake_server_reports_the_lost_plays(monkeypatch, instance, data_root):
    paths = DataPaths.at(data_root)
    tracks = [make_track(name=f"Song {i}", artists=[f"Band {i % 5}"]) for i in range(30)]
    day = pd.Timestamp("2026-09-20T08:00:00Z")
    # a play every 15 minutes from 08:00 to 19:45, three days running: 48 a day
    played = [day + pd.Timedelta(days=d, minutes=15 * i) for d in (0, 1, 2) for i in range(48)]
    with FakeServer() as fake:
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
        for n, track in enumerate(tracks):
            fake.set_features(track["id"], valence=n / 30, energy=1 - n / 30)
        for n, moment in enumerate(played):
            fake.add_play(tracks[n % len(tracks)], moment)

        def slot(hours: float):
            moment = day + pd.Timedelta(hours=hours)
            fake.set_clock(moment)
            result = run_job("update", instance, data_root, resource(fake, data_root, moment.isoformat()), moment.strftime("%Y%m%d_%H%M%S"))
            assert result.success, step_errors(result)
            assert len(result.get_asset_check_evaluations()) > 0
            return next(c for c in result.get_asset_check_evaluations() if c.check_name == "no_plays_lost_to_window")

        assert all(slot(hours).passed for hours in (5, 12, 32))  # runs every few hours: the window never overflows
        assert not paths.ingestion_gaps.exists()
        # then 27 hours without a run: 60 plays since, of which Spotify lists the newest 50
        check = slot(32 + 27)
    newest_stored, oldest_listed = day + pd.Timedelta(days=1, hours=8), day + pd.Timedelta(days=1, hours=10, minutes=45)
    [gap] = read_json(paths.ingestion_gaps)
    assert (pd.Timestamp(gap["from"]), pd.Timestamp(gap["to"])) == (newest_stored, oldest_listed)
    # 10 plays were lost; the listener's usual 16:00–18:45 (local) holds 2.5 + 4 + 3 of them
    assert gap["hours"] == 2.75 and gap["estimated_plays"] == 10
    assert not check.passed and "about 10 plays" in check.description
    assert len(pd.read_parquet(paths.history)) == 48 + 33 + 50
