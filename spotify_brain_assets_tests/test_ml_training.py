"""Model recipes on awkward data, the model files and their checksums."""

import os

import joblib
import numpy as np
import pandas as pd
import pytest

from spotify_brain_assets.ml import families
from spotify_brain_assets.ml.families import Recipe, fit, predict, recency_weights
from spotify_brain_assets.ml.model_store import ModelRefused, load_model, previous_path, promote, retire, save_model, sidecar_path
from spotify_brain_assets.ml.training import TrainingSkipped, data_hash

pytestmark = pytest.mark.fast  # pure logic

XGB = Recipe("xgboost", "mood", n_estimators=20, max_depth=3)


def sessions_frame(n_sessions: int = 60, per: int = 5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(n_sessions) * 6, unit="h")
    played = np.repeat(start.as_unit("ns").asi8, per) + np.tile(np.arange(per), n_sessions) * 240_000_000_000
    df = pd.DataFrame(
        {
            "played_at": pd.to_datetime(played, utc=True),
            "session_id": np.repeat(np.arange(n_sessions), per),
            "x": rng.normal(size=n_sessions * per),
        }
    )
    df["target"] = (df["x"] > 0).astype(int) + (df["x"] > 1).astype(int)  # three classes, the rarest ~16%
    return df


def test_xgboost_early_stops_on_the_newest_rows_and_the_refit_uses_the_given_trees():
    df = sessions_frame()
    stopped = fit(Recipe("xgboost", "mood", n_estimators=200, max_depth=2, early_stopping_rounds=3), df, ["x"], "target")
    assert stopped.trees == stopped.model.best_iteration + 1 < 200
    refit = fit(XGB, df, ["x"], "target", trees=7)
    assert refit.trees == 7 and refit.model.get_booster().num_boosted_rounds() == 7
    proba = predict(refit, df, ["x"])
    assert proba.shape == (len(df), 3) and np.allclose(proba.sum(axis=1), 1)


def test_a_class_absent_from_training_does_not_crash_and_sparse_labels_are_reencoded():
    df = sessions_frame()
    df["target"] = df["target"].map({0: 11, 1: 4, 2: 9})
    fitted = fit(XGB, df, ["x"], "target")
    assert fitted.classes == [4, 9, 11]
    df.loc[df.index[-30:], "target"] = 7  # only in the newest rows, the early-stopping slice: used, not crashing
    assert fit(XGB, df, ["x"], "target").classes == [4, 7, 9, 11]
    df["target"] = 3
    with pytest.raises(TrainingSkipped, match="a classifier needs two"):
        fit(XGB, df, ["x"], "target")


def test_a_capped_recipe_trains_on_the_newest_rows_only():
    df = sessions_frame(n_sessions=100)
    df.loc[df.index[:300], "target"] = 2 - df["target"].iloc[:300]  # the oldest rows hold the reverse rule
    df.loc[df.index[:50], "target"] = 5  # and a class the newest rows never show
    newest = pd.DataFrame({"x": [-2.0, 2.0]})
    capped = fit(Recipe("xgboost", "mood", n_estimators=30, max_train_rows=200), df, ["x"], "target", weights=np.ones(len(df)))
    assert capped.classes == [0, 1, 2] and predict(capped, newest, ["x"]).argmax(axis=1).tolist() == [0, 2]
    everything = fit(Recipe("xgboost", "mood", n_estimators=30, max_train_rows=None), df, ["x"], "target")
    assert everything.classes == [0, 1, 2, 5]
    with pytest.raises(ValueError, match="max_train_rows must be at least 100"):
        Recipe("xgboost", "mood", max_train_rows=10)


def test_xgboost_threads_follow_idle_cores_and_do_not_change_the_model(monkeypatch):
    cores = len(os.sched_getaffinity(0))
    for load, threads in ((0.2, cores), (cores + 3.0, 1), (cores - 0.5, 1)):  # the fit's own thread counts in the load
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert families.training_threads() == threads
    df = sessions_frame(n_sessions=200)
    df["y"] = df["x"] ** 2 + np.random.default_rng(1).normal(size=len(df))
    proba = {}
    for threads in (1, 2):
        monkeypatch.setattr(families, "training_threads", lambda threads=threads: threads)
        fitted = fit(XGB, df, ["x", "y"], "target")
        assert fitted.model.get_params()["n_jobs"] == threads
        proba[threads] = predict(fitted, df, ["x", "y"])
    np.testing.assert_array_equal(proba[1], proba[2])


def test_recipes_are_validated_and_recency_weights_halve_per_half_life():
    with pytest.raises(ValueError, match="unknown model family"):
        Recipe("forest", "session")
    with pytest.raises(ValueError, match="no logistic design"):
        fit(Recipe("logistic", "mood"), sessions_frame(), ["x"], "target")
    times = pd.Series(pd.to_datetime(["2026-01-01", "2026-01-11", "2026-01-21"], utc=True))
    assert recency_weights(times, 10).tolist() == pytest.approx([0.25, 0.5, 1.0])
    assert recency_weights(times, None) is None


def test_data_hash_follows_the_content():
    df = sessions_frame()
    assert data_hash(df, ["x", "target"]) == data_hash(df.copy(), ["x", "target"])
    changed = df.copy()
    changed.loc[3, "x"] += 1
    assert data_hash(changed, ["x", "target"]) != data_hash(df, ["x", "target"])


def bundle() -> dict:
    fitted = fit(XGB, sessions_frame(), ["x"], "target")
    return {"model": fitted.model, "feature_cols": ["x"], "metadata": {"classes": fitted.classes}}


def test_model_files_round_trip_and_foreign_or_tampered_files_are_refused(tmp_path):
    path = tmp_path / "models" / "mood_classifier.pkl"
    digest = save_model(bundle(), path, "mood_classifier")
    loaded = load_model(path, "mood_classifier")
    assert loaded["feature_cols"] == ["x"] and len(digest) == 64
    with pytest.raises(ModelRefused, match="holds a 'mood_classifier' model"):
        load_model(path, "session_classifier")

    foreign = tmp_path / "session_classifier.pkl"
    joblib.dump({"model": None, "feature_cols": []}, foreign)  # like the predecessor's unchecked pickles
    with pytest.raises(ModelRefused, match="not written by Spotify Brain"):
        load_model(foreign, "session_classifier")

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelRefused, match="does not match the checksum"):
        load_model(path, "mood_classifier")

    sidecar_path(path).write_text('{"project": "someone-else"}')
    with pytest.raises(ModelRefused, match="was not written by Spotify Brain"):
        load_model(path, "mood_classifier")
    with pytest.raises(ModelRefused, match="does not exist"):
        load_model(tmp_path / "missing.pkl", "mood_classifier")


def test_promotion_copies_the_candidate_and_keeps_the_replaced_model(tmp_path):
    target, cand = tmp_path / "m.pkl", tmp_path / "candidates" / "m.pkl"
    save_model(bundle(), target, "mood_classifier")
    old = target.read_bytes()
    save_model({**bundle(), "feature_cols": ["x"], "metadata": {"classes": [0, 1, 2], "new": True}}, cand, "mood_classifier")
    promote(cand, target, "mood_classifier")
    assert load_model(target, "mood_classifier")["metadata"]["new"] is True
    assert previous_path(target).read_bytes() == old
    assert load_model(previous_path(target), "mood_classifier")["feature_cols"] == ["x"]


def test_retiring_the_model_in_use_keeps_it_as_previous_and_leaves_nothing_loadable(tmp_path):
    target = tmp_path / "models" / "session_classifier.pkl"
    assert retire(target, "session_classifier") is False
    save_model(bundle(), target, "session_classifier")
    data = target.read_bytes()
    assert retire(target, "session_classifier") is True
    assert not target.exists() and not sidecar_path(target).exists()
    assert previous_path(target).read_bytes() == data and load_model(previous_path(target), "session_classifier")["feature_cols"] == ["x"]
