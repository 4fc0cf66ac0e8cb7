"""Online evaluation on hand-made data: the log, the outcomes and the scores, against hand-computed values."""

import math

import numpy as np
import pandas as pd
import pytest

from spotify_brain_assets.ml.online import (
    LOG_KEY,
    conform_log,
    hour_of_week_prior,
    live_quality,
    log_rows,
    mood_baselines,
    score_report,
    unlogged,
)

pytestmark = pytest.mark.fast

T = lambda s: pd.Timestamp(f"2026-03-02T{s}Z")  # noqa: E731  (a Monday)
GAP = pd.Timedelta(minutes=30)
SETTLE = pd.Timedelta(hours=2)


def _history(rows) -> pd.DataFrame:
    """(track_id, HH:MM, session_id, mood) → a history frame with the columns scoring reads."""
    df = pd.DataFrame(rows, columns=["track_id", "time", "session_id", "mood_cluster_id"])
    df["played_at"] = df.pop("time").map(T).astype("datetime64[ms, UTC]")
    return df


HISTORY = _history(
    [
        ("a", "10:00", 0, 0),
        ("b", "10:05", 0, 0),
        ("c", "10:10", 0, 1),
        ("d", "12:00", 1, 1),
        ("e", "12:04", 1, 2),
    ]
)


def _mood(made, cond_track, cond_time, predictor, probs):
    return [
        dict(made_at=T(made), task="next_mood", predictor=predictor, version="model:abc" if predictor == "served" else predictor,
             mood_cluster_id=c, hour_start=pd.NaT, probability=p, conditioned_track_id=cond_track, conditioned_played_at=T(cond_time))
        for c, p in probs.items()
    ]


def _hours(made, predictor, probs):
    return [
        dict(made_at=T(made), task="session_start", predictor=predictor, version="model:def" if predictor == "served" else predictor,
             mood_cluster_id=-1, hour_start=T(h), probability=p, conditioned_track_id=None, conditioned_played_at=pd.NaT)
        for h, p in probs.items()
    ]


LOG = conform_log(
    pd.DataFrame(
        _mood("10:06", "b", "10:05", "served", {0: 0.5, 1: 0.3, 2: 0.2})  # outcome: c, mood 1
        + _mood("10:06", "b", "10:05", "markov", {0: 0.6, 1: 0.2, 2: 0.2})
        + _mood("10:11", "c", "10:10", "served", {1: 1.0})  # its session ended: never scored
        + _mood("12:01", "d", "12:00", "served", {1: 0.4, 2: 0.6})  # outcome: e, mood 2
        + _mood("12:01", "d", "12:00", "markov", {0: 0.2, 1: 0.5, 2: 0.3})
        + _mood("12:05", "e", "12:04", "served", {2: 1.0})  # its session ended: never scored
        + _hours("10:06", "served", {"11:00": 0.2, "12:00": 0.7, "13:00": 0.1})  # 13:00 ends after 15:00 − 2 h
        + _hours("10:06", "hour_of_week_prior", {"11:00": 0.5, "12:00": 0.5, "13:00": 0.5})
    )
)


def _report(as_of=T("15:00"), data_through=T("15:00")):
    return score_report(LOG, HISTORY, as_of, data_through, "UTC", SETTLE, GAP)


def test_mood_scores_equal_hand_computed_values():
    mood = _report()["tasks"]["next_mood"]
    assert mood["outcomes"] == {"scored": 2, "awaiting": 0, "not_scorable": 2}
    served = mood["windows"]["7d"]["predictors"]["served"]
    # log loss: mean(−ln 0.3, −ln 0.6); Brier: (0.5² + 0.7² + 0.2²) = 0.78 and (0.6² + 0.4²... of 1 and 2) = 0.32
    assert served["n"] == 2
    assert served["log_loss"] == pytest.approx((-math.log(0.3) - math.log(0.6)) / 2, abs=1e-6)
    assert served["brier"] == pytest.approx((0.78 + 0.32) / 2, abs=1e-6)
    assert served["accuracy"] == 0.5  # top 0 (wrong), then top 2 (right)
    # calibration: confidence 0.5 missed (bin 5), 0.6 hit (bin 6): (|0.5 − 0| + |0.6 − 1|) / 2
    assert served["calibration_error"] == pytest.approx(0.45, abs=1e-6)
    markov = mood["windows"]["7d"]["predictors"]["markov"]
    assert markov["log_loss"] == pytest.approx((-math.log(0.2) - math.log(0.3)) / 2, abs=1e-6)
    assert markov["brier"] == pytest.approx((1.04 + 0.78) / 2, abs=1e-6)  # .36+.64+.04; .04+.25+.49
    assert markov["accuracy"] == 0.0
    block = mood["windows"]["7d"]
    assert block["best_baseline"] == "markov" and block["served_beats_best"] is True
    assert block["served_minus_best_log_loss"] == pytest.approx(served["log_loss"] - markov["log_loss"], abs=1e-5)
    assert mood["served_versions_30d"] == {"model:abc": 2}


def test_session_scores_equal_hand_computed_values():
    session = _report()["tasks"]["session_start"]
    assert session["outcomes"] == {"scored": 2, "awaiting": 1, "not_scorable": 0}
    served = session["windows"]["30d"]["predictors"]["served"]
    # 11:00: no start, p 0.2; 12:00: the session of d starts, p 0.7
    assert served["log_loss"] == pytest.approx((-math.log(0.8) - math.log(0.7)) / 2, abs=1e-6)
    assert served["brier"] == pytest.approx((0.04 + 0.09) / 2, abs=1e-6)
    assert served["accuracy"] == 1.0
    assert served["calibration_error"] == pytest.approx((0.2 + 0.3) / 2, abs=1e-6)  # bins 2 and 7
    prior = session["windows"]["30d"]["predictors"]["hour_of_week_prior"]
    assert prior["log_loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert prior["brier"] == 0.25 and prior["accuracy"] == 0.5  # p 0.5 counts as "a start": wrong at 11:00


def test_outcomes_wait_until_ingestion_has_settled_past_them():
    early = _report(as_of=T("12:30"), data_through=T("12:30"))  # settled through 10:30
    assert early["tasks"]["next_mood"]["outcomes"] == {"scored": 1, "awaiting": 3, "not_scorable": 0}
    assert early["tasks"]["session_start"]["outcomes"] == {"scored": 0, "awaiting": 3, "not_scorable": 0}
    assert early["tasks"]["session_start"]["windows"]["7d"]["predictors"] == {}


def test_windows_and_days_follow_made_at():
    report = _report(as_of=T("00:00") + pd.Timedelta(days=10))  # 10 days later: out of the 7-day window, in the 14- and 30-day ones
    mood = report["tasks"]["next_mood"]
    assert mood["windows"]["7d"]["predictors"] == {} and mood["windows"]["14d"]["predictors"]["served"]["n"] == 2
    assert [d["date"] for d in mood["daily"]] == ["2026-03-02"]
    assert mood["daily"][0]["predictors"]["served"]["n"] == 2
    reliability = mood["reliability_30d"]["served"]
    assert [(r["bin"], r["n"], r["observed"]) for r in reliability] == [("0.5-0.6", 1, 0.0), ("0.6-0.7", 1, 1.0)]


def test_baselines_are_only_compared_where_something_was_served():
    no_served = LOG[~((LOG["made_at"] == T("12:01")) & (LOG["predictor"] == "served"))]
    report = score_report(no_served, HISTORY, T("15:00"), T("15:00"), "UTC", SETTLE, GAP)
    assert report["tasks"]["next_mood"]["windows"]["7d"]["predictors"]["markov"]["n"] == 1


def test_an_empty_log_gives_an_empty_report():
    report = score_report(LOG.iloc[:0], HISTORY, T("15:00"), T("15:00"), "UTC", SETTLE, GAP)
    assert report["log"]["rows"] == 0
    for task in ("next_mood", "session_start"):
        assert report["tasks"][task]["windows"]["30d"] == {"predictors": {}, "best_baseline": None, "served_minus_best_log_loss": None, "served_beats_best": None}


def test_the_log_never_holds_a_prediction_twice():
    again = unlogged(LOG, LOG)
    assert len(again) == 0
    later = LOG[LOG["made_at"] == T("10:06")].assign(made_at=T("10:36"))
    added = unlogged(LOG, pd.concat([LOG, later]))
    assert len(added) == len(later) and not pd.concat([LOG, added]).duplicated(LOG_KEY).any()


def test_mood_baselines_by_hand():
    # within-session transitions: 0→0, 0→1 (session 0), 1→2 (session 1); 3 pairs, one stays
    base = mood_baselines(HISTORY, last_mood=0, classes=np.array([0, 1, 2]))
    assert base["markov"] == pytest.approx(np.array([2, 2, 1]) / 5)  # from 0: one to 0, one to 1, +1 each
    stay, share = 1 / 3, np.array([2, 2, 2]) / 6  # next moods 0, 1, 2 once each, +1
    assert base["persistence"] == pytest.approx(stay * np.array([1, 0, 0]) + (1 - stay) * share)


def test_hour_of_week_prior_by_hand():
    # three Mondays: a session starts at 10:00 on two of them; made the fourth Monday at 09:00
    plays = _history([("a", "10:00", 0, 0)])
    plays = pd.concat([plays.assign(played_at=plays["played_at"] + pd.Timedelta(days=7 * k), session_id=k) for k in (0, 2)])
    made = T("09:00") + pd.Timedelta(days=21)
    hours = pd.DatetimeIndex([T("10:00") + pd.Timedelta(days=21), T("11:00") + pd.Timedelta(days=21)])
    p = hour_of_week_prior(plays, hours, made, "UTC")
    overall = 2 / (21 * 24 - 1)  # complete hours from Monday 10:00 of week 0 to Monday 09:00 of week 3
    hod_10 = (2 + 2 * overall) / (21 + 2)  # 21 days have a 10:00, two with a start
    hod_11 = (0 + 2 * overall) / (21 + 2)
    assert p[0] == pytest.approx((2 + 2 * hod_10) / (3 + 2))  # Monday 10:00 seen 3 times, 2 starts
    assert p[1] == pytest.approx((0 + 2 * hod_11) / (3 + 2))


def test_log_rows_read_todays_predictions_file_and_add_baselines():
    doc = {
        "as_of": "2026-03-02T12:01:00+00:00",
        "next_mood": {"available": True, "source": "baseline:markov", "last_play_at": "2026-03-02T12:00:00+00:00",
                      "probabilities": [{"cluster_id": 1, "probability": 0.7}, {"cluster_id": 2, "probability": 0.3}]},
        "session_start": {"available": True, "source": "model", "hours": [
            {"hour": 11, "hour_start": "2026-03-02T11:00:00+00:00", "probability": 0.1, "past": True},
            {"hour": 13, "hour_start": "2026-03-02T13:00:00+00:00", "probability": 0.4, "past": False},
        ]},
    }
    rows = log_rows(doc, HISTORY, "UTC", {"session_start": "model:0123456789ab"})
    mood = rows[rows["task"] == "next_mood"]
    assert set(mood["predictor"]) == {"served", "markov", "persistence"}
    served = mood[mood["predictor"] == "served"]
    assert served["version"].unique().tolist() == ["baseline:markov"]
    assert served["conditioned_track_id"].unique().tolist() == ["d"]  # looked up from the time
    assert (mood["made_at"] == T("12:01")).all()
    session = rows[rows["task"] == "session_start"]
    assert session["hour_start"].unique().tolist() == [T("13:00")]  # the hour already under way is no prediction
    assert set(session["predictor"]) == {"served", "hour_of_week_prior"}
    assert session.loc[session["predictor"] == "served", "version"].item() == "model:0123456789ab"


def test_log_rows_read_the_new_contract():
    doc = {
        "made_at": "2026-03-02T12:01:00+00:00",
        "next_mood": {"available": True, "source": "model", "served": {"kind": "model", "name": "xgboost", "version": "0123456789ab"},
                      "conditioned_on": {"track_id": "d", "played_at": "2026-03-02T12:00:00+00:00"},
                      "distribution": {"1": 0.25, "2": 0.75}},
        "session_start": {"available": True, "source": "baseline:hour_of_week_prior", "served": {"kind": "baseline", "name": "hour_of_week_prior", "version": None},
                          "hours": [{"hour": 13, "hour_start": "2026-03-02T13:00:00+00:00", "lead_hours": 0.98, "probability": 0.2}]},
    }
    rows = log_rows(doc, HISTORY, "UTC")
    served = rows[rows["predictor"] == "served"]
    assert served.groupby("task", observed=True)["version"].first().astype(str).to_dict() == {
        "next_mood": "model:0123456789ab", "session_start": "baseline:hour_of_week_prior"
    }
    mood = served[served["task"] == "next_mood"]
    assert dict(zip(mood["mood_cluster_id"], mood["probability"])) == {1: 0.25, 2: 0.75}
    assert (mood["conditioned_track_id"] == "d").all()


def test_live_quality_is_the_30_day_served_against_the_best_baseline():
    report = _report()
    live = live_quality(report)
    mood = report["tasks"]["next_mood"]["windows"]["30d"]["predictors"]
    assert live["window"] == "30d"
    assert live["next_mood"] == {
        "metric": "log_loss", "model": mood["served"]["log_loss"], "best_baseline": "markov",
        "baseline": mood["markov"]["log_loss"], "n_scored": 2, "beats_baseline": True,
    }
    assert live["session_start"]["best_baseline"] == "hour_of_week_prior" and live["session_start"]["n_scored"] == 2
    assert live_quality(None) == {"window": "30d", "next_mood": None, "session_start": None}
