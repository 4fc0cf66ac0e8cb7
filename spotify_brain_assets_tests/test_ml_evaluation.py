"""Metrics, reliability, the baselines, the metrics history and the drift report."""

import numpy as np
import pandas as pd
import pytest

from spotify_brain_assets.ml.baselines import MARKOV_STRENGTH, mood_baseline, session_baseline
from spotify_brain_assets.ml.drift import DriftSettings, drift_report, entropy_bits, psi
from spotify_brain_assets.ml.evaluation import (
    calibration_error,
    mood_metrics,
    reliability,
    session_losses,
    session_metrics,
    set_run_drift,
    upsert_run_entry,
)
from spotify_brain_assets.plays.schema import AUDIO_FEATURES
from spotify_brain_assets.plays.sessions import session_ids

pytestmark = pytest.mark.fast  # pure logic


def test_mood_metrics_known_answers():
    y = np.array([0, 1, 2, 2])
    m = mood_metrics(y, np.eye(3)[y], [0, 1, 2])
    assert m["accuracy"] == 1 and m["macro_f1"] == 1 and m["roc_auc"] == 1 and m["log_loss"] < 1e-5 and m["calibration_error"] == 0
    u = mood_metrics(y, np.full((4, 3), 1 / 3), [0, 1, 2])
    assert u["log_loss"] == pytest.approx(np.log(3), abs=1e-6) and u["roc_auc"] == 0.5
    # a class the model does not know counts at (clipped) probability zero
    missing = mood_metrics(np.array([0, 5]), np.array([[1.0], [1.0]]), [0])
    assert missing["accuracy"] == 0.5 and missing["log_loss"] > 6


def test_session_scores_known_answers():
    y = np.array([0, 0, 1, 1, 0, 0, 0, 1])
    p = np.array([0.1, 0.2, 0.8, 0.7, 0.3, 0.1, 0.2, 0.9])
    m = session_metrics(y, p)
    assert m["pr_auc"] == 1 and m["roc_auc"] == 1 and m["positives"] == 3
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["log_loss"] == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), abs=1e-6)
    never = session_metrics(y, np.full(8, 0.375))
    assert never["pr_auc"] == pytest.approx(3 / 8) and never["roc_auc"] == 0.5 and never["calibration_error"] == 0
    assert session_losses([1], [0.0])["log_loss"][0] == pytest.approx(-np.log(1e-6))  # clipped, never infinite


def test_calibration_error_and_reliability_known_answer():
    y = np.array([1, 0, 0, 0, 1, 1])
    p = np.array([0.25, 0.25, 0.25, 0.25, 0.85, 0.85])
    assert calibration_error(y, p) == pytest.approx((4 * abs(0.25 - 0.25) + 2 * abs(0.85 - 1.0)) / 6)
    assert reliability(y, p) == [
        {"bin": "0.2-0.3", "rows": 4, "mean_predicted": 0.25, "observed": 0.25},
        {"bin": "0.8-0.9", "rows": 2, "mean_predicted": 0.85, "observed": 1.0},
    ]


def moods(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["mood_cluster_0", "mood_cluster_1", "target_mood_cluster"][: len(rows[0])])


def test_mood_baselines_are_smoothed_and_markov_backs_off_to_the_lower_order():
    train = moods([(0, 0, 0), (0, 0, 0), (1, 0, 0), (1, 0, 1), (0, 1, 1), (1, 1, 0)])
    test = moods([(1, 0), (0, 1), (2, 2)])
    classes = [0, 1, 2]
    share = (np.array([4, 2, 0]) + 0.5) / (6 + 1.5)
    assert mood_baseline("majority", train, test, classes, 2)[0] == pytest.approx(share)
    stay = 4 / 6  # the newest mood repeated in 4 of 6 rows
    assert mood_baseline("persistence", train, test, classes, 2)[1] == pytest.approx(stay * np.eye(3)[1] + (1 - stay) * share)
    a = MARKOV_STRENGTH
    m1 = {0: (np.array([3, 1, 0]) + a * share) / (4 + a), 1: (np.array([1, 1, 0]) + a * share) / (2 + a)}
    markov1 = mood_baseline("markov_1", train, test, classes, 2)
    assert markov1[0] == pytest.approx(m1[0]) and markov1[1] == pytest.approx(m1[1])
    assert markov1[2] == pytest.approx(share)  # never seen as a last mood: back to the shares
    markov2 = mood_baseline("markov_2", train, test, classes, 2)
    assert markov2[0] == pytest.approx((np.array([1, 1, 0]) + a * m1[0]) / (2 + a))  # (1, 0) seen twice
    assert markov2[1] == pytest.approx((np.array([0, 1, 0]) + a * m1[1]) / (1 + a))
    assert markov2[2] == pytest.approx(share)
    with pytest.raises(ValueError, match="unknown mood baseline"):
        mood_baseline("markov_3", train, test, classes, 2)  # needs a window of 3


def test_session_priors_come_from_the_training_rows_and_shrink_toward_their_parent():
    train = pd.DataFrame(
        {"hour": [7, 8, 7, 8], "day_of_week": [0, 0, 1, 1], "is_weekend": 0, "lead_hours": [0.5, 5, 5, 5], "session_running": [0, 0, 1, 0], "target_session_start": [1, 0, 0, 0]}
    )
    test = pd.DataFrame({"hour": [7, 7, 9], "day_of_week": [0, 1, 2], "is_weekend": 0, "lead_hours": [0.5, 5, 5], "session_running": [0, 1, 0]})
    k = 5.0  # pseudo-rows toward the parent
    overall = 0.25
    hour7 = (1 + k * overall) / (2 + k)
    assert session_baseline("hour_of_day", train, test).tolist() == pytest.approx([hour7, hour7, overall])  # hour 9 unseen: the parent
    assert session_baseline("hour_of_week", train, test).tolist() == pytest.approx([(1 + k * hour7) / (1 + k), (0 + k * hour7) / (1 + k), overall])
    assert session_baseline("hour_x_weekend", train, test).tolist() == pytest.approx([(1 + k * hour7) / (2 + k), (1 + k * hour7) / (2 + k), overall])
    running = session_baseline("session_running", train, test)  # cells: (running, hours-ahead band)
    assert running.tolist() == pytest.approx([(1 + k * overall) / (1 + k), (0 + k * overall) / (1 + k), (0 + k * overall) / (2 + k)])
    with pytest.raises(ValueError, match="unknown session baseline"):
        session_baseline("always_negative", train, test)


def test_metrics_history_has_one_entry_per_run_completed_by_each_report():
    entries = upsert_run_entry([], "run-1", {"num_tracks": 10, "mood_model": {"promoted": True}}, {"flagged": ["x"]})
    entries = upsert_run_entry(entries, "run-1", {"session_model": {"promoted": False}}, {"flagged": ["old"]})
    assert len(entries) == 1 and entries[0]["mood_model"] and entries[0]["session_model"] and entries[0]["drift"] == {"flagged": ["x"]}
    entries = upsert_run_entry(entries, "run-2", {"num_tracks": 12}, None)
    assert [e["run_id"] for e in entries] == ["run-1", "run-2"]
    assert set_run_drift(entries, "run-2", {"flagged": []})[1]["drift"] == {"flagged": []}
    assert set_run_drift(entries, "run-3", {"flagged": []}) is None  # an update run evaluates nothing


def test_psi_and_entropy():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, 2000)
    assert psi(a, rng.uniform(0, 1, 2000)) < 0.02
    assert psi(a, rng.uniform(0.5, 1.5, 2000)) > 1.0
    assert psi(a, np.array([])) is None
    assert entropy_bits(np.array([5, 5, 0])) == pytest.approx(1.0)
    assert entropy_bits(np.zeros(24)) is None


def daily_sessions(days: pd.DatetimeIndex, hour: int, plays: int, gap_min: int, features: float) -> pd.DataFrame:
    starts = days + pd.Timedelta(hours=hour)
    times = np.repeat(starts.as_unit("ns").asi8, plays) + np.tile(np.arange(plays), len(starts)) * gap_min * 60_000_000_000
    df = pd.DataFrame({"played_at": pd.to_datetime(times, utc=True).as_unit("ms")})
    for f in AUDIO_FEATURES:
        df[f] = features + np.linspace(0, 0.1, len(df))
    return df


def test_drift_report_known_windows_and_flags():
    as_of = pd.Timestamp("2026-03-01 00:00", tz="UTC")
    reference = daily_sessions(pd.date_range("2026-01-23", periods=30, freq="D", tz="UTC"), 8, 4, 10, 0.2)
    current = daily_sessions(pd.date_range("2026-02-22", periods=7, freq="D", tz="UTC"), 20, 3, 10, 0.7)
    history = pd.concat([reference, current], ignore_index=True)
    history["session_id"] = session_ids(history["played_at"])
    report = drift_report(history, as_of, "UTC", DriftSettings(), generated_at="2026-03-01T00:00:00+00:00")
    metrics = {m["metric"]: m for m in report["metrics"]}
    assert metrics["sessions_per_day"]["reference"] == 1 and metrics["sessions_per_day"]["current"] == 1
    assert not metrics["sessions_per_day"]["flagged"] and metrics["sessions_per_day"]["flagged_at"] is None
    assert metrics["tracks_per_day"]["reference"] == 4 and metrics["tracks_per_day"]["current"] == 3
    assert metrics["tracks_per_day"]["change"] == -0.25 and metrics["tracks_per_day"]["flagged_at"] == "2026-03-01T00:00:00+00:00"
    assert metrics["session_duration_mean"]["reference"] == 30 and metrics["session_duration_mean"]["current"] == 20
    assert metrics["share_of_days_with_session"]["reference"] == 1 and metrics["share_of_days_with_session"]["current"] == 1
    assert metrics["start_hour_entropy"]["reference"] == 0 and not metrics["start_hour_entropy"]["flagged"]
    hours = {h["hour"]: h for h in report["per_hour_start_frequency"]}
    assert hours[8]["reference"] == 1 and hours[8]["current"] == 0 and hours[8]["flagged"]
    assert hours[20]["current"] == 1 and hours[20]["flagged"] and hours[20]["note"] == "absent in the reference window"
    assert all(p["flagged"] for p in report["feature_psi"])
    assert report["drift_detected"] and "psi_valence" in report["flagged"] and "start_frequency_hour_20" in report["flagged"]
    assert report["windows"]["current"]["plays"] == 21 and report["windows"]["reference"]["plays"] == 120


def test_drift_in_the_listeners_timezone_and_with_an_empty_window():
    as_of = pd.Timestamp("2026-03-01 00:00", tz="UTC")
    history = daily_sessions(pd.date_range("2026-01-23", periods=30, freq="D", tz="UTC"), 8, 3, 10, 0.3)
    history["session_id"] = session_ids(history["played_at"])
    report = drift_report(history, as_of, "Europe/Stockholm", DriftSettings())
    hours = {h["hour"]: h for h in report["per_hour_start_frequency"]}
    assert hours[9]["reference"] == 1 and hours[8]["reference"] == 0  # 08:00 UTC is 09:00 in Stockholm in winter
    metrics = {m["metric"]: m for m in report["metrics"]}
    assert metrics["sessions_per_day"]["current"] == 0 and metrics["sessions_per_day"]["flagged"]
    assert metrics["session_duration_mean"]["current"] is None and not metrics["session_duration_mean"]["flagged"]
    assert all(p["psi"] is None and "fewer than" in p["note"] for p in report["feature_psi"])
