"""`spotify-brain`: the few things the Dagster CLI cannot do in one command.

`update` needs its dynamic partition registered before it runs, which `dagster job execute` cannot
do; `run` is the quickstart (an update slot, then full_retrain). Runs go to the Dagster instance in
DAGSTER_HOME, so they show up in `dagster dev`.
"""

import argparse
import os
import sys
from pathlib import Path

import dagster as dg
from dotenv import load_dotenv  # installed with Dagster, which reads .env the same way in `dagster dev`

from .sources import authorize


def _instance() -> dg.DagsterInstance:
    if not os.environ.get("DAGSTER_HOME"):
        here = Path.cwd()
        if (here / "dagster.yaml").exists() and (here / "workspace.yaml").exists():
            os.environ["DAGSTER_HOME"] = str(here)  # the repository root, as the README sets it
        else:
            return dg.DagsterInstance.ephemeral()
    return dg.DagsterInstance.get()


#: the console shows INFO and above; DEBUG events stay in the run's log in the UI
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def _report(result: dg.ExecuteInProcessResult) -> bool:
    status = "succeeded" if result.success else "FAILED"
    assets = sorted({e.asset_key.to_user_string() for e in result.get_asset_materialization_events()})
    print(f"{result.job_def.name}: {status} (run {result.run_id}); materialized: {', '.join(assets) or 'nothing'}")
    return result.success


def run_update(instance: dg.DagsterInstance, slot: str | None = None) -> bool:
    from .automation import slot_key
    from .definitions import defs

    key = slot or slot_key(defs.resources["listening_source"].now())  # the demo's clock may be frozen
    instance.add_dynamic_partitions("ingestions", [key])
    job = defs.resolve_job_def("update")
    return _report(job.execute_in_process(instance=instance, partition_key=key, run_config=QUIET, raise_on_error=False))


def run_full_retrain(instance: dg.DagsterInstance) -> bool:
    from .definitions import defs

    job = defs.resolve_job_def("full_retrain")
    return _report(job.execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spotify-brain", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    update = sub.add_parser("update", help="run the `update` job for the current :00/:30 UTC slot")
    update.add_argument("--slot", help="partition key YYYYMMDD_HHMMSS (default: the current slot)")
    sub.add_parser("full-retrain", help="run the `full_retrain` job")
    sub.add_parser("run", help="an update slot, then full_retrain: the quickstart")
    authorize.register(sub)
    args = parser.parse_args(argv)
    load_dotenv(Path.cwd() / ".env", override=False)  # what `spotify-brain authorize` wrote
    if args.command == "authorize":
        return authorize.run(args)
    instance = _instance()
    if args.command == "update":
        ok = run_update(instance, args.slot)
    elif args.command == "full-retrain":
        ok = run_full_retrain(instance)
    else:
        ok = run_update(instance) and run_full_retrain(instance)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
