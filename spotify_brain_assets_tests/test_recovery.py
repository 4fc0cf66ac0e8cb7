"""Runs recover without a person: killed runs, racing runs, a fresh instance, bad arguments.

Everything here goes through the commands a user types (`spotify-brain`), in subprocesses with their
own DAGSTER_HOME and data root, and kills them for real.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from spotify_brain_assets.defs.common import WRITER_POOL
from spotify_brain_assets.defs.automation import slot_key
from spotify_brain_assets.runtime.runs import prepare_instance, slot_holders
from spotify_brain_assets.storage.paths import DataPaths

from .conftest import REPO, cli_env

SPOTIFY_BRAIN = str(Path(sys.executable).with_name("spotify-brain"))
#: every step of `update` that writes (published_dashboard, unconfigured here, ends too fast to catch)
UPDATE_STEPS = ["ingestions", "plays", "history", "predictions", "drift_report", "dashboard"]


def spotify_brain(args, env, cwd, timeout=240, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([SPOTIFY_BRAIN, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, **kw)


def instance_at(home: Path) -> dg.DagsterInstance:
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        return dg.DagsterInstance.from_config(str(home))
    finally:
        del os.environ["DAGSTER_HOME"]


@pytest.fixture(scope="module")
def first_slot(tmp_path_factory) -> Path:
    """A data root and instance after one successful update (90 days of demo backfill)."""
    base = tmp_path_factory.mktemp("first_slot")
    (base / "home").mkdir()
    shutil.copy(REPO / "dagster.yaml", base / "home" / "dagster.yaml")
    proc = spotify_brain(["update"], cli_env(base / "data", base / "home", "2026-11-26T09:00:00Z"), base)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return base


@pytest.fixture
def after_first_slot(first_slot, tmp_path) -> tuple[Path, Path]:
    shutil.copytree(first_slot / "data", tmp_path / "data")
    shutil.copytree(first_slot / "home", tmp_path / "home")
    return tmp_path / "data", tmp_path / "home"


def kill_update_in_step(data: Path, home: Path, cwd: Path, step: str) -> str:
    """Start `spotify-brain update` and SIGKILL it while `step` holds the writer slot; the slot's key."""
    instance = instance_at(home)
    for minute in (30, 40, 50):  # a short step can end before the poll sees it: try again in the next slot
        killed = subprocess.Popen(
            [SPOTIFY_BRAIN, "update", "--slot", f"20261126_09{minute}00"], env=cli_env(data, home, f"2026-11-26T09:{minute}:00Z"),
            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        while killed.poll() is None:
            if any(s.step_key == step for s in instance.event_log_storage.get_concurrency_info(WRITER_POOL).claimed_slots):
                killed.send_signal(signal.SIGKILL)
            time.sleep(0.005)
        if killed.returncode == -signal.SIGKILL:
            return f"20261126_09{minute}00"
    raise AssertionError(f"no run could be killed in step {step}")


@pytest.mark.parametrize("step", UPDATE_STEPS)
def test_a_run_killed_in_any_step_does_not_stop_the_next(after_first_slot, tmp_path, step):
    data, home = after_first_slot
    before = pd.read_parquet(DataPaths.at(data).history)
    instance = instance_at(home)
    kill_update_in_step(data, home, tmp_path, step)
    assert slot_holders(instance), "the killed run should still hold its slot"

    proc = spotify_brain(["update"], cli_env(data, home, "2026-11-26T10:00:00Z"), tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "had died without finishing: marked failed" in proc.stderr
    statuses = [r.status for r in instance.get_runs()]
    assert statuses.count(dg.DagsterRunStatus.FAILURE) == 1 and dg.DagsterRunStatus.STARTED not in statuses
    assert statuses[0] == dg.DagsterRunStatus.SUCCESS  # the newest run
    after = pd.read_parquet(DataPaths.at(data).history)
    assert before.set_index(["track_id", "played_at"]).index.isin(after.set_index(["track_id", "played_at"]).index).all()
    assert not slot_holders(instance)


def test_a_slot_whose_run_was_killed_is_not_done(after_first_slot, tmp_path):
    """Found by the soak benchmark: the same slot run again after a kill was skipped as "already done"."""
    data, home = after_first_slot
    assert kill_update_in_step(data, home, tmp_path, "ingestions") == "20261126_093000"

    proc = spotify_brain(["update"], cli_env(data, home, "2026-11-26T09:33:00Z"), tmp_path)  # the same slot
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "already done" not in proc.stdout and "had died without finishing: marked failed" in proc.stderr
    runs = instance_at(home).get_runs(dg.RunsFilter(tags={"dagster/partition": "20261126_093000"}))
    assert sorted(r.status.value for r in runs) == ["FAILURE", "SUCCESS"]
    assert "20261126_093000" in DataPaths.at(data).ingestion_files()


def test_a_live_holder_is_named_and_waited_for_a_bounded_time(after_first_slot, tmp_path):
    data, home = after_first_slot
    instance = instance_at(home)
    holder = instance.create_run_for_job(dg.GraphDefinition("held", node_defs=[]).to_job(), status=dg.DagsterRunStatus.STARTED)
    instance.report_engine_event("holding the slot", holder)  # from this test process, which is alive
    instance.event_log_storage.claim_concurrency_slot(WRITER_POOL, holder.run_id, "ingestions")
    history = DataPaths.at(data).history.read_bytes()

    proc = spotify_brain(["update", "--wait-minutes", "0.05"], cli_env(data, home, "2026-11-26T09:30:00Z"), tmp_path)
    assert proc.returncode == 75, proc.stderr[-2000:]
    assert f"held by run {holder.run_id}" in proc.stderr and "gave up after 3 s" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert DataPaths.at(data).history.read_bytes() == history
    assert "20261126_093000" not in instance.get_dynamic_partitions("ingestions")


def _prepare(home: str, start: float) -> None:
    while time.time() < start:
        time.sleep(0.001)
    instance = prepare_instance(Path(home))
    instance.add_dynamic_partitions("ingestions", [f"20260101_{os.getpid() % 1_000_000:06d}"])


def test_racing_processes_on_a_fresh_home_all_get_a_working_instance(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    start = time.time() + 4  # every process has imported Dagster by then
    code = f"from spotify_brain_assets_tests.test_recovery import _prepare; _prepare({str(home)!r}, {start})"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stderr=subprocess.PIPE, text=True) for _ in range(5)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, "\n".join(errors)[-3000:]
    assert len(instance_at(home).get_dynamic_partitions("ingestions")) == 5


def test_a_bad_slot_is_refused_before_anything_is_registered(tmp_path, data_root, dagster_home):
    proc = spotify_brain(["update", "--slot", "foo"], cli_env(data_root, dagster_home), tmp_path)
    assert proc.returncode == 2
    assert "'foo' is not a slot key YYYYMMDD_HHMMSS" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) <= 3
    assert instance_at(dagster_home).get_dynamic_partitions("ingestions") == []


def test_the_sensor_and_the_cli_agree_on_done_slots(after_first_slot, tmp_path):
    data, home = after_first_slot
    instance = instance_at(home)
    # the CLI skips the slot it already ran
    proc = spotify_brain(["update"], cli_env(data, home, "2026-11-26T09:10:00Z"), tmp_path)
    assert proc.returncode == 0 and "slot 20261126_090000 already done by run" in proc.stdout
    assert len(instance.get_runs()) == 1
    # the sensor skips a slot the CLI ran (dagster dev starting in the middle of a slot); it reads the
    # wall clock, so stay clear of a :00/:30 boundary
    now = pd.Timestamp.now(tz="UTC")
    if now.ceil("30min") - now < pd.Timedelta(seconds=90):
        time.sleep((now.ceil("30min") - now).total_seconds() + 1)
    now_key = slot_key(pd.Timestamp.now(tz="UTC"))
    proc = spotify_brain(["update", "--slot", now_key], cli_env(data, home, "2026-11-26T09:10:00Z"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from spotify_brain_assets.definitions import defs

    result = defs.resolve_sensor_def("ingestion_slot_sensor")(dg.build_sensor_context(instance=instance))
    assert not result.run_requests and "already done by run" in result.skip_reason.skip_message
    assert result.cursor == now_key


def test_dotenv_written_by_authorize_chooses_spotify_for_the_cli(tmp_path, data_root, dagster_home):
    """The package builds its definitions (and picks the source) on import: .env must be read first."""
    from spotify_brain_assets.fakes import FakeServer, make_track

    with FakeServer() as fake:
        now = pd.Timestamp.now(tz="UTC").floor("s")
        for i in range(3):
            track = make_track(name=f"Song {i}", artists=["Band"], album="Album")
            fake.add_play(track, now - pd.Timedelta(minutes=20 - 5 * i))
            fake.set_features(track["id"], valence=0.5, energy=0.5, tempo=120.0)
        (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in fake.env().items()))
        env = cli_env(data_root, dagster_home)
        del env["SPOTIFY_BRAIN_SOURCE"]
        proc = spotify_brain(["update"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    history = pd.read_parquet(DataPaths.at(data_root).history)
    assert set(history["origin"]) == {"spotify"} and len(history) == 3


def test_demo_plays_never_join_a_real_history(after_first_slot, tmp_path):
    data, home = after_first_slot
    paths = DataPaths.at(data)
    plays = pd.read_parquet(paths.plays)
    plays.assign(origin="spotify").to_parquet(paths.plays)  # as if this root held real listening
    for name in ("history.parquet", "plays_ledger.json"):
        (data / name).unlink()
    stored = paths.plays.read_bytes()

    proc = spotify_brain(["update"], cli_env(data, home, "2026-11-26T09:30:00Z"), tmp_path)
    assert proc.returncode == 1
    assert "holds real listening (origins spotify) but the listening source is the demo listener" in proc.stdout + proc.stderr
    assert "SPOTIFY_BRAIN_SOURCE=spotify" in proc.stdout + proc.stderr
    assert paths.plays.read_bytes() == stored and "20261126_093000" not in paths.ingestion_files()

    proc = spotify_brain(["update", "--allow-mixed-sources", "--slot", "20261126_100000"], cli_env(data, home, "2026-11-26T10:00:00Z"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {"spotify", "demo"} <= set(pd.read_parquet(paths.plays)["origin"])
