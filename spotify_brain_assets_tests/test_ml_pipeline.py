"""The ML layer through Dagster: full_retrain over demo data, the gate, update, the predecessor's data."""

import json
import shutil
import subprocess
import sys

import dagster as dg
import pandas as pd
import pytest

from spotify_brain_assets.assets.moods import mood_promotion_gate
from spotify_brain_assets.assets.reports import predictions
from spotify_brain_assets.assets.sessions import session_classifier, session_promotion_gate
from spotify_brain_assets.ml.mood_features import TARGET as MOOD_TARGET
from spotify_brain_assets.ml.mood_features import feature_columns
from spotify_brain_assets.ml.model_store import load_model, sidecar_path
from spotify_brain_assets.ml.session_features import FEATURE_COLUMNS as SESSION_FEATURES
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


def copy_of(retrained, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(retrained[0], root)
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
    assert meta["mood_dataset"]["rows"] > 1000 and meta["session_dataset"]["rows"] >= 89 * 24
    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    assert checks[("mood_dataset", "targets_are_current_clusters")].passed
    assert checks[("session_dataset", "one_row_per_hour")].passed
    for model in ("mood_classifier", "session_classifier"):
        gate = checks[(model, "promotion_gate")]
        assert gate.passed == meta[model]["promoted"]
        assert gate.description == meta[model]["decision"]


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
    assert list(mood.columns) == feature_columns(3) + ["session_id", "played_at", MOOD_TARGET]
    assert set(mood[MOOD_TARGET]) <= ids and not mood.isna().any().any()
    sessions = pd.read_parquet(paths.session_dataset)
    assert list(sessions.columns) == ["date", "hour_start"] + SESSION_FEATURES + [SESSION_TARGET]

    for name, metric in (("mood", "log_loss"), ("session", "pr_auc")):
        report = read(getattr(paths, f"{name}_evaluation"))
        assert report["status"] == "trained" and report["primary_metric"] == metric and report["demo_data"] is True
        assert set(report["candidate"]) >= {"train", "test", "trained_at", "data_hash"}
        assert pd.Timestamp(report["window"]["train"]["end"]) < pd.Timestamp(report["window"]["test"]["start"])
        assert pd.Timestamp(report["window"]["validation"]["end"]) <= pd.Timestamp(report["window"]["train"]["end"])
        assert all(isinstance(row["model_beats"], bool) for row in report["comparison"] if row["baseline_value"] is not None)
        assert report["decision"]["summary"]
        model = getattr(paths, f"{name}_classifier")
        assert model.exists() == report["decision"]["promoted"]
        assert (paths.candidates / f"{name}_classifier.pkl").exists()
    session = read(paths.session_evaluation)
    assert set(session["baselines"]) == {"always_negative", "hour_of_day_prior", "hour_of_week_prior"}
    assert set(session["candidate"]["test"]["by_time_of_day"]) == {"morning", "afternoon", "evening", "night"}
    assert list(session["candidate"]["test"]["f1_at"]) == [f"0.{i}" for i in range(1, 10)]
    assert set(read(paths.mood_evaluation)["baselines"]) == {"majority_class", "same_as_previous", "markov"}

    entries = read(paths.metrics_history)
    assert len(entries) == 1 and {"mood_model", "session_model", "drift", "num_tracks", "num_sessions"} <= set(entries[0])
    assert entries[0]["drift"]["generated_at"] == read(paths.drift_report)["generated_at"]

    drift = read(paths.drift_report)
    assert drift["windows"]["current"]["days"] == 7 and drift["windows"]["reference"]["days"] == 30
    assert len(drift["per_hour_start_frequency"]) == 24 and len(drift["feature_psi"]) == 6
    assert pd.Timestamp(drift["as_of"]) == pd.Timestamp(CLOCK)

    outlook = read(paths.predictions)
    assert outlook["demo_data"] is True and outlook["timezone"] == TIMEZONE
    mood_probs = outlook["next_mood"]["probabilities"]
    assert {p["cluster_id"] for p in mood_probs} == ids and sum(p["probability"] for p in mood_probs) == pytest.approx(1, abs=1e-4)
    hours = outlook["session_start"]["hours"]
    assert [h["hour"] for h in hours] == list(range(24)) and outlook["session_start"]["date"] == "2026-03-01"
    assert all(0 <= h["probability"] <= 1 for h in hours)
    for key, path in (("next_mood", paths.mood_classifier), ("session_start", paths.session_classifier)):
        if path.exists():
            assert outlook[key]["source"] == "model" and outlook[key]["reason"] is None
        else:  # not promoted: the baseline it lost to answers, and says why
            assert outlook[key]["source"].startswith("baseline:") and "not promoted" in outlook[key]["reason"]


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


def test_the_gate_keeps_the_model_in_use_when_the_new_one_is_worse(retrained, tmp_path, instance):
    root = copy_of(retrained, tmp_path)
    paths = DataPaths.at(root)
    assert paths.session_classifier.exists(), "the demo's session model beats its baselines"
    in_use = paths.session_classifier.read_bytes()
    weak = {"ops": {"session_classifier": {"config": {"n_estimators": 1, "max_depth": 1, "learning_rate": 0.01}}}}
    result = dg.materialize(
        [session_classifier, session_promotion_gate],
        instance=instance,
        resources={"store": store_for(root)},
        run_config=weak,
    )
    assert result.success
    assert paths.session_classifier.read_bytes() == in_use
    report = read(paths.candidates / "session_classifier.report.json")
    assert report["decision"]["promoted"] is False
    assert report["model_in_use"]["test"]["pr_auc"] > report["candidate"]["test"]["pr_auc"]
    assert any("worse than the model in use" in r for r in report["decision"]["reasons"])
    check = result.get_asset_check_evaluations()[0]
    assert check.check_name == "promotion_gate" and not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN and "the model in use stays" in check.description
    assert load_model(paths.candidates / "session_classifier.pkl", "session_classifier")["metadata"]["hyperparameters"]["n_estimators"] == 1


def test_a_tampered_model_is_refused_by_the_gate_and_predictions_fall_back(retrained, tmp_path, instance):
    root = copy_of(retrained, tmp_path)
    paths = DataPaths.at(root)
    data = bytearray(paths.session_classifier.read_bytes())
    data[100] ^= 0xFF
    paths.session_classifier.write_bytes(bytes(data))
    gate = session_promotion_gate(store=store_for(root))
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.ERROR and "checksum" in gate.description
    assert mood_promotion_gate(store=store_for(root)).severity == dg.AssetCheckSeverity.WARN
    result = dg.materialize([predictions], instance=instance, resources={"store": store_for(root), "listening_source": demo_at(CLOCK)})
    assert result.success
    outlook = read(paths.predictions)["session_start"]
    assert outlook["source"].startswith("baseline:") and "checksum" in outlook["reason"]
    assert len(outlook["hours"]) == 24


def test_predictions_do_not_feed_a_model_hours_of_another_timezone(retrained, tmp_path, instance):
    root = copy_of(retrained, tmp_path)
    paths = DataPaths.at(root)
    assert paths.session_classifier.exists()
    result = dg.materialize([predictions], instance=instance, resources={"store": store_for(root, "UTC"), "listening_source": demo_at(CLOCK)})
    assert result.success
    outlook = read(paths.predictions)["session_start"]
    assert outlook["source"].startswith("baseline:") and "trained for the timezone Europe/Stockholm" in outlook["reason"]


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
    assert read(paths.predictions)["next_mood"]["source"] == "baseline:markov"
