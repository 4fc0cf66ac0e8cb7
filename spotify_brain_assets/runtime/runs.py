"""Runs that died, slots they kept, and the instance they share.

A run killed by SIGKILL, the OOM killer or a power cut stays STARTED in Dagster's storage and keeps
its claim on the `spotify_brain_writer` pool slot, so every later run would wait for it forever.
The files are already safe (atomic writes, the writer lock dies with its process); what is left is
bookkeeping, done here by the CLI before it launches, by the `dead_run_sensor` while `dagster dev`
runs, and by `spotify-brain doctor`.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import dagster as dg
from dagster._core.storage.dagster_run import (  # no public aliases
    ACTIVE_RUN_STATUSES,
    FINISHED_STATUSES,
    NOT_FINISHED_STATUSES,
)

from ..defs.common import WRITER_POOL

HOST_TAG = "spotify_brain/host"
#: run statuses with a process behind them, which may have died without saying so
_LIVE_STATUSES = list(ACTIVE_RUN_STATUSES)


class SlotWaitTimeout(RuntimeError):
    """The writer slot stayed held by a live run for longer than we were willing to wait."""


def host() -> str:
    return socket.gethostname()


def run_tags() -> dict[str, str]:
    """Tags of runs this machine starts, so that only this machine judges whether they are alive."""
    return {HOST_TAG: host()}


def prepare_instance(home: Path) -> dg.DagsterInstance:
    """The instance in `home`, its storage created under a lock.

    Two processes creating a fresh SQLite instance at once race in Dagster's schema migrations and
    can break it for good ("alembic_version has more than one head"), so creation is serialized.
    """
    from filelock import FileLock

    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    with FileLock(str(home / ".spotify_brain.instance.lock")):
        instance = dg.DagsterInstance.get()
        # touch every storage so that all of them exist before the lock is released
        instance.get_runs(limit=1)
        instance.event_log_storage.get_concurrency_info(WRITER_POOL)
        instance.get_dynamic_partitions("ingestions")
        if instance.schedule_storage is not None:
            instance.all_instigator_state()
    return instance


def _local_storage(instance: dg.DagsterInstance) -> bool:
    from dagster._core.storage.runs import SqliteRunStorage

    return isinstance(instance.run_storage, SqliteRunStorage)


def _process_start(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), or None where /proc cannot tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] in ("Z", "X"):  # a zombie has exited; its parent just has not reaped it
            return float("inf")
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def process_alive(pid: int, since: float) -> bool:
    """Whether process `pid` is alive and is the one that existed at `since` (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    started = _process_start(pid)
    return started is None or started <= since + 2  # /proc's boot time has a 1 s resolution


def _run_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the process orchestrating the run: the one that started it, else the newest writer.

    Steps executed elsewhere (Celery workers, possibly on other hosts) write the newest events of a
    run in progress; their pids say nothing about the run's own process.
    """
    started = instance.event_log_storage.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_START, ascending=False, limit=1
    ).records
    if started and started[0].event_log_entry.dagster_event.pid is not None:
        return started[0].event_log_entry.dagster_event.pid
    records = instance.event_log_storage.get_records_for_run(run_id, ascending=False, limit=5).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.pid is not None:
            return event.pid
    return None


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    job_name: str
    pid: int | None


def dead_runs(instance: dg.DagsterInstance) -> list[DeadRun]:
    """Runs marked in progress whose process on this machine is gone."""
    local = _local_storage(instance)
    found = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=_LIVE_STATUSES)):
        run = record.dagster_run
        run_host = run.tags.get(HOST_TAG)
        if run_host != host() and not (run_host is None and local):
            continue  # another machine's run: its own launcher and run monitoring judge it
        pid = _run_pid(instance, run.run_id)
        if pid == os.getpid():
            continue
        since = record.start_time or record.create_timestamp.timestamp()
        if pid is None or not process_alive(pid, since):
            if pid is None and time.time() - record.create_timestamp.timestamp() < 120:
                continue  # just created, its process has not logged yet
            found.append(DeadRun(run.run_id, run.job_name, pid))
    return found


def reap(instance: dg.DagsterInstance, say: Callable[[str], None] = print) -> list[DeadRun]:
    """Mark dead runs failed and free every slot still held by a run that has ended."""
    dead = dead_runs(instance)
    for run in dead:
        record = instance.get_run_by_id(run.run_id)
        if record is not None and record.status in _LIVE_STATUSES:
            instance.report_run_failed(
                record,
                f"the process running it (pid {run.pid}) is gone (killed, out of memory or a power cut); "
                "marked failed by Spotify Brain so that its pool slot is freed",
            )
        say(f"run {run.run_id} ({run.job_name}) had died without finishing: marked failed, its slots freed")
    storage = instance.event_log_storage
    for run_id in storage.get_concurrency_run_ids():
        run = instance.get_run_by_id(run_id)
        if run is None or run.status in FINISHED_STATUSES:
            storage.free_concurrency_slots_for_run(run_id)
    return dead


def slot_holders(instance: dg.DagsterInstance, pool: str = WRITER_POOL) -> list[str]:
    """Run ids currently holding the writer pool's slots."""
    return sorted(instance.event_log_storage.get_concurrency_info(pool).active_run_ids)


def wait_for_writer_slot(
    instance: dg.DagsterInstance, timeout_seconds: float, say: Callable[[str], None] = print, poll_seconds: float = 1.0,
    pool: str = WRITER_POOL,
) -> None:
    """Return once no live run holds the writer slot; say who holds it while waiting.

    Dead holders are reaped on every poll, so a killed run never makes anyone wait. A live holder
    is waited for up to `timeout_seconds`, then `SlotWaitTimeout` names it.
    """
    deadline = time.monotonic() + timeout_seconds
    announced: set[str] = set()
    while True:
        reap(instance, say)
        holders = slot_holders(instance, pool)
        if not holders:
            return
        for run_id in set(holders) - announced:
            run = instance.get_run_by_id(run_id)
            say(
                f"waiting for the {pool} slot, held by run {run_id}"
                f" ({run.job_name if run else 'unknown job'}); giving up after {timeout_seconds:g} s"
            )
        announced.update(holders)
        if time.monotonic() >= deadline:
            raise SlotWaitTimeout(
                f"gave up after {timeout_seconds:g} s waiting for the {pool} slot held by run "
                f"{', '.join(holders)}; it is still running (see `dagster dev` or `spotify-brain doctor`). "
                "Nothing was changed; the next slot will catch up."
            )
        time.sleep(poll_seconds)


def slot_run(instance: dg.DagsterInstance, key: str, job_name: str = "update") -> dg.DagsterRun | None:
    """The `update` run (of `job_name`, a listener's) that has done (or is doing) ingestion slot `key`, if any.

    The CLI and the slot sensor both ask this, so neither repeats a slot the other ran. A run whose
    process died is doing nothing: its slot is not done.
    """
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=job_name,
            tags={"dagster/partition": key},
            statuses=[dg.DagsterRunStatus.SUCCESS, *NOT_FINISHED_STATUSES],
        ),
    )
    unfinished = any(r.dagster_run.status != dg.DagsterRunStatus.SUCCESS for r in records)
    dead = {run.run_id for run in dead_runs(instance)} if unfinished else set()
    return next((r.dagster_run for r in records if r.dagster_run.run_id not in dead), None)


class RunWatchdog:
    """Beside a run executing in this process: reaps dead slot holders and bounds waiting for a slot.

    Dagster's in-process executor waits for a pool slot in a loop that defers SIGINT and SIGTERM,
    so a run stuck behind a slot cannot be interrupted; this thread frees slots of dead runs
    (the run then proceeds) and, after `timeout_seconds` of waiting for a live one, marks the run
    failed and exits the process. Waiting steps hold neither the data lock nor a file open.
    """

    def __init__(
        self, instance: dg.DagsterInstance, run_id: str, timeout_seconds: float, say: Callable[[str], None] = print,
        poll_seconds: float = 2.0, pool: str = WRITER_POOL,
    ):
        import threading

        self.instance, self.run_id, self.timeout, self.say, self.poll, self.pool = instance, run_id, timeout_seconds, say, poll_seconds, pool
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="spotify-brain-run-watchdog", daemon=True)

    def __enter__(self) -> "RunWatchdog":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _waiting_since(self) -> float | None:
        info = self.instance.event_log_storage.get_concurrency_info(self.pool)
        mine = [s.enqueued_timestamp.timestamp() for s in info.pending_steps if s.run_id == self.run_id and s.assigned_timestamp is None]
        return min(mine) if mine else None

    def _watch(self) -> None:
        announced = False
        while not self._stop.wait(self.poll):
            try:
                reap(self.instance, self.say)
                since = self._waiting_since()
            except Exception as exc:  # the watchdog must never take the run down with it
                self.say(f"run watchdog: could not inspect the instance ({exc})")
                continue
            if since is None:
                announced = False
                continue
            holders = [h for h in slot_holders(self.instance, self.pool) if h != self.run_id]
            if not announced:
                self.say(f"waiting for the {self.pool} slot, held by run {', '.join(holders) or 'none'}; giving up after {self.timeout:g} s")
                announced = True
            if time.time() - since >= self.timeout:
                self._give_up(holders)

    def _give_up(self, holders: list[str]) -> None:
        message = (
            f"gave up after {self.timeout:g} s waiting for the {self.pool} slot held by run {', '.join(holders)}; "
            "the steps that had finished are kept, the rest will run in the next slot"
        )
        run = self.instance.get_run_by_id(self.run_id)
        if run is not None and run.status not in FINISHED_STATUSES:
            self.instance.report_run_failed(run, message)
        self.instance.event_log_storage.free_concurrency_slots_for_run(self.run_id)
        self.say(f"error: {message}")
        os._exit(75)  # EX_TEMPFAIL: the main thread is stuck in Dagster's uninterruptible wait
