"""The commands users type, in subprocesses with their own DAGSTER_HOME and data root."""

import subprocess
import sys
from pathlib import Path

import pandas as pd

from spotify_brain_assets.storage.paths import DataPaths

from .conftest import cli_env
from .test_predecessor import adopt

DAGSTER = str(Path(sys.executable).with_name("dagster"))


def test_dagster_asset_materialize_history_on_an_adopted_root(tmp_path, data_root, dagster_home):
    adopt(data_root)
    proc = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "spotify_brain_assets", "--select", "plays,history"],
        cwd=tmp_path,
        env=cli_env(data_root, dagster_home, "2026-01-12T12:00:00Z"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    history = pd.read_parquet(DataPaths.at(data_root).history)
    assert len(history) == 260 and history["session_id"].nunique() == 43
    assert "RUN_SUCCESS" in proc.stderr + proc.stdout


def test_spotify_brain_run_is_the_quickstart(tmp_path, data_root, dagster_home):
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("spotify-brain")), "run"],
        cwd=tmp_path,
        env=cli_env(data_root, dagster_home, "2026-11-26T09:00:00Z"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    paths = DataPaths.at(data_root)
    assert list(paths.ingestion_files()) == ["20261126_090000"]
    assert len(pd.read_parquet(paths.history)) > 1500
    # both runs were recorded in the instance, so `dagster dev` shows them
    assert len(list((dagster_home / "history" / "runs").glob("*.db"))) >= 2 or (dagster_home / "history" / "runs.db").exists()
