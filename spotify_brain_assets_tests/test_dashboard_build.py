"""dashboard_data.json from history and reports: pure functions, validated against the schema's models."""

import json
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from spotify_brain_assets.dashboard.build import (
    Inputs, build_dashboard, mood_trajectory, next_runs, scrub_local_paths, session_actual,
)
from spotify_brain_assets.dashboard.schema import dashboard_json
from spotify_brain_assets.dashboard.page import render_page
from spotify_brain_assets.plays.schema import HISTORY_COLUMNS, conform

from .test_sessions import plays_at

pytestmark = pytest.mark.fast

NOW = pd.Timestamp("2026-11-26T12:00:00Z")


def history_of(minutes_before_now, sessions, moods):
    df = plays_at([0] * len(minutes_before_now))
    df["played_at"] = [NOW - pd.Timedelta(minutes=m) for m in minutes_before_now]
    df["session_id"] = sessions
    df["mood_cluster_id"] = moods
    return conform(df.sort_values("played_at"), HISTORY_COLUMNS)


def validate(data):
    dashboard_json(data)
    json.dumps(data, allow_nan=False)  # strict JSON: no NaN or Infinity anywhere


def test_an_empty_history_with_no_reports_gives_a_valid_dashboard():
    data = build_dashboard(Inputs(history=pd.DataFrame(columns=HISTORY_COLUMNS), now=NOW, timezone="Europe/Stockholm"))
    validate(data)
    assert data["recently_played"] == [] and data["mood_trajectory"] == [] and data["mood_clusters"] == [] and data["gaps"] == []
    assert data["next_prediction"]["available"] is False and data["freshness"]["stale"] is True
    assert data["is_demo"] is False and data["generated_at"].endswith("+01:00")


def test_session_actual_is_the_max_normalized_share_of_starts_per_local_hour():
    # three sessions starting 07:xx, 07:yy and 19:zz Stockholm time (UTC+1 in November)
    df = history_of([0, 0, 0, 0], [0, 0, 1, 2], [0, 0, 0, 0])
    df["played_at"] = pd.to_datetime(["2026-11-25T06:10Z", "2026-11-25T06:13Z", "2026-11-25T18:00Z", "2026-11-26T06:30Z"])
    shares = session_actual(df.sort_values("played_at"), ZoneInfo("Europe/Stockholm"))
    assert shares["7"] == 1.0 and shares["19"] == 0.5 and shares["0"] == 0.0 and len(shares) == 24


def test_trajectory_bins_the_last_24_hours_in_15_minutes():
    df = history_of([1, 2, 20, 25 * 60], [5, 5, 5, 4], [0, 0, 0, 0])
    df.loc[df.index[-1], "valence"] = 0.9  # the newest play
    points = mood_trajectory(df, NOW, ZoneInfo("UTC"))
    assert [p["plays"] for p in points] == [1, 2]  # the play 25 h ago is out; 1 and 2 min ago share a bin
    assert points[-1]["valence"] == pytest.approx((0.9 + 0.5) / 2)


def test_recently_played_is_the_newest_25_newest_first_with_labels_and_staleness():
    minutes = list(range(0, 300, 10))
    df = history_of(minutes, [0] * len(minutes), [1] * len(minutes))
    clusters = {"clusters": [{"cluster_id": 1, "label": "High energy, positive", "centroid": dict.fromkeys(
        ["valence", "energy", "danceability", "acousticness", "instrumentalness", "tempo_norm"], 0.5)}]}
    data = build_dashboard(Inputs(history=df, now=NOW, timezone="UTC", clusters=clusters, last_ingestion=NOW - pd.Timedelta(hours=3)))
    validate(data)
    recent = data["recently_played"]
    assert len(recent) == 25 and recent[0]["played_at"] > recent[-1]["played_at"]
    assert recent[0]["mood_label"] == "High energy, positive"
    assert data["freshness"]["stale"] is True
    assert data["mood_clusters"][0]["plays"] == len(df) and data["mood_clusters"][0]["share"] == 1.0


@pytest.mark.fast
def test_gaps_are_listed_in_local_time_with_the_plays_an_import_has_filled_in():
    gap = {"from": "2026-11-24T22:00:00+00:00", "to": "2026-11-26T01:00:00+00:00", "hours": 27.0, "estimated_plays": 15,
           "detected_at": "2026-11-26T01:30:00+00:00", "partition": "20261126_013000"}
    data = build_dashboard(Inputs(history=pd.DataFrame(columns=HISTORY_COLUMNS), now=NOW, timezone="Europe/Stockholm", gaps=[gap]))
    validate(data)
    assert data["gaps"] == [{"from": "2026-11-24T23:00:00+01:00", "to": "2026-11-26T02:00:00+01:00", "estimated_plays": 15,
                             "plays_in_history": 0, "detected_at": "2026-11-26T02:30:00+01:00"}]
    # the gap's two ends are stored plays; three imported plays lie inside it
    minutes = (NOW - pd.Timestamp(gap["to"])) / pd.Timedelta(minutes=1)
    inside = [minutes + 60, minutes + 600, minutes + 1200]
    history = history_of([minutes, *inside, minutes + 27 * 60, minutes + 40 * 60], [0] * 6, [0] * 6)
    data = build_dashboard(Inputs(history=history, now=NOW, timezone="UTC", gaps=[gap]))
    validate(data)
    assert data["gaps"][0]["plays_in_history"] == 3


def test_the_page_embeds_the_data_safely():
    data = build_dashboard(Inputs(history=pd.DataFrame(columns=HISTORY_COLUMNS), now=NOW, timezone="UTC"))
    data["next_prediction"]["note"] = "</script><script>alert(1)</script>"
    html = render_page(data)
    assert html.count("</script>") == 2  # the page's own two script elements, nothing injected
    assert "/*CSS*/" not in html and "/*JS*/" not in html and "/*DATA*/" not in html


def test_local_paths_are_scrubbed_from_every_text_but_the_listeners_own_names():
    data = {
        "note": "/srv/me/data/models/mood_classifier.pkl does not exist; cache in /home/me/.cache/x, home /home/me",
        "models": {"mood": {"note": "data kept in /srv/me/data"}},
        "recently_played": [{"track_name": "AC/DC /live/at/home", "artist_name": "/dev/null", "image_url": "https://i.scdn.co/image/ab67"}],
        "links": ["https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC", "1/2 of a / b"],
        "plays": 3,
    }
    out, found = scrub_local_paths(data, {"/srv/me/data": "the data root", "/home/me": "~", "/": "root"})
    assert out["note"] == "the data root/models/mood_classifier.pkl does not exist; cache in ~/.cache/x, home ~"
    assert out["models"]["mood"]["note"] == "data kept in the data root" and found == 4
    assert scrub_local_paths(data, {})[0]["note"] == "mood_classifier.pkl does not exist; cache in x, home me"
    assert out["recently_played"] == data["recently_played"] and out["links"] == data["links"] and out["plays"] == 3


def test_next_runs_are_known_only_for_jobs_whose_trigger_the_daemon_runs():
    tz = ZoneInfo("Europe/Stockholm")
    at = pd.Timestamp("2026-11-26T08:15:45Z")
    assert next_runs(at, frozenset(), tz) == {"update": None, "full_retrain": None}
    assert next_runs(at, frozenset({"update", "full_retrain"}), tz) == {
        "update": "2026-11-26T09:30:00+01:00", "full_retrain": "2026-11-27T01:15:00+01:00"}
    assert next_runs(pd.Timestamp("2026-11-26T00:05Z"), frozenset({"full_retrain"}), tz)["full_retrain"] == "2026-11-26T01:15:00+01:00"


def test_the_daemon_heartbeat_and_the_trigger_state_decide_what_is_scheduled():
    import time

    import dagster as dg
    from dagster._daemon.types import DaemonHeartbeat

    from spotify_brain_assets.defs.reporting.dashboard import scheduled_jobs

    with dg.instance_for_test() as instance:
        assert scheduled_jobs(instance) == frozenset()  # no daemon: `spotify-brain run` alone schedules nothing
        instance.add_daemon_heartbeat(DaemonHeartbeat(time.time(), "SENSOR", "d1", []))
        instance.add_daemon_heartbeat(DaemonHeartbeat(time.time() - 3600, "SCHEDULER", "d1", []))  # an hour-old beat
        assert scheduled_jobs(instance) == frozenset({"update"})


def test_drift_flags_are_named_for_people_with_the_windows_they_compare():
    report = {
        "generated_at": "2026-11-26T08:00:00+00:00",
        "windows": {"current": {"days": 7}, "reference": {"days": 30}},
        "metrics": [{"metric": "tracks_per_day", "reference": 20.0, "current": 34.0, "change": 0.7, "flagged": True},
                    {"metric": "sessions_per_day", "reference": 2.0, "current": 2.1, "change": 0.05, "flagged": False}],
        "per_hour_start_frequency": [{"hour": 7, "metric": "start_frequency_hour_07", "reference": 0.3, "current": 0.6, "change": 1.0, "flagged": True}],
        "feature_psi": [{"feature": "valence", "psi": 0.3, "reference_mean": 0.4, "current_mean": 0.6, "flagged": True}],
    }
    data = build_dashboard(Inputs(history=pd.DataFrame(columns=HISTORY_COLUMNS), now=NOW, timezone="UTC", drift=report))
    validate(data)
    drift = data["drift"]
    assert drift["windows"] == {"current_days": 7, "reference_days": 30}
    assert [(f["label"], f["reference"], f["current"]) for f in drift["flags"]] == [
        ("Songs per day", 20.0, 34.0), ("Session starts in this hour (per day)", 0.3, 0.6), ("The valence of your songs", 0.4, 0.6)]
    assert drift["flags"][1]["hour"] == 7 and drift["flags"][0]["metric"] == "tracks_per_day"  # the old keys stay


def test_models_and_the_next_mood_are_explained_in_plain_words():
    mood = {"status": "trained", "primary_metric": "log_loss",
            "candidate": {"test": {"accuracy": 0.9, "log_loss": 0.36}},
            "baselines": {"markov": {"accuracy": 0.9, "log_loss": 0.35}},
            "decision": {"promoted": False, "metric": "log_loss", "higher_is_better": False, "candidate": 0.36,
                         "best_baseline": "markov", "best_baseline_value": 0.35,
                         "summary": "not promoted, the model in use stays: the candidate's log_loss 0.3590 is worse"}}
    predictions = {"next_mood": {"available": True, "source": "baseline:markov", "mood_cluster_id": 1, "confidence": 0.9,
                                 "reason": "no mood_classifier in use (not promoted, …); its baseline answers",
                                 "probabilities": [{"cluster_id": 1, "label": "High energy, positive", "probability": 0.9}]}}
    data = build_dashboard(Inputs(history=pd.DataFrame(columns=HISTORY_COLUMNS), now=NOW, timezone="UTC",
                                  mood_evaluation=mood, predictions=predictions))
    validate(data)
    m = data["models"]["mood"]
    assert m["serving"] == "rule" and m["note"] == m["summary"] and "mood_classifier" not in json.dumps(m["summary"])
    assert "did not beat the simple rule “the mood that usually follows the last one”" in m["summary"]
    assert m["details"]["rows"][0]["values"] == {"accuracy": 0.9, "log_loss": 0.36}
    assert data["next_prediction"]["note"] == "Guessed by the simple rule “the mood that usually follows the last one”: no model has beaten it yet."
    assert data["models"]["session"]["serving"] == "nothing" and data["models"]["session"]["details"] is None


def test_the_dashboard_carries_stats_and_recap_and_the_shared_recap_page_only_the_recap():
    from spotify_brain_assets.dashboard.page import render_recap_page

    minutes = list(range(0, 300, 10))
    df = history_of(minutes, [0] * len(minutes), [1] * len(minutes))
    data = build_dashboard(Inputs(history=df, now=NOW, timezone="UTC"))
    validate(data)
    assert data["stats"]["ranges"]["7d"]["plays"] == 30 and data["recap"]["years"][0]["plays"] == 30
    assert sum(data["session_start_share"].values()) == pytest.approx(1.0)
    page = render_recap_page(data)
    assert '"recap"' in page and "recently_played" not in page.split('id="embedded-data"')[1].split("</script>")[0]
