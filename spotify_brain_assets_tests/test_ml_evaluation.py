"""Metrics, baselines, the promotion decision, the metrics history and the drift report."""

import numpy as np
import pandas as pd
import pytest

from spotify_brain_assets.ml.drift import DriftSettings, drift_report, entropy_bits, psi
from spotify_brain_assets.ml.evaluation import (
    calibration_error,
    mood_baselines,
    mood_metrics,
    promotion_decision,
    session_baselines,
    session_metrics,
    set_run_drift,
    upsert_run_entry,
)
from spotify_brain_assets.plays.schema import AUDIO_FEATURES
from spotify_brain_assets.plays.sessions import session_ids


def test_mood_metrics_known_answers():
    y = np.array([0, 1, 2, 2])
    perfect = pd.DataFrame(np.eye(3)[y], columns=[0, 1, 2])
    m = mood_metrics(y, perfect)
    assert m["accuracy"] == 1 and m["macro_f1"] == 1 and m["roc_auc"] == 1 and m["log_loss"] < 1e-5
    uniform = pd.DataFrame(np.full((4, 3), 1 / 3), columns=[0, 1, 2])
    u = mood_metrics(y, uniform)
    assert u["log_loss"] == pytest.approx(np.log(3), abs=1e-6) and u["roc_auc"] == 0.5
    # a class the model never saw counts at (clipped) probability zero
    missing = mood_metrics(np.array([0, 5]), pd.DataFrame([[1.0], [1.0]], columns=[0]))
    assert missing["accuracy"] == 0.5 and missing["log_loss"] > 6


def test_mood_baselines_are_fitted_on_training_rows_only():
    train = pd.DataFrame({"last": [0, 0, 0, 0, 1, 1], "target": [0, 0, 0, 1, 1, 0]})
    test = pd.DataFrame({"last": [0, 1, 2], "target": [1, 1, 2]})
    base = mood_baselines(train, test, "last", "target")
    majority, pred = base["majority_class"]
    assert pred.tolist() == [0, 0, 0] and majority.iloc[0].tolist() == pytest.approx([4 / 6, 2 / 6, 0])
    same, pred = base["same_as_previous"]
    assert pred.tolist() == [0, 1, 2]
    stay = 4 / 6  # the training period's rate of repeating the last mood
    assert same.iloc[1].tolist() == pytest.approx([(1 - stay) * 4 / 6, stay + (1 - stay) * 2 / 6, 0])
    markov, pred = base["markov"]
    assert markov.iloc[0].tolist() == pytest.approx([(3 + 1) / (4 + 3), (1 + 1) / 7, 1 / 7])  # add-one over 3 classes
    assert markov.iloc[2].tolist() == pytest.approx([1 / 3] * 3)  # never seen as a last mood
    assert pred.tolist()[:2] == [0, 0]


def test_session_metrics_known_answers_and_buckets():
    y = np.array([0, 0, 1, 1, 0, 0, 0, 1])
    p = np.array([0.1, 0.2, 0.8, 0.7, 0.3, 0.1, 0.2, 0.9])
    hours = np.array([1, 7, 7, 13, 13, 19, 19, 19])
    m = session_metrics(y, p, hours)
    assert m["pr_auc"] == 1 and m["roc_auc"] == 1 and m["f1"] == 1 and m["positives"] == 3
    assert m["f1_at"]["0.9"] == pytest.approx(2 * (1 * 1 / 3) / (1 + 1 / 3))  # only p >= 0.9 is called
    assert set(m["by_time_of_day"]) == {"morning", "afternoon", "evening", "night"}
    assert m["by_time_of_day"]["night"] == {"rows": 1, "positives": 0, "pr_auc": None, "roc_auc": None}
    assert m["by_time_of_day"]["evening"]["rows"] == 3 and m["by_time_of_day"]["evening"]["positives"] == 1
    never = session_metrics(y, np.zeros(8), hours)
    assert never["pr_auc"] == pytest.approx(3 / 8) and never["roc_auc"] == 0.5 and never["f1"] == 0


def test_calibration_error_known_answer():
    y = np.array([1, 0, 0, 0, 1, 1])
    p = np.array([0.25, 0.25, 0.25, 0.25, 0.85, 0.85])
    assert calibration_error(y, p) == pytest.approx((4 * abs(0.25 - 0.25) + 2 * abs(0.85 - 1.0)) / 6)


def test_session_priors_come_from_the_training_period():
    train = pd.DataFrame(
        {"date": ["2026-01-05"] * 2 + ["2026-01-06"] * 2, "hour": [7, 8, 7, 8], "target": [1, 0, 0, 0]}
    )
    test = pd.DataFrame({"date": ["2026-01-12", "2026-01-13", "2026-01-14"], "hour": [7, 7, 9], "target": [1, 0, 0]})
    base = session_baselines(train, test, "target")
    assert base["always_negative"].tolist() == [0, 0, 0]
    assert base["hour_of_day_prior"].tolist() == [0.5, 0.5, 0.25]  # hour 9 unseen: the overall rate
    assert base["hour_of_week_prior"].tolist() == [1.0, 0.0, 0.25]  # Monday 7h, Tuesday 7h, fallback


@pytest.mark.parametrize(
    "metric, candidate, in_use, promoted, reason",
    [
        ("pr_auc", 0.5, None, True, None),
        ("pr_auc", 0.5, 0.5, True, None),  # equal is not worse
        ("pr_auc", 0.39, None, False, "worse than the best baseline (hour: 0.4000)"),
        ("pr_auc", 0.45, 0.5, False, "worse than the model in use (0.5000)"),
        ("pr_auc", None, None, False, "undefined"),
        ("log_loss", 0.5, None, False, "worse than the best baseline (hour: 0.4000)"),
        ("log_loss", 0.3, 0.31, True, None),
    ],
)
def test_promotion_decision(metric, candidate, in_use, promoted, reason):
    baselines = {"none": {metric: 0.1 if metric == "pr_auc" else 0.9}, "hour": {metric: 0.4}, "broken": {metric: None}}
    decision = promotion_decision(metric, candidate, baselines, in_use, None)
    assert decision["promoted"] is promoted
    if reason:
        assert reason in decision["summary"] and decision["summary"].startswith("not promoted, the model in use stays")
    assert decision["best_baseline"] == "hour"


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
