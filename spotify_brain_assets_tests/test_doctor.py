"""`spotify-brain doctor` and the guard against mixing demo and real plays, as pure checks."""

import os
import time

import dagster as dg
import pandas as pd
import pytest

from spotify_brain_assets.plays.schema import MixedSourcesError, check_source_kind
from spotify_brain_assets.runtime.doctor import run_doctor
from spotify_brain_assets.storage.paths import DataPaths

from .test_predecessor import adopt

pytestmark = pytest.mark.fast  # no subprocess, no browser, no Dagster run


def test_source_kind_guard():
    check_source_kind(pd.Series([], dtype="string"), "demo")
    check_source_kind(pd.Series(["demo", "demo-backfill"]), "demo")
    check_source_kind(pd.Series(["spotify", "export", "predecessor"]), "spotify")
    with pytest.raises(MixedSourcesError, match="holds real listening .origins predecessor, spotify. but the listening source is the demo"):
        check_source_kind(pd.Series(["spotify", "predecessor", "demo"]), "demo")
    with pytest.raises(MixedSourcesError, match="holds demo plays .origins demo-backfill. but the listening source is Spotify"):
        check_source_kind(pd.Series(["demo-backfill"]), "spotify")
    check_source_kind(pd.Series(["demo-backfill"]), "spotify", allow_mixed=True)


def doctor(monkeypatch, root, repair=False) -> tuple[int, str]:
    monkeypatch.setenv("SPOTIFY_BRAIN_DATA_DIR", str(root))
    monkeypatch.setenv("SPOTIFY_BRAIN_SOURCE", "demo")
    lines: list[str] = []
    with dg.instance_for_test() as instance:
        code = run_doctor(lambda: instance, repair=repair, out=lines.append)
    return code, "\n".join(lines)


def test_doctor_names_unreadable_files_mixed_sources_and_leftovers(monkeypatch, data_root):
    adopt(data_root)  # the predecessor's real plays
    paths = DataPaths.at(data_root)
    broken = next(iter(paths.ingestion_files().values()))
    broken.write_bytes(b"PAR1 not really")
    stale = data_root / ".history.parquet.x1y2z3w4.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))

    code, report = doctor(monkeypatch, data_root)
    assert code == 1
    assert f"FAIL  {broken} is not a readable parquet file" in report
    assert "the next run moves it to quarantine/" in report
    assert "holds real listening (origins predecessor) but the listening source is the demo listener" in report
    assert "1 temporary file(s) left by killed runs" in report and stale.exists()

    code, report = doctor(monkeypatch, data_root, repair=True)
    assert "removed 1 temporary file(s)" in report and not stale.exists()


def test_doctor_on_a_healthy_empty_root(monkeypatch, tmp_path):
    code, report = doctor(monkeypatch, tmp_path / "nothing")
    assert code == 0 and "does not exist yet" in report and report.endswith("all good")
