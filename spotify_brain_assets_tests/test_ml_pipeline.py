"""The ML layer through Dagster: full_retrain over demo data and a synthetic listener, the gate,
what serves, update, the predecessor's data."""

import json
import shutil
import subprocess
import sys

import dagster as dg
import pandas as pd
import pytest

from spotify_brain_assets.defs.moods.moods import mood_promotion_gate
from spotify_brain_assets.defs.reporting.reports import predictions
from spotify_brain_assets.defs.sessions.sessions import session_classifier, session_promotion_gate
from spotify_brain_assets.benchmarks.listeners import synthetic_listener
from spotify_brain_assets.ml.baselines import MOOD_BASELINES, SESSION_BASELINES
from spotify_brain_assets.ml.mood_features import TARGET as MOOD_TARGET
from spotify_brain_assets.ml.mood_features import feature_columns
from spotify_brain_assets.ml.model_store import load_model, previous_path, sidecar_path
from spotify_brain_assets.ml.session_features import FEATURE_COLUMNS as SESSION_FEATURES
from spotify_brain_assets.ml.session_features import KEY_COLUMNS, LEADS
from spotify_brain_assets.ml.session_features import TARGET as SESSION_TARGET
from spotify_brain_assets.plays.schema import HISTORY_COLUMNS
from spotify_brain_assets.storage.paths import DataPaths

from .conftest import FIXTURES, REPO, TIMEZONE, cli_env, demo_at, materializations, run_job, store_for

CLOCK, SLOT = "2026-03-01T12:00:00Z", "20260301_120000"
LATER_CLOCK, LATER_SLOT = "2026-03-02T08:00:00Z", "20260302_080000"


def read(path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    """One demo data root after an `update` slot and a `full_retrain` (shared, never modified)."""
    root = tmp_path_factory.mktemp("demo") / "data"
    root.mkdir()
    with dg.instance_for_test() as instance:
        assert run_job("update", instance, root, demo_at(CLOCK), SLOT).success
        result = run_job("full_retrain", instance, root, demo_at(CLOCK))
        assert result.success
        yield root, result


@pytest.fixture(scope="module")
def promoted(tmp_path_factory):
    """A data root holding 300 days of a synthetic listener with learnable habits and moods, after a
    `full_retrain` that promoted both models (shared, never modified)."""
    root = tmp_path_factory.mktemp("routine") / "data"
    (root / "ingestions").mkdir(parents=True)
    end = pd.Timestamp(CLOCK)
    synthetic_listener("routine", 300, end, TIMEZONE, seed=5).to_parquet(root / "ingestions" / f"ingestion_{SLOT}.parquet", index=False)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("ingestions", [SLOT])
        result = run_job("full_retrain", instance, root, demo_at(CLOCK))
        assert result.success
        yield root, result


def copy_of(fixture, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(fixture[0], root)
    return root


def test_full_retrain_materializes_every_ml_asset_with_demo_metadata(retrained):
    _, result = retrained
    meta = materializations(result)
    ml_assets = {
        "mood_clusters", "mood_dataset", "session_dataset", "mood_classifier", "session_classifier",
        "mood_evaluation", "session_evaluation", "drift_report", "predictions",
    }
    assert ml_assets <= set(meta)
    assert all(meta[key]["demo_data"] is True for key in ml_assets)
    assert meta["history"]["reassigned_all_moods"] is True and meta["history"]["unassigned_moods"] == 0
    assert 3 <= meta["mood_clusters"]["k"] <= 15 and meta["mood_clusters"]["method"] == "silhouette"
    assert meta["mood_dataset"]["dagster/row_count"] > 1000
    assert meta["session_dataset"]["dagster/row_count"] == LEADS * meta["session_dataset"]["prediction_times"] > 600 * LEADS
    for table in ("plays", "history", "mood_dataset", "session_dataset", "prediction_scores"):  # the catalog's columns
        assert {c.name for c in meta[table]["dagster/column_schema"].columns} and meta[table]["dagster/row_count"] >= 0
    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    assert checks[("mood_dataset", "targets_are_current_clusters")].passed
    assert checks[("session_dataset", "one_row_per_hour_ahead")].passed
    for model in ("mood_classifier", "session_classifier"):
        gate = checks[(model, "promotion_gate")]
        assert gate.passed == meta[model]["promoted"]
        assert gate.description == meta[model]["decision"]
        assert meta[model]["folds"] == 6 and isinstance(meta[model]["log_loss_difference_high"], float)


def test_full_retrain_writes_every_file_with_the_expected_schema(retrained):
    root, _ = retrained
    paths = DataPaths.at(root)
    history = pd.read_parquet(paths.history)
    assert list(history.columns) == HISTORY_COLUMNS and (history["mood_cluster_id"] >= 0).all()

    clusters = read(paths.mood_clusters)
    assert clusters["optimal_k"] == len(clusters["clusters"]) and clusters["demo_data"] is True
    ids = {c["cluster_id"] for c in clusters["clusters"]}
    assert set(history["mood_cluster_id"]) <= ids
    assert {"fitted_at", "num_plays", "selection", "id_matching"} <= set(clusters)
    assert clusters["num_plays"] == len(history)

    mood = pd.read_parquet(paths.mood_dataset)
    assert list(mood.columns) == feature_columns(3, ids) + ["session_id", "played_at", MOOD_TARGET]
    assert set(mood[MOOD_TARGET]) <= ids and not mood.isna().any().any()
    sessions = pd.read_parquet(paths.session_dataset)
    assert list(sessions.columns) == KEY_COLUMNS + ["date"] + SESSION_FEATURES + [SESSION_TARGET]

    for name, baselines, deciding in (("mood", MOOD_BASELINES, ["log_loss"]), ("session", SESSION_BASELINES, ["log_loss", "brier"])):
        report = read(getattr(paths, f"{name}_evaluation"))
        assert report["status"] == "trained" and report["primary_metric"] == "log_loss" and report["demo_data"] is True
        assert report["deciding_metrics"] == deciding and set(report["baselines"]) == set(baselines)
        assert len(report["folds"]) == 6 and report["backtest"]["cuts"] == [f["cut"] for f in report["folds"]]
        for fold in report["folds"]:
            assert pd.Timestamp(fold["train_until"]) <= pd.Timestamp(fold["cut"]) < pd.Timestamp(fold["test_end"])
        interval = report["candidate"]["test"]["interval"]["log_loss"]
        assert interval["low"] <= interval["mean"] <= interval["high"]
        assert report["summary"] == report["decision"]["summary"] and report["summary"].endswith(".")
        assert report["reliability"][report["candidate"]["name"]]
        assert all(isinstance(row["model_beats"], bool) for row in report["comparison"] if row["baseline_value"] is not None)
        model = getattr(paths, f"{name}_classifier")
        assert model.exists() == (report["served"]["kind"] == "model")
        assert (paths.candidates / f"{name}_classifier.pkl").exists()
        if not report["decision"]["promoted"]:  # nothing in use yet: a baseline serves, and the sentence says so simply
            assert report["served"]["kind"] == "baseline" and "in use" not in report["summary"]
    assert {"xgboost", "logistic"} == set(read(paths.session_evaluation)["recipes"])
    assert [b["hours_ahead"] for b in read(paths.session_evaluation)["by_lead"][::2]] == ["0-1", "1-2", "2-6", "6-24"]

    entries = read(paths.metrics_history)
    assert len(entries) == 1 and {"mood_model", "session_model", "drift", "num_tracks", "num_sessions"} <= set(entries[0])
    assert entries[0]["drift"]["generated_at"] == read(paths.drift_report)["generated_at"]

    drift = read(paths.drift_report)
    assert drift["windows"]["current"]["days"] == 7 and drift["windows"]["reference"]["days"] == 30
    assert pd.Timestamp(drift["as_of"]) == pd.Timestamp(CLOCK)

    outlook = read(paths.predictions)
    assert outlook["demo_data"] is True and outlook["timezone"] == TIMEZONE and pd.Timestamp(outlook["made_at"]) == pd.Timestamp(CLOCK)
    nxt = outlook["next_mood"]
    assert {p["cluster_id"] for p in nxt["probabilities"]} == ids and sum(p["probability"] for p in nxt["probabilities"]) == pytest.approx(1, abs=1e-4)
    assert {int(k) for k in nxt["distribution"]} == ids and nxt["conditioned_on"]["played_at"] == history["played_at"].max().isoformat()
    assert nxt["conditioned_on"]["track_id"] == history.sort_values("played_at")["track_id"].iloc[-1]
    hours = outlook["session_start"]["hours"]
    starts = pd.to_datetime([h["hour_start"] for h in hours])
    assert len(hours) == 24 and starts[0] >= pd.Timestamp(CLOCK) and (starts.to_series().diff().dropna() == pd.Timedelta(hours=1)).all()
    assert all(0 <= h["probability"] <= 1 for h in hours) and [h["lead_hours"] for h in hours] == list(range(24))
    for key, kind in (("next_mood", "mood"), ("session_start", "session")):
        served, report = outlook[key]["served"], read(getattr(paths, f"{kind}_evaluation"))
        assert served["kind"] == report["served"]["kind"] and served["name"] == report["served"]["name"]
        if served["kind"] == "baseline":  # it says which simple rule answers, and why
            assert outlook[key]["source"] == f"baseline:{served['name']}" and outlook[key]["reason"] == report["summary"]


def test_select_mood_classifier_through_the_dagster_cli_after_a_full_retrain(retrained, tmp_path, dagster_home):
    root = copy_of(retrained, tmp_path)
    paths = DataPaths.at(root)
    before = read(paths.candidates / "mood_classifier.report.json")
    env = cli_env(root, dagster_home)
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "spotify_brain_assets", "--select", "mood_classifier"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = read(paths.candidates / "mood_classifier.report.json")
    assert after["candidate"]["trained_at"] > before["candidate"]["trained_at"]
    assert after["candidate"]["data_hash"] == before["candidate"]["data_hash"]  # same data, same training rows
    assert after["candidate"]["test"] == before["candidate"]["test"]  # deterministic


def test_a_listener_with_learnable_habits_gets_both_models_promoted_and_served(promoted):
    root, result = promoted
    paths = DataPaths.at(root)
    meta = materializations(result)
    outlook = read(paths.predictions)
    for name, key in (("mood", "next_mood"), ("session", "session_start")):
        report = read(getattr(paths, f"{name}_evaluation"))
        assert report["decision"]["promoted"] is True and meta[f"{name}_classifier"]["promoted"] is True, report["summary"]
        assert report["summary"].startswith(f"Over 6 past periods, the new {'mood' if name == 'mood' else 'listening-times'} model predicted")
        vs_best = [a for a in report["evidence"] if a["role"] == "candidate_vs_baseline" and a["best"]]
        assert vs_best and all(a["high"] < 0 for a in vs_best)
        bundle = load_model(getattr(paths, f"{name}_classifier"), f"{name}_classifier")
        assert bundle["metadata"]["train_rows"] == report["candidate"]["train_rows"] > max(f["train_rows"] for f in report["folds"])
        served = outlook[key]["served"]
        assert served == {"kind": "model", "name": report["candidate"]["name"], "version": read(sidecar_path(getattr(paths, f"{name}_classifier")))["sha256"][:12]}
        assert outlook[key]["source"] == "model" and outlook[key]["reason"] is None
    assert outlook["session_start"]["inactive"] is False


def test_the_gate_keeps_the_model_in_use_when_the_new_one_is_worse(promoted, tmp_path, instance):
    root = copy_of(promoted, tmp_path)
    paths = DataPaths.at(root)
    in_use = paths.session_classifier.read_bytes()
    weak = {"ops": {"session_classifier": {"config": {"families": ["xgboost"], "n_estimators": 1, "max_depth": 1, "learning_rate": 0.01}}}}
    result = dg.materialize([session_classifier.solo, session_promotion_gate.solo], instance=instance, resources={"store": store_for(root)}, run_config=weak)
    assert result.success
    assert paths.session_classifier.read_bytes() == in_use
    report = read(paths.candidates / "session_classifier.report.json")
    assert report["decision"]["promoted"] is False and report["served"]["kind"] == "model" and report["served"]["name"] == "model in use"
    assert report["model_in_use"]["compared"] and report["model_in_use"]["test"]["log_loss"] < report["candidate"]["test"]["log_loss"]
    check = result.get_asset_check_evaluations()[0]
    assert check.check_name == "promotion_gate" and not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "already in use" in check.description and "keeps making the predictions" in check.description
    assert load_model(paths.candidates / "session_classifier.pkl", "session_classifier")["metadata"]["recipe"]["n_estimators"] == 1


def test_a_model_in_use_without_clear_evidence_is_retired_and_a_baseline_serves(promoted, tmp_path, instance):
    root = copy_of(promoted, tmp_path)
    paths = DataPaths.at(root)
    in_use = paths.session_classifier.read_bytes()
    doubtful = {"ops": {"session_classifier": {"config": {"folds": 1, "backtest_span": 0.01}}}}  # three days of test: no evidence
    assert dg.materialize([session_classifier.solo], instance=instance, resources={"store": store_for(root)}, run_config=doubtful).success
    report = read(paths.candidates / "session_classifier.report.json")
    assert report["served"]["kind"] == "baseline" and report["decision"]["retired_model_in_use"] is True
    assert "instead of the previous model" in report["summary"]
    assert not paths.session_classifier.exists() and previous_path(paths.session_classifier).read_bytes() == in_use
    assert dg.materialize([predictions.solo], instance=instance, resources={"store": store_for(root), "listening_source": demo_at(CLOCK)}).success
    outlook = read(paths.predictions)["session_start"]
    assert outlook["served"] == {"kind": "baseline", "name": report["served"]["name"], "version": None}
    assert outlook["reason"] == report["summary"] and len(outlook["hours"]) == 24


def test_a_tampered_model_is_refused_by_the_gate_and_predictions_fall_back(promoted, tmp_path, instance):
    root = copy_of(promoted, tmp_path)
    paths = DataPaths.at(root)
    data = bytearray(paths.session_classifier.read_bytes())
    data[100] ^= 0xFF
    paths.session_classifier.write_bytes(bytes(data))
    gate = session_promotion_gate(store=store_for(root))
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.ERROR and "checksum" in gate.description
    assert mood_promotion_gate(store=store_for(root)).passed
    result = dg.materialize([predictions.solo], instance=instance, resources={"store": store_for(root), "listening_source": demo_at(CLOCK)})
    assert result.success
    outlook = read(paths.predictions)["session_start"]
    assert outlook["source"].startswith("baseline:") and "checksum" in outlook["reason"]
    assert len(outlook["hours"]) == 24


def test_predictions_do_not_feed_a_model_hours_of_another_timezone(promoted, tmp_path, instance):
    root = copy_of(promoted, tmp_path)
    paths = DataPaths.at(root)
    result = dg.materialize([predictions.solo], instance=instance, resources={"store": store_for(root, "UTC"), "listening_source": demo_at(CLOCK)})
    assert result.success
    outlook = read(paths.predictions)["session_start"]
    assert outlook["source"].startswith("baseline:") and "trained for the timezone Europe/Stockholm" in outlook["reason"]


def test_a_listener_silent_for_a_month_is_said_to_be_inactive(promoted, tmp_path, instance):
    root = copy_of(promoted, tmp_path)
    paths = DataPaths.at(root)
    later = (pd.read_parquet(paths.history)["played_at"].max() + pd.Timedelta(days=30)).isoformat()
    assert dg.materialize([predictions.solo], instance=instance, resources={"store": store_for(root), "listening_source": demo_at(later)}).success
    outlook = read(paths.predictions)["session_start"]
    assert outlook["inactive"] is True and outlook["reason"].startswith("No plays for 30 days")
    assert outlook["served"] == {"kind": "baseline", "name": "hour_of_week", "version": None}  # not the model in use
    assert max(h["probability"] for h in outlook["hours"]) < 0.25 and pd.Timestamp(outlook["made_at"]) == pd.Timestamp(later)


def test_update_assigns_new_plays_to_the_existing_clusters_and_refreshes_the_outlook(retrained, tmp_path, instance):
    root = copy_of(retrained, tmp_path)
    paths = DataPaths.at(root)
    clusters = paths.mood_clusters.read_bytes()
    before = pd.read_parquet(paths.history)
    result = run_job("update", instance, root, demo_at(LATER_CLOCK), LATER_SLOT)
    assert result.success
    meta = materializations(result)
    assert {"predictions", "drift_report"} <= set(meta) and "mood_clusters" not in meta
    assert paths.mood_clusters.read_bytes() == clusters  # no refit
    after = pd.read_parquet(paths.history)
    assert len(after) > len(before) and (after["mood_cluster_id"] >= 0).all()
    kept = after.merge(before, on=["track_id", "played_at"], suffixes=("", "_before"))
    assert (kept["mood_cluster_id"] == kept["mood_cluster_id_before"]).all()
    assert meta["history"]["reassigned_all_moods"] is False
    assert pd.Timestamp(read(paths.predictions)["as_of"]) == pd.Timestamp(LATER_CLOCK)
    assert len(read(paths.metrics_history)) == 1  # update runs evaluate nothing


def test_the_predecessors_data_directory_runs_through_full_retrain(tmp_path, instance):
    source = FIXTURES / "predecessor-2026-01-12"
    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(source / "data" / "history.parquet", root / "history.parquet")
    shutil.copytree(source / "data" / "ingestions", root / "ingestions")
    (root / "models").mkdir()
    shutil.copy(source / "models" / "mood_clusters.json", root / "models" / "mood_clusters.json")
    old_clusters = read(root / "models" / "mood_clusters.json")
    result = run_job("full_retrain", instance, root, demo_at("2026-01-12T12:00:00Z"))
    assert result.success
    paths = DataPaths.at(root)
    clusters = read(paths.mood_clusters)
    assert clusters["demo_data"] is False and clusters["origins"] == ["predecessor"]
    # the predecessor's moods keep their ids: matched centroids, not renumbered ones
    assert clusters["id_matching"]["previous_k"] == old_clusters["optimal_k"]
    for match in clusters["id_matching"]["matched"]:
        old = next(c for c in old_clusters["clusters"] if c["cluster_id"] == match["cluster_id"])
        new = next(c for c in clusters["clusters"] if c["cluster_id"] == match["cluster_id"])
        assert old["label"].split(" (")[0] == new["label"].split(" (")[0]
    history = pd.read_parquet(paths.history)
    assert len(history) == 260 and (history["mood_cluster_id"] >= 0).all()
    for name in ("mood", "session"):
        report = read(getattr(paths, f"{name}_evaluation"))
        assert report["status"] in ("trained", "skipped") and report["decision"]["summary"]
        assert report["demo_data"] is False
    outlook = read(paths.predictions)
    assert outlook["next_mood"]["available"] and outlook["session_start"]["available"]
    assert sidecar_path(paths.candidates / "session_classifier.pkl").exists() or read(paths.session_evaluation)["status"] == "skipped"


def test_a_tiny_history_skips_training_with_a_reason_instead_of_failing(tmp_path, instance):
    source = FIXTURES / "predecessor-2026-01-12" / "data" / "history.parquet"
    root = tmp_path / "data"
    root.mkdir()
    pd.read_parquet(source).head(40).to_parquet(root / "history.parquet")
    result = run_job("full_retrain", instance, root, demo_at("2026-01-12T12:00:00Z"))
    assert result.success
    meta = materializations(result)
    paths = DataPaths.at(root)
    for name in ("mood", "session"):
        report = read(getattr(paths, f"{name}_evaluation"))
        assert report["status"] == "skipped" and "too little data" in report["skipped_reason"]
        assert meta[f"{name}_classifier"]["promoted"] is False
    outlook = read(paths.predictions)
    assert outlook["next_mood"]["source"] == "baseline:markov_1" and outlook["session_start"]["served"]["name"] == "hour_of_week"
    assert "not enough listening history yet" in outlook["next_mood"]["reason"] and "in use" not in outlook["next_mood"]["reason"]
