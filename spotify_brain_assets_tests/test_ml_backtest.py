"""The rolling-origin backtest, the gate's evidence, the refit, and the outlook of an inactive listener,
on synthetic listeners with known structure (spotify_brain_assets.benchmarks.listeners)."""

import numpy as np
import pandas as pd
import pytest

from spotify_brain_assets.benchmarks.listeners import synthetic_listener
from spotify_brain_assets.ml import mood_features, session_features
from spotify_brain_assets.ml.assign import nearest_cluster
from spotify_brain_assets.ml.backtest import BacktestSettings, Scores, cut_times, decide, evidence
from spotify_brain_assets.ml.classifiers import (
    IN_USE,
    MOOD_RECIPES,
    SESSION_RECIPES,
    TrainSettings,
    mood_candidate,
    mood_folds,
    session_candidate,
    session_folds,
)
from spotify_brain_assets.ml.clusters import fit_mood_clusters
from spotify_brain_assets.ml.families import Recipe
from spotify_brain_assets.ml.predict import outlook, prior_outlook
from spotify_brain_assets.ml.training import data_hash
from spotify_brain_assets.plays.sessions import session_ids

END = pd.Timestamp("2026-03-01", tz="UTC")
TZ = "Europe/Stockholm"
CONTEXT = {"timezone": TZ}


def listener(kind: str, days: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A synthetic listener's history with sessions and moods, and its clusters' centroids."""
    plays = synthetic_listener(kind, days, END, TZ, seed=seed)
    plays["session_id"] = session_ids(plays["played_at"])
    fit = fit_mood_clusters(plays)
    plays["mood_cluster_id"] = nearest_cluster(plays, fit.centroids)
    return plays, fit.centroids


@pytest.fixture(scope="module")
def routine():
    history, centroids = listener("routine", 300, seed=5)
    dataset = session_features.session_dataset(history, TZ)
    return history, centroids, dataset


@pytest.fixture(scope="module")
def session_outcome(routine):
    return session_candidate(routine[2], TrainSettings(SESSION_RECIPES), None, None, CONTEXT)


@pytest.mark.fast
def test_cuts_spread_over_the_newest_part_of_history():
    first, last = pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-01-31", tz="UTC")
    cuts = cut_times(first, last, BacktestSettings(folds=6, span=0.5))
    assert cuts[0] == pd.Timestamp("2026-01-16", tz="UTC") and len(cuts) == 6
    assert (pd.Series(cuts).diff().dropna() == pd.Timedelta(days=2.5)).all()


def test_session_folds_never_train_on_anything_at_or_after_their_cut(routine):
    rows = routine[2].sort_values(["origin", "hour_start"]).reset_index(drop=True)
    folds = list(session_folds(rows, BacktestSettings()))
    assert len(folds) == 6
    for number, cut, end, train, test in folds:
        assert (train["hour_start"] + pd.Timedelta(hours=1) <= cut).all()  # every training outcome was over by the cut
        assert (train["origin"] < cut).all() and len(train) > 0
        assert (test["origin"] >= cut).all() and (test["origin"] < end).all() and len(test) > 0
    tested = pd.concat([f[4] for f in folds])
    assert not tested.duplicated(["origin", "hour_start"]).any()  # each test row is scored once


def test_mood_folds_never_train_on_plays_at_or_after_their_cut(routine):
    history, centroids, _ = routine
    ctx = mood_features.contexts(history, 3, TZ)
    folds = list(mood_folds(history, ctx, len(centroids), BacktestSettings()))
    assert len(folds) == 6
    for fold in folds:
        assert (fold.cluster_plays["played_at"] < fold.cut).all()  # the fold's moods come from its past only
        assert len(fold.cluster_plays) == (history["played_at"] < fold.cut).sum()
        assert (fold.train["played_at"] < fold.cut).all() and (fold.train["context_played_at"] < fold.cut).all()
        assert ((fold.test["played_at"] >= fold.cut) & (fold.test["played_at"] < fold.end)).all()
        assert fold.k == len(centroids)


def scores(candidate_shift: float, spread: float, in_use_shift: float | None = None) -> Scores:
    """Losses on 60 days × 24 rows: a baseline, and a candidate whose difference from it is exactly
    `candidate_shift` on average, `spread` above or below it on alternate days (and a model in use
    shifted by `in_use_shift`)."""
    day = np.repeat(np.arange(60), 24)
    base = np.random.default_rng(0).exponential(0.3, len(day))
    losses = {
        "candidate": {"log_loss": base + candidate_shift + spread * np.where(day % 2 == 0, 1.0, -1.0)},
        "prior": {"log_loss": base},
        "worse prior": {"log_loss": base + 0.05},
    }
    if in_use_shift is not None:
        losses["in use"] = {"log_loss": base + in_use_shift}
    return Scores(day, losses)


@pytest.mark.fast
def test_the_gate_refuses_an_improvement_whose_interval_includes_zero_and_promotes_a_clear_one():
    settings = BacktestSettings()
    noisy = evidence(scores(-0.002, 0.05), "candidate", ["prior", "worse prior"], None, ["log_loss"], settings)
    best = next(a for a in noisy["against"] if a["best"])
    assert best["rival"] == "prior" and best["difference"] == pytest.approx(-0.002) and best["low"] < 0 < best["high"] and not best["clear"]
    refused = decide("session_classifier", noisy, False, 6)
    assert refused["promoted"] is False and refused["serving"] == "baseline" and refused["best_baseline"] == "prior"
    assert "not clearly better" in refused["summary"] and "model" not in refused["summary"].split("so ")[1]  # no model in use to mention
    assert "not clearly below zero" in refused["reasons"][0]

    clear = evidence(scores(-0.05, 0.05), "candidate", ["prior", "worse prior"], None, ["log_loss"], settings)
    promoted = decide("session_classifier", clear, False, 6)
    assert promoted["promoted"] is True and promoted["serving"] == "candidate" and promoted["reasons"] == []
    assert promoted["summary"].startswith("Over 6 past periods, the new listening-times model predicted when you will start listening clearly better")


@pytest.mark.fast
def test_the_model_in_use_stays_when_the_candidate_does_not_clearly_beat_it():
    ev = evidence(scores(-0.05, 0.05, in_use_shift=-0.05), "candidate", ["prior"], "in use", ["log_loss"], BacktestSettings())
    verdict = decide("mood_classifier", ev, True, 6)
    assert verdict["serving"] == "model_in_use" and not verdict["promoted"]
    assert "already in use" in verdict["summary"] and "candidate minus in use" in verdict["reasons"][0]
    lost = evidence(scores(0.0, 0.05, in_use_shift=0.01), "candidate", ["prior"], "in use", ["log_loss"], BacktestSettings())
    retired = decide("mood_classifier", lost, True, 6)
    assert retired["serving"] == "baseline" and "instead of the previous model" in retired["summary"]


def test_after_a_pass_the_served_model_is_refit_on_all_rows(routine, session_outcome):
    history, centroids, dataset = routine
    report, bundle = session_outcome.report, session_outcome.bundle
    assert report["decision"]["promoted"] is True, report["summary"]
    meta = bundle["metadata"]
    assert meta["train_rows"] == len(dataset) == report["candidate"]["train_rows"]
    assert meta["data_hash"] == data_hash(dataset.sort_values(["origin", "hour_start"]), session_features.FEATURE_COLUMNS + [session_features.TARGET])
    assert meta["window"]["train"]["end"] == dataset["origin"].max().isoformat()
    assert max(f["train_rows"] for f in report["folds"]) < len(dataset)

    mood = mood_candidate(history, centroids, 3, TrainSettings(MOOD_RECIPES), None, None, CONTEXT)
    assert mood.report["decision"]["promoted"] is True, mood.report["summary"]
    full = mood_features.mood_dataset(history, 3, TZ, centroids.index)
    assert mood.bundle["metadata"]["train_rows"] == len(full)
    name = mood.report["candidate"]["name"]
    trees = int(np.median([f["trees"][name] for f in mood.report["folds"]]))
    assert mood.bundle["metadata"]["trees"] == trees == mood.bundle["model"].get_booster().num_boosted_rounds()


def test_a_capped_recipe_is_refit_on_the_newest_rows_and_its_metadata_says_so(routine):
    rows = routine[2].sort_values(["origin", "hour_start"], kind="stable")
    cap = len(rows) // 3
    outcome = session_candidate(routine[2], TrainSettings(tuple(Recipe(f, "session", max_train_rows=cap) for f in ("xgboost", "logistic"))), None, None, CONTEXT)
    meta, newest = outcome.bundle["metadata"], rows.iloc[-cap:]
    assert meta["train_rows"] == cap == outcome.report["candidate"]["train_rows"] and meta["recipe"]["max_train_rows"] == cap
    assert meta["window"]["train"]["start"] == newest["origin"].min().isoformat()
    assert meta["data_hash"] == data_hash(newest, session_features.FEATURE_COLUMNS + [session_features.TARGET])


def test_the_recipe_of_the_model_in_use_is_retrained_on_every_fold_and_stays_when_better(routine, session_outcome):
    weak = TrainSettings((Recipe("xgboost", "session", n_estimators=1, max_depth=1, learning_rate=0.01),))
    out = session_candidate(routine[2], weak, session_outcome.bundle, None, CONTEXT)
    report = out.report
    assert report["model_in_use"]["compared"] and report["model_in_use"]["scorer"] == IN_USE
    assert report["decision"]["serving"] == {"kind": "model", "name": IN_USE} and not report["decision"]["promoted"]
    assert all(IN_USE in f["scores"] for f in report["folds"])
    assert "already in use" in report["summary"]
    foreign = {**session_outcome.bundle, "metadata": {**session_outcome.bundle["metadata"], "timezone": "UTC"}}
    moved = session_candidate(routine[2], weak, foreign, None, CONTEXT)
    assert not moved.report["model_in_use"]["compared"] and "timezone='UTC'" in moved.report["model_in_use"]["note"]


@pytest.mark.parametrize("seed", [1, 2])
def test_on_a_listener_with_shuffled_hours_and_moods_the_gate_never_promotes(seed):
    history, centroids = listener("shuffled", 200, seed)
    session = session_candidate(session_features.session_dataset(history, TZ), TrainSettings(SESSION_RECIPES), None, None, CONTEXT)
    mood = mood_candidate(history, centroids, 3, TrainSettings(MOOD_RECIPES), None, None, CONTEXT)
    for out in (session, mood):
        assert out.report["status"] == "trained"
        assert out.report["decision"]["promoted"] is False and out.report["decision"]["serving"]["kind"] == "baseline", out.report["summary"]


def test_the_outlook_for_a_listener_inactive_for_30_days_says_so(routine, session_outcome):
    history = routine[0]
    now = history["played_at"].max() + pd.Timedelta(days=30)
    for bundle in (session_outcome.bundle, None):
        answer = outlook(history, bundle, "hour_of_week", TZ, now)
        assert answer["available"] and answer["inactive"] is True and answer["source"] == "baseline:hour_of_week"
        assert answer["reason"].startswith("No plays for 30 days") and "not a forecast" in answer["reason"]
        assert len(answer["hours"]) == 24 and pd.Timestamp(answer["hours"][0]["hour_start"]) >= now
    habit = prior_outlook(history, "hour_of_week", TZ, now)  # the same hours, undecayed
    decayed = [h["probability"] for h in answer["hours"]]
    assert decayed == pytest.approx([h["probability"] * 0.5 ** (30 / 14) for h in habit["hours"]], abs=2e-6)  # halved per 14 silent days
    assert outlook(history, None, "hour_of_week", TZ, history["played_at"].max() + pd.Timedelta(hours=2))["inactive"] is False
