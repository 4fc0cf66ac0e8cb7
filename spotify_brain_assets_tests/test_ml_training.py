"""Time splits, XGBoost training on awkward data, the model files and their checksums, the gate."""

import joblib
import numpy as np
import pandas as pd
import pytest

from spotify_brain_assets.ml.classifiers import GateSettings, mood_candidate
from spotify_brain_assets.ml.model_store import ModelRefused, load_model, previous_path, promote, save_model, sidecar_path
from spotify_brain_assets.ml.mood_features import feature_columns
from spotify_brain_assets.ml.training import TrainingSkipped, XGBSettings, data_hash, predict_proba, time_split, train_classifier

FAST = XGBSettings(n_estimators=20, max_depth=3)


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


def test_time_split_has_no_overlap_and_keeps_sessions_whole():
    df = sessions_frame()
    split = time_split(df, "played_at", 0.2, "session_id")
    assert len(split.train) + len(split.test) == len(df)
    assert split.train["played_at"].max() < split.test["played_at"].min()
    assert set(split.train["session_id"]).isdisjoint(split.test["session_id"])
    assert len(split.test) == 60  # the cut at row 240 falls on a session start
    odd = time_split(df, "played_at", 0.19, "session_id")  # cut at row 243: mid-session
    assert len(odd.test) == 60 and set(odd.train["session_id"]).isdisjoint(odd.test["session_id"])
    plain = time_split(df, "played_at", 0.19)
    assert len(plain.test) == len(df) - int(len(df) * 0.81)
    with pytest.raises(ValueError, match="between 0 and 1"):
        time_split(df, "played_at", 1.0)


def test_early_stopping_sees_only_the_end_of_the_training_period():
    df = sessions_frame()
    split = time_split(df, "played_at", 0.2, "session_id")
    trained = train_classifier(split.train, ["x"], "target", "played_at", FAST, 0.1, "session_id")
    window = trained.validation_window
    assert pd.Timestamp(window["test"]["end"]) <= split.train["played_at"].max() < split.test["played_at"].min()
    assert pd.Timestamp(window["train"]["end"]) < pd.Timestamp(window["test"]["start"])
    assert trained.fit_rows + trained.validation_rows == len(split.train)
    assert trained.model.best_iteration == trained.best_iteration < FAST.n_estimators


def test_a_class_absent_from_training_does_not_crash_and_gets_no_column():
    df = sessions_frame()
    df.loc[df.index[-40:], "target"] = 7  # only in the newest rows
    split = time_split(df, "played_at", 0.2, "session_id")
    trained = train_classifier(split.train, ["x"], "target", "played_at", FAST, 0.1, "session_id")
    assert trained.classes == [0, 1, 2]
    proba = predict_proba(trained.model, trained.classes, split.test, ["x"])
    assert list(proba.columns) == [0, 1, 2] and np.allclose(proba.sum(axis=1), 1)


def test_sparse_labels_are_reencoded_and_one_class_is_a_skip_not_a_crash():
    df = sessions_frame()
    df["target"] = df["target"].map({0: 11, 1: 4, 2: 9})
    trained = train_classifier(df, ["x"], "target", "played_at", FAST, 0.1, "session_id")
    assert trained.classes == [4, 9, 11]
    df["target"] = 3
    with pytest.raises(TrainingSkipped, match="a classifier needs two"):
        train_classifier(df, ["x"], "target", "played_at", FAST, 0.1, "session_id")


def test_data_hash_follows_the_content():
    df = sessions_frame()
    assert data_hash(df, ["x", "target"]) == data_hash(df.copy(), ["x", "target"])
    changed = df.copy()
    changed.loc[3, "x"] += 1
    assert data_hash(changed, ["x", "target"]) != data_hash(df, ["x", "target"])


def bundle() -> dict:
    df = sessions_frame()
    trained = train_classifier(df, ["x"], "target", "played_at", FAST, 0.1, "session_id")
    return {"model": trained.model, "feature_cols": ["x"], "metadata": {"classes": trained.classes}}


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


def mood_rows(n_sessions: int = 80, seed: int = 0) -> pd.DataFrame:
    """A mood dataset whose next mood mostly repeats the last one, except when `hour_sin` > 0."""
    rng = np.random.default_rng(seed)
    per = 6
    n = n_sessions * per
    start = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(n_sessions) * 8, unit="h")
    df = pd.DataFrame(rng.normal(size=(n, len(feature_columns(3)))), columns=feature_columns(3))
    last = rng.integers(0, 3, n)
    for i in range(3):
        df[f"mood_cluster_{i}"] = last
    df["session_id"] = np.repeat(np.arange(n_sessions), per)
    df["played_at"] = pd.to_datetime(np.repeat(start.as_unit("ns").asi8, per) + np.tile(np.arange(per), n_sessions) * 200_000_000_000, utc=True)
    # late in the day the listener switches to mood 2, which no baseline can know
    follow = np.where(df["hour_sin"] > 0, 2, last)
    df["target_mood_cluster"] = np.where(rng.random(n) < 0.9, follow, rng.integers(0, 3, n))
    return df


def test_the_gate_keeps_the_model_in_use_when_the_candidate_is_worse():
    ds = mood_rows()
    gate = GateSettings("log_loss")
    good = mood_candidate(ds, 3, XGBSettings(n_estimators=50, max_depth=2), gate, None, None, {})
    assert good.report["decision"]["promoted"] is True and good.report["status"] == "trained"
    assert good.report["decision"]["model_in_use_note"] == "no model in use yet"
    weak = mood_candidate(ds, 3, XGBSettings(n_estimators=1, max_depth=1, learning_rate=0.01), gate, good.bundle, None, {})
    decision = weak.report["decision"]
    assert decision["promoted"] is False
    assert decision["model_in_use"] == pytest.approx(good.report["candidate"]["test"]["log_loss"])
    assert any("worse than the best baseline" in r for r in decision["reasons"])
    assert any("worse than the model in use" in r for r in decision["reasons"])
    assert weak.report["beats_baselines"] == {"majority_class": True, "same_as_previous": False, "markov": False}
    assert weak.report["verdicts"][0].startswith("beats majority_class on log_loss: ")
    assert weak.report["verdicts"][2].startswith("does not beat markov on log_loss: ")


def test_a_model_in_use_trained_on_the_held_out_window_is_not_compared():
    ds = mood_rows()
    first = mood_candidate(ds, 3, FAST, GateSettings("log_loss", test_fraction=0.1), None, None, {})
    later = mood_candidate(ds, 3, FAST, GateSettings("log_loss", test_fraction=0.3), first.bundle, None, {})
    assert later.report["decision"]["model_in_use"] is None
    assert "inside this held-out window" in later.report["decision"]["model_in_use_note"]


def test_too_little_data_is_a_documented_skip():
    out = mood_candidate(mood_rows(n_sessions=5), 3, FAST, GateSettings("log_loss"), None, None, {"demo_data": True})
    assert out.bundle is None and out.report["status"] == "skipped"
    assert out.report["decision"]["promoted"] is False and "too little data" in out.report["skipped_reason"]
    with pytest.raises(ValueError, match="unknown gate metric"):
        GateSettings("recall")
    with pytest.raises(ValueError, match="gate compares one of"):
        mood_candidate(mood_rows(), 3, FAST, GateSettings("pr_auc"), None, None, {})


def test_a_model_in_use_built_for_another_window_or_timezone_is_not_compared():
    ds = mood_rows()
    first = mood_candidate(ds, 3, FAST, GateSettings("log_loss", test_fraction=0.3), None, None, {"timezone": "UTC"})
    assert first.bundle["metadata"]["window_size"] == 3 and first.bundle["metadata"]["timezone"] == "UTC"
    moved = mood_candidate(ds, 3, FAST, GateSettings("log_loss"), first.bundle, None, {"timezone": "Europe/Stockholm"})
    assert moved.report["decision"]["model_in_use"] is None
    assert "timezone='UTC'" in moved.report["decision"]["model_in_use_note"]
    first.bundle["metadata"]["window_size"] = 5
    wider = mood_candidate(ds, 3, FAST, GateSettings("log_loss"), first.bundle, None, {"timezone": "UTC"})
    assert "window_size=5" in wider.report["decision"]["model_in_use_note"]
    same = mood_candidate(ds, 3, FAST, GateSettings("log_loss"), {**first.bundle, "metadata": {**first.bundle["metadata"], "window_size": 3}}, None, {"timezone": "UTC"})
    assert same.report["decision"]["model_in_use"] is not None
