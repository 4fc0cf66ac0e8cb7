"""Writers never interleave, and a writer killed mid-write leaves the previous file intact."""

import os
import subprocess
import sys
import textwrap
import threading
import time

import dagster as dg
import pandas as pd
import pytest

from spotify_brain_assets.plays.schema import KEY
from spotify_brain_assets.plays.sessions import gap_rule_violations
from spotify_brain_assets.storage.paths import DataPaths

from .conftest import REPO, cli_env, demo_at, materializations, run_job


def test_two_updates_started_together_never_interleave_writes(tmp_path, data_root, instance, dagster_home):
    # a first slot gives both runs a history to merge into
    assert run_job("update", instance, data_root, demo_at("2026-11-26T09:00:00Z"), "20261126_090000").success
    # a user's instance exists before runs start; two processes creating its databases at once race
    # in Dagster's schema migration, which is not what this test is about
    with dg.DagsterInstance.from_config(str(dagster_home)) as created:
        assert created.get_runs() == []
    slots = [("2026-11-26T19:00:00Z", "20261126_190000"), ("2026-11-26T23:30:00Z", "20261126_233000")]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "spotify_brain_assets.cli", "update", "--slot", key],
            cwd=tmp_path,
            env=cli_env(data_root, dagster_home, clock),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for clock, key in slots
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    paths = DataPaths.at(data_root)
    history = pd.read_parquet(paths.history)
    files = pd.concat([pd.read_parquet(p) for p in paths.ingestion_files().values()])
    assert not history.duplicated(KEY).any()
    assert history["played_at"].is_monotonic_increasing and gap_rule_violations(history) == 0
    # every play of every slot file reached history: neither run overwrote the other's merge
    missing = files[KEY].merge(history[KEY], on=KEY, how="left", indicator=True).query("_merge == 'left_only'")
    assert missing.empty and len(history) == len(files.drop_duplicates(KEY))


def test_a_process_killed_while_writing_history_leaves_the_previous_file(tmp_path, data_root, instance):
    assert run_job("update", instance, data_root, demo_at("2026-11-26T09:00:00Z"), "20261126_090000").success
    paths = DataPaths.at(data_root)
    before = paths.history.read_bytes()
    script = textwrap.dedent(
        f"""
        import os, signal
        import pyarrow.parquet as pq
        from spotify_brain_assets.storage import files
        from spotify_brain_assets.plays.store import load_history
        from spotify_brain_assets.storage.paths import DataPaths

        def dying_write(table, where, **kw):
            with open(where, "wb") as handle:
                handle.write(b"PAR1 half a file")
                handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        pq.write_table = dying_write
        paths = DataPaths.at({str(data_root)!r})
        files.write_parquet(load_history(paths), paths.history)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    assert paths.history.read_bytes() == before
    assert len(pd.read_parquet(paths.history)) > 0


@pytest.mark.fast
def test_atomic_writes_keep_the_mode_a_plain_write_would_give(tmp_path):
    from spotify_brain_assets.storage.files import write_json

    fresh = tmp_path / "export" / "dashboard_data.json"
    write_json({"a": 1}, fresh)
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask  # readable by a web server, as open() would make it
    private = tmp_path / "private.json"
    private.write_text("{}")
    private.chmod(0o600)
    write_json({"b": 2}, private)
    assert private.stat().st_mode & 0o777 == 0o600  # an existing file keeps its mode
    assert not list(tmp_path.rglob("*.tmp"))


def killed_while(action: str, data_root, cwd) -> None:
    """Run a writer of the data root in its own process and SIGKILL it inside `action`."""
    script = textwrap.dedent(
        f"""
        import os, signal
        import pyarrow.parquet as pq
        from spotify_brain_assets.storage import files
        from spotify_brain_assets.plays.store import load_history
        from spotify_brain_assets.storage.paths import DataPaths

        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)

        paths = DataPaths.at({str(data_root)!r})
        if {action!r} == "write":  # half of the new history written to its temporary
            def dying_write(table, where, **kw):
                with open(where, "wb") as handle:
                    handle.write(b"PAR1 half a file")
                die()
            pq.write_table = dying_write
            files.write_parquet(load_history(paths), paths.history)
        else:  # the previous history linked to its temporary, not yet renamed
            files.os.replace = die
            files.keep_previous(paths.history, paths.history_previous)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr


def test_the_next_run_removes_the_temporaries_of_killed_writers_and_nothing_else(tmp_path, data_root, instance):
    assert run_job("update", instance, data_root, demo_at("2026-11-26T09:00:00Z"), "20261126_090000").success
    paths = DataPaths.at(data_root)
    killed_while("write", data_root, tmp_path)
    killed_while("keep_previous", data_root, tmp_path)
    left = sorted(data_root.rglob("*.tmp"))
    assert [p.name.split(".")[1:3] for p in left] == [["history", "parquet"], ["history", "previous"]]
    an_hour_ago = time.time() - 3600
    for path in left:
        os.utime(path, (an_hour_ago, an_hour_ago))
    # what must stay: a young temporary (its writer may be alive), files that are not our
    # temporaries, the user's imports/ folder, anything outside the data root, a symlink's target
    (paths.imports).mkdir()
    outside = tmp_path / ".history.parquet.abcdefgh.tmp"
    stay = [
        paths.ingestions / ".ingestion_20261126_093000.parquet.k2j4_x9q.tmp",
        data_root / ".notes.tmp",
        data_root / "history.parquet.abcdefgh.tmp",
        paths.imports / ".endsong_0.json.abcdefgh.tmp",
        outside,
    ]
    for path in stay:
        path.write_bytes(b"keep me")
        if path != stay[0]:
            os.utime(path, (an_hour_ago, an_hour_ago))
    link = data_root / ".plays.parquet.linkedxx.tmp"
    link.symlink_to(outside)
    os.utime(link, (an_hour_ago, an_hour_ago), follow_symlinks=False)

    result = run_job("update", instance, data_root, demo_at("2026-11-26T23:30:00Z"), "20261126_233000")
    assert result.success
    assert not any(path.exists() for path in left)
    assert all(path.read_bytes() == b"keep me" for path in stay) and link.is_symlink()
    assert materializations(result)["ingestions"]["stale_temporaries_removed"] == 2
    assert len(pd.read_parquet(paths.history)) > 0 and len(pd.read_parquet(paths.history_previous)) > 0


def test_the_writer_lock_waits_for_another_process_and_dies_with_it(tmp_path):
    from spotify_brain_assets.runtime.doctor import lock_is_free
    from spotify_brain_assets.storage.files import writer_lock

    paths = DataPaths.at(tmp_path / "data")
    hold = f"import time; from pathlib import Path; from spotify_brain_assets.storage.files import writer_lock\n" \
           f"with writer_lock(Path({str(paths.lock)!r})):\n    print('held', flush=True); time.sleep(120)"
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert not lock_is_free(paths)  # the doctor's probe sees the holder, without waiting
        acquired, released = threading.Event(), threading.Event()

        def writer():
            with writer_lock(paths.lock):
                acquired.set()
            released.set()

        threading.Thread(target=writer, daemon=True).start()
        assert not acquired.wait(0.5)  # a second writer waits...
        holder.kill()  # ...until the holder dies: a killed run leaves no lock behind
        assert acquired.wait(10) and released.wait(10)
        assert lock_is_free(paths)
    finally:
        holder.kill()
        holder.wait()


def test_the_code_location_loads_where_fcntl_does_not_exist():
    """Windows has no fcntl: nothing of ours may import it (filelock picks the platform's lock)."""
    code = "import sys; sys.modules['fcntl'] = None; import spotify_brain_assets.definitions, spotify_brain_assets.runtime.doctor"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
