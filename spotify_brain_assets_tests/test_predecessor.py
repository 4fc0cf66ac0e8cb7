"""A predecessor's data directory placed in an empty data root is adopted without losing a play."""

import shutil

import pandas as pd

from spotify_brain_assets.plays.schema import KEY
from spotify_brain_assets.storage.paths import DataPaths

from .conftest import FIXTURES, demo_at, materializations, run_job

PREDECESSOR = FIXTURES / "predecessor-2026-01-12"


def adopt(data_root):
    shutil.copy(PREDECESSOR / "data" / "history.parquet", data_root / "history.parquet")
    shutil.copytree(PREDECESSOR / "data" / "ingestions", data_root / "ingestions")
    return pd.read_parquet(data_root / "history.parquet")


def test_adopting_keeps_all_260_plays_in_43_sessions_and_registers_partitions(instance, data_root):
    original = adopt(data_root)
    result = run_job("full_retrain", instance, data_root, demo_at("2026-01-12T12:00:00Z"))
    assert result.success
    history = pd.read_parquet(DataPaths.at(data_root).history)
    assert len(history) == 260 and history["session_id"].nunique() == 43
    assert history["session_id"].tolist() == original["session_id"].tolist()
    assert (history["track_id"].to_numpy() == original["track_id"].to_numpy()).all()
    assert (history["played_at"] == original["played_at"]).all()
    assert (history["origin"] == "predecessor").all() and history["duration_ms"].isna().all()  # lengths unknown
    meta = materializations(result)["plays"]
    assert meta["adopted_predecessor_history"] is True and meta["partitions_registered"] == 59
    assert meta["files_merged"] == 59 and meta["added"] == 0  # its files hold nothing history lacks
    assert len(instance.get_dynamic_partitions("ingestions")) == 59
    assert all(c.passed for c in result.get_asset_check_evaluations() if c.asset_key.to_user_string() == "history")


def test_an_update_after_adoption_adds_plays_and_keeps_the_old_session_ids(instance, data_root):
    original = adopt(data_root)
    # the demo listener stands in for the predecessor's listener: real and demo plays mix on purpose
    mixed = {"ops": {"ingestions": {"config": {"allow_mixed_sources": True}}}}
    result = run_job("update", instance, data_root, demo_at("2026-01-12T12:00:00Z"), "20260112_120000", run_config=mixed)
    assert result.success
    history = pd.read_parquet(DataPaths.at(data_root).history)
    assert len(history) > 260
    kept = history.merge(original[KEY + ["session_id"]], on=KEY, suffixes=("", "_old"))
    assert len(kept) == 260 and (kept["session_id"] == kept["session_id_old"]).all()
    assert (history["session_id"].diff().dropna() >= 0).all()
