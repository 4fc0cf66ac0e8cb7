"""`spotify-brain`: the few things the Dagster CLI cannot do in one command.

`update` needs its dynamic partition registered before it runs, which `dagster job execute` cannot
do; `run` is the quickstart (an update slot, then full_retrain); `doctor` checks everything a run
depends on. Runs go to the Dagster instance in DAGSTER_HOME, so they show up in `dagster dev`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import uuid
from datetime import datetime
from pathlib import Path

import dagster as dg

from .defs.automation import HOUSEHOLD_JOB
from .defs.factory import Listener, household, several
from .runtime.env import load_env_file
from .runtime.runs import RunWatchdog, SlotWaitTimeout, prepare_instance, run_tags, slot_run, wait_for_writer_slot
from .sources import authorize
from .storage.paths import INGESTION_KEY_RE

#: the console shows INFO and above; DEBUG events stay in the run's log in the UI
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
DEFAULT_WAIT_MINUTES = 10.0


def _say(message: str) -> None:
    print(f"spotify-brain: {message}", file=sys.stderr, flush=True)


def _instance() -> dg.DagsterInstance:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        here = Path.cwd()
        if not ((here / "dagster.yaml").exists() and (here / "workspace.yaml").exists()):
            return dg.DagsterInstance.ephemeral()
        home = str(here)  # the repository root, as the README sets it
    return prepare_instance(Path(home))


def _slot(value: str) -> str:
    """An ingestion partition key, validated before anything is registered."""
    try:
        if INGESTION_KEY_RE.match(value):
            datetime.strptime(value, "%Y%m%d_%H%M%S")
            return value
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{value!r} is not a slot key YYYYMMDD_HHMMSS in UTC (e.g. 20261130_093000)")


def _report(result: dg.ExecuteInProcessResult) -> bool:
    status = "succeeded" if result.success else "FAILED"
    assets = sorted({e.asset_key.to_user_string() for e in result.get_asset_materialization_events()})
    print(f"{result.job_def.name}: {status} (run {result.run_id}); materialized: {', '.join(assets) or 'nothing'}")
    return result.success


def listeners(name: str | None = None) -> list[Listener]:
    """The listeners a command acts on: all of listeners.yaml (or the one listener), or the one named."""
    every = household()
    if name is None:
        return every
    if not several(every):
        raise ValueError(f"--listener {name}: there is no listeners.yaml, so there is one listener (README, 'Several listeners')")
    chosen = [listener for listener in every if listener.name == name]
    if not chosen:
        raise ValueError(f"--listener {name}: not in listeners.yaml (listeners: {', '.join(str(l.name) for l in every)})")
    return chosen


def _execute(
    instance: dg.DagsterInstance, job_name: str, wait_minutes: float, partition_key: str | None = None,
    run_config: dict | None = None, resources: dict | None = None, listener: Listener = Listener(),
) -> bool:
    """Execute a job here, after dead runs are reaped and the listener's writer slot is free (or given up on).

    `resources` replaces the definitions' (the soak benchmark points the source at its fake server).
    """
    from .definitions import defs

    wait = wait_minutes * 60
    if not instance.is_ephemeral:
        wait_for_writer_slot(instance, wait, _say, pool=listener.pool)
    if partition_key:
        instance.add_dynamic_partitions(listener.partitions.name, [partition_key])
    run_id = str(uuid.uuid4())  # known before the run starts, for the watchdog
    job = defs.resolve_job_def(job_name)
    watchdog = contextlib.nullcontext() if instance.is_ephemeral else RunWatchdog(instance, run_id, wait, _say, pool=listener.pool)
    with watchdog:
        result = job.execute_in_process(
            instance=instance, partition_key=partition_key, run_config={**QUIET, **(run_config or {})}, run_id=run_id, tags=run_tags(),
            resources=resources, raise_on_error=False,
        )
    return _report(result)


def run_update(
    instance: dg.DagsterInstance, slot: str | None = None, wait_minutes: float = DEFAULT_WAIT_MINUTES,
    allow_mixed_sources: bool = False, resources: dict | None = None, listener: Listener = Listener(),
) -> bool:
    from .defs.automation import slot_key
    from .definitions import defs

    key = slot
    if slot is None:
        with defs.resources["listening_source"].process_config_and_initialize_cm() as source:  # its dg.EnvVar resolved
            key = slot_key(source.now())  # the source's clock may be frozen
        done = slot_run(instance, key, listener.job("update"))
        if done is not None:  # the slot sensor asks the same question, so neither repeats the other
            print(f"{listener.job('update')}: slot {key} already done by run {done.run_id} ({done.status.value}); nothing to do")
            return True
    op = listener.key("ingestions").to_python_identifier()
    config = {"ops": {op: {"config": {"allow_mixed_sources": True}}}} if allow_mixed_sources else None
    return _execute(instance, listener.job("update"), wait_minutes, partition_key=key, run_config=config, resources=resources, listener=listener)


def run_full_retrain(
    instance: dg.DagsterInstance, wait_minutes: float = DEFAULT_WAIT_MINUTES, resources: dict | None = None, listener: Listener = Listener()
) -> bool:
    return _execute(instance, listener.job("full_retrain"), wait_minutes, resources=resources, listener=listener)


def run_household(instance: dg.DagsterInstance) -> bool:
    """The household page, from what the listeners' runs stored (it writes no listener's data)."""
    return _execute(instance, HOUSEHOLD_JOB, 0)


def main(argv: list[str] | None = None) -> int:
    load_env_file()  # what `spotify-brain authorize` wrote (importing the package already did, for the definitions)
    parser = argparse.ArgumentParser(prog="spotify-brain", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    wait = argparse.ArgumentParser(add_help=False)
    wait.add_argument(
        "--wait-minutes", type=float, default=DEFAULT_WAIT_MINUTES,
        help=f"how long to wait for another live run holding the writer slot (default {DEFAULT_WAIT_MINUTES:g})",
    )
    update = sub.add_parser("update", parents=[wait], help="run the `update` job for the current :00/:30 UTC slot")
    update.add_argument("--slot", type=_slot, help="partition key YYYYMMDD_HHMMSS (default: the current slot, skipped when done)")
    update.add_argument("--allow-mixed-sources", action="store_true", help="let demo and real plays share one data root")
    retrain = sub.add_parser("full-retrain", parents=[wait], help="run the `full_retrain` job")
    run = sub.add_parser("run", parents=[wait], help="an update slot, then full_retrain: the quickstart")
    for command in (update, retrain, run):
        command.add_argument("--listener", help="one listener of listeners.yaml (default: every listener)")
    doctor = sub.add_parser("doctor", help="check the data root, the Dagster instance and the credentials")
    doctor.add_argument("--repair", action="store_true", help="also fix what is safe to fix: dead runs, their slots, stale temporaries")
    authorize.register(sub)
    args = parser.parse_args(argv)
    if args.command == "authorize":
        return authorize.run(args)
    if args.command == "doctor":
        from .runtime.doctor import run_doctor

        return run_doctor(_instance, repair=args.repair)
    try:
        chosen = listeners(args.listener)
    except ValueError as exc:  # listeners.yaml wrong, or no such listener
        _say(f"error: {exc}")
        return 2
    instance = _instance()
    results, waited_out = [], False
    for listener in chosen:  # one listener's failure (or held slot) does not keep the others from their slot
        try:
            if args.command == "update":
                results.append(run_update(instance, args.slot, args.wait_minutes, args.allow_mixed_sources, listener=listener))
            elif args.command == "full-retrain":
                results.append(run_full_retrain(instance, args.wait_minutes, listener=listener))
            else:
                results.append(run_update(instance, wait_minutes=args.wait_minutes, listener=listener) and run_full_retrain(instance, args.wait_minutes, listener=listener))
        except SlotWaitTimeout as exc:
            _say(f"error: {exc}")
            waited_out = True
    if several(chosen):
        results.append(run_household(instance))
    return 75 if waited_out else 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
