"""What a household costs: N demo listeners × a day of `update` slots and one `full_retrain` each.

    python -m spotify_brain_assets.benchmarks.household --listeners 5 --slots 48 --workers 1 2

compares the laptop path (SQLite instance, one `spotify-brain update --slot KEY` per slot for every
listener, steps in-process, one run at a time) with the household deployment (Postgres instance, the
daemon's run queue, steps on 1, 2, … Celery workers), all on this machine. The household is a
`listeners.yaml` of N demo listeners whose data roots start as copies of one warmed-up demo root (90
days, retrained), so every listener is the same demo person and every run does the same work.

CPU is that of every process of the deployment (the commands, daemon, code servers, run workers,
Celery workers, Postgres, Redis), from /proc and RUSAGE_CHILDREN. "Work" is the CPU the same runs
take executed one after another in one warm process (`execute_in_process`, measured with
process_time), so "Dagster overhead" is the share of CPU spent beyond that: process start-ups,
definitions loading, the queue, the daemon, Postgres, Celery. With fewer than 48 slots, updates are
scaled to 48 a day.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from . import deployment as dep

UPDATES_PER_DAY = 48
CORES = 2
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    """CPU of every process this one started: reaped ones (RUSAGE_CHILDREN) and live descendants."""
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = reaped.ru_utime + reaped.ru_stime
    parents, times = {}, {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = sum(int(f) for f in fields[11:15]) / _TICK  # utime stime cutime cstime
    me = os.getpid()
    for pid in times:
        ancestor = parents.get(pid)
        while ancestor and ancestor != me:
            ancestor = parents.get(ancestor)
        if ancestor == me:
            total += times[pid]
    return total


@dataclass(frozen=True)
class Work:
    """CPU seconds of one update and one full_retrain executed in a warm process."""

    update: float
    retrain: float


def calibrate(base: Path, template: Path, day: list[tuple[str, str]]) -> Work:
    from ..definitions import defs

    warm = base / "warm"
    shutil.copytree(template, warm)
    listener = dep.Listener("calibration", warm, seed=7)
    update, retrain = defs.resolve_job_def("update"), defs.resolve_job_def("full_retrain")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("ingestions", [key for key, _ in day])
        assert update.execute_in_process(instance=instance, partition_key=day[0][0], run_config=listener.run_config(day[0][1])).success  # warm-up
        shutil.rmtree(warm)
        shutil.copytree(template, warm)
        start = time.process_time()
        for key, clock in day:
            assert update.execute_in_process(instance=instance, partition_key=key, run_config=listener.run_config(clock)).success
        per_update = (time.process_time() - start) / len(day)
        start = time.process_time()
        assert retrain.execute_in_process(instance=instance, run_config=listener.run_config(day[-1][1])).success
        return Work(per_update, time.process_time() - start)


@dataclass
class Phase:
    runs: int
    wall: float
    cpu: float


@dataclass
class Result:
    name: str
    listeners: int
    slots: int
    updates: Phase
    retrains: Phase
    work: Work

    def cpu_per_listener_day(self) -> float:
        return (self.updates.cpu / (self.listeners * self.slots)) * UPDATES_PER_DAY + self.retrains.cpu / self.listeners

    def overhead_share(self) -> float:
        cpu = self.updates.cpu + self.retrains.cpu
        return max(0.0, 1 - (self.updates.runs * self.work.update + self.retrains.runs * self.work.retrain) / cpu)

    def row(self) -> str:
        per_day = self.cpu_per_listener_day()
        return (
            f"| {self.name} | {self.updates.runs} + {self.retrains.runs} | {self.updates.wall:.0f} + {self.retrains.wall:.0f} "
            f"| {self.updates.cpu:.0f} + {self.retrains.cpu:.0f} | {self.updates.cpu / self.updates.runs:.1f} | {per_day:.0f} "
            f"| {self.overhead_share():.0%} | {60 * self.updates.runs / self.updates.wall:.1f} | {CORES * 86400 / per_day:.0f} |"
        )


HEADER = (
    "| configuration | runs (updates + retrains) | wall s | CPU s | CPU s per update | CPU s per listener-day "
    "| Dagster overhead | updates per minute | listeners per 2 cores (CPU at 100%) |\n|---|---|---|---|---|---|---|---|---|"
)


def warm_root(target: Path, first_slot: tuple[str, str]) -> None:
    """A demo data root after its first slot (90 days of backfill) and a full_retrain: a listener's usual day."""
    from ..definitions import defs

    listener = dep.Listener("template", target, seed=7)
    key, clock = first_slot
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("ingestions", [key])
        assert defs.resolve_job_def("update").execute_in_process(instance=instance, partition_key=key, run_config=listener.run_config(clock)).success
        assert defs.resolve_job_def("full_retrain").execute_in_process(instance=instance, run_config=listener.run_config(clock)).success


def _roots(template: Path, base: Path, n: int) -> list[dep.Listener]:
    """N listeners in `base/listeners.yaml`, their roots under `base/data/listeners/`."""
    listeners = [dep.Listener(f"listener{i:02d}", base / "data" / "listeners" / f"listener{i:02d}", seed=7) for i in range(n)]
    for listener in listeners:
        shutil.copytree(template, listener.root, symlinks=True)
    (base / "listeners.yaml").write_text("listeners:\n" + "".join(f"  - {{name: {l.name}, seed: 7}}\n" for l in listeners))
    return listeners


def _household_env(base: Path) -> dict[str, str]:
    return {"SPOTIFY_BRAIN_LISTENERS": str(base / "listeners.yaml"), "SPOTIFY_BRAIN_DATA_DIR": str(base / "data")}


def laptop(base: Path, template: Path, n: int, day: list[tuple[str, str]], work: Work) -> Result:
    """SQLite + in-process: `spotify-brain update --slot` for each listener and slot, then full-retrain."""
    home = base / "home"
    home.mkdir(parents=True)
    shutil.copy(dep.REPO / "dagster.yaml", home / "dagster.yaml")
    _roots(template, base, n)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(home), SPOTIFY_BRAIN_ENV_FILE=os.devnull, **_household_env(base))

    def command(clock: str, *args: str) -> None:
        subprocess.run([dep.BIN / "spotify-brain", *args], env={**env, "SPOTIFY_BRAIN_CLOCK": clock}, cwd=base, check=True, capture_output=True)

    phases = []
    for jobs in ([("update", "--slot", key, clock) for key, clock in day], [("full-retrain", None, None, day[-1][1])]):
        cpu, wall = cpu_seconds(), time.monotonic()
        for name, flag, key, clock in jobs:  # each command runs every listener, one after another
            command(clock, name, *([flag, key] if flag else []))
        phases.append((time.monotonic() - wall, cpu_seconds() - cpu))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in instance.get_run_records())
    return Result(
        "SQLite + in-process (laptop)", n, len(day), Phase(n * len(day), *phases[0]), Phase(n, *phases[1]), work
    )


def household(base: Path, template: Path, n: int, day: list[tuple[str, str]], work: Work, workers: int, pg: dep.Postgres, redis_url: str) -> Result:
    """Postgres + the daemon's queue + `workers` Celery workers, all runs submitted at once."""
    listeners = _roots(template, base, n)
    with dep.deployment(base / "home", pg.database(f"bench_{workers}_workers"), redis_url) as deployed:
        deployed.env.update(_household_env(base))
        with dep.Submitter(deployed) as submitter:
            submitter.stop_automation()
            deployed.start_daemon()
            names = [f"w{i + 1}" for i in range(workers)]
            for name in names:
                deployed.start_worker(name)
            deployed.wait_for_workers(names)
            phases = []
            for job, runs in (
                ("update", [(lst, key, clock) for key, clock in day for lst in listeners]),
                ("full_retrain", [(lst, None, day[-1][1]) for lst in listeners]),
            ):
                cpu, wall = cpu_seconds(), time.monotonic()
                clock_of = lambda clock: {"resources": {"listening_source": {"config": {"clock": clock}}}}  # noqa: E731
                ids = [submitter.submit(f"{lst.name}__{job}", clock_of(clock), {}, key, f"{lst.name}__ingestions") for lst, key, clock in runs]
                records = dep.wait_for_runs(submitter.instance, ids, timeout=6 * 3600)
                phases.append(Phase(len(ids), time.monotonic() - wall, cpu_seconds() - cpu))
                failed = [r.dagster_run.run_id for r in records if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS]
                assert not failed, f"runs failed: {failed}"
    return Result(f"Postgres + queue + {workers} Celery worker{'s' if workers > 1 else ''}", n, len(day), *phases, work)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=5)
    parser.add_argument("--slots", type=int, default=UPDATES_PER_DAY, help="update slots per listener (48: a whole day)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--day", default="2026-05-04T00:00:00", help="UTC start of the simulated day")
    args = parser.parse_args(argv)
    missing = dep.missing_binaries()
    if missing:
        parser.error(f"needs Debian's {' and '.join(missing)}")
    os.environ["SPOTIFY_BRAIN_ENV_FILE"] = os.devnull
    first, *day = dep.slots(args.day, args.slots + 1)
    base = Path(tempfile.mkdtemp(prefix="spotify-brain-household-"))
    try:
        warm_root(base / "template", first)
        work = calibrate(base, base / "template", day)
        print(f"work in a warm process: {work.update:.2f} CPU s per update, {work.retrain:.2f} per full_retrain\n", flush=True)
        results = [laptop(base / "laptop", base / "template", args.listeners, day, work)]
        print(HEADER + "\n" + results[0].row(), flush=True)
        with dep.postgres() as pg, dep.redis() as redis_url:
            for workers in args.workers:
                results.append(household(base / f"workers{workers}", base / "template", args.listeners, day, work, workers, pg, redis_url))
                print(results[-1].row(), flush=True)
        print(f"\n{args.listeners} listeners × {args.slots} update slots + 1 full_retrain each, {os.cpu_count()} cores; "
              f"listeners per machine = {CORES} × 86,400 CPU s / CPU s per listener-day")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
