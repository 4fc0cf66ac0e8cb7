"""Where a run's steps execute: in the run's own process (the default) or on Celery workers.

The choice is configuration, never code: `SPOTIFY_BRAIN_CELERY_CONFIG` names the YAML file the
workers start with (`deploy/celery.yaml`), which makes Celery the jobs' default, and any run can pick
either in its run config (`execution: config: in_process: {}` or `celery: {...}`). Without the
variable nothing changes for one listener on a laptop.

Workers read and write the data root themselves, so it must be the same directory for all of them
(the same host, or shared storage mounted at the same path). The run's own process stamps the data
root with an id it records on the run, and every step checks that id before touching a file, so a
worker that sees another directory (or none) refuses instead of writing a history of its own.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import dagster as dg
import yaml

from ..storage.paths import DATA_DIR_ENV, DataPaths, data_root_from_env
from .runs import HOST_TAG, host

CELERY_CONFIG_ENV = "SPOTIFY_BRAIN_CELERY_CONFIG"
#: the id of the data root as the run's own process saw it; steps compare it with theirs
ROOT_ID_TAG = "spotify_brain/data_root_id"


class DataRootNotShared(RuntimeError):
    """A step's process does not see the data root the run was started with."""


def root_id(paths: DataPaths) -> str:
    """The id stamped on this data root, stamping a new one when it has none.

    Created with a hard link from a complete temporary file, so two processes stamping one root at
    once agree on a single id.
    """
    paths.root.mkdir(parents=True, exist_ok=True)
    marker = paths.root_marker
    if not marker.exists():
        tmp = marker.with_name(f".{marker.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(json.dumps({"id": uuid.uuid4().hex, "stamped_by": host()}) + "\n")
        try:
            os.link(tmp, marker)
        except FileExistsError:
            pass  # another process stamped it first: its id wins
        finally:
            tmp.unlink(missing_ok=True)
    return json.loads(marker.read_text())["id"]


def check_shared_root(paths: DataPaths, run: dg.DagsterRun | None) -> None:
    """Refuse, naming the setting and this host, when `paths` is not the run's data root."""
    expected = run.tags.get(ROOT_ID_TAG) if run is not None else None
    if expected is None:
        return  # steps run where the run runs: nothing to compare
    try:
        found = json.loads(paths.root_marker.read_text())["id"]
    except FileNotFoundError:
        found = None
    except (OSError, ValueError, KeyError) as exc:
        found = f"unreadable ({exc})"
    if found == expected:
        return
    seen = f"{paths.root} has no {paths.root_marker.name}" if found is None else f"{paths.root} is another data root (id {found})"
    raise DataRootNotShared(
        f"worker host {host()} does not see the data root of run {run.run_id} (started on {run.tags.get(HOST_TAG, 'another host')}, "
        f"data root id {expected}): here {DATA_DIR_ENV}={os.environ.get(DATA_DIR_ENV) or '(unset)'} and {seen}. Workers need the "
        f"data root on shared storage mounted at the same path, with {DATA_DIR_ENV} set alike (deploy/README.md). Nothing was written."
    )


class _Stamped(dg.Executor):
    """`inner`, after recording on the run the host orchestrating it (and, for workers, the root id).

    The host lets `spotify-brain`'s dead-run reaper on that host judge the run by its process,
    also when the instance is shared (Postgres); the root id is what steps on workers check.
    """

    def __init__(self, inner: dg.Executor, stamp_root: bool):
        self._inner, self._stamp_root = inner, stamp_root

    @property
    def retries(self):
        return self._inner.retries

    @property
    def step_dependency_config(self):
        return self._inner.step_dependency_config

    def __getattr__(self, name: str):  # the Celery loop asks its executor for app_args()
        return getattr(self._inner, name)

    def execute(self, plan_context, execution_plan):
        tags = {HOST_TAG: host()}
        if self._stamp_root:
            configured = ((plan_context.run_config.get("resources") or {}).get("store") or {}).get("config") or {}
            # this process loaded the definitions from the same environment: its default is the store's
            tags[ROOT_ID_TAG] = root_id(DataPaths.at(configured.get("root") or data_root_from_env()))
        plan_context.instance.add_run_tags(plan_context.run_id, tags)
        return self._inner.execute(plan_context, execution_plan)


def _celery_executor():
    try:
        from dagster_celery import celery_executor
    except ImportError as exc:
        raise ImportError(f"Celery execution needs the deploy extra: pip install -e '.[deploy]' ({exc})") from exc
    return celery_executor


def celery_file_config(path: str | os.PathLike) -> dict:
    """The `execution: config:` block of a dagster-celery worker file: one file for both sides."""
    try:
        parsed = yaml.safe_load(Path(path).read_text()) or {}
        return dict(parsed["execution"]["config"])
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ValueError(f"{CELERY_CONFIG_ENV}={path}: not a readable dagster-celery config with `execution: config:` ({exc})") from exc


def executor_from_env() -> dg.ExecutorDefinition:
    """In-process by default; Celery when `SPOTIFY_BRAIN_CELERY_CONFIG` names the workers' file."""
    options = {"in_process": dg.in_process_executor.config_schema.as_field()}
    default: dict = {"in_process": {}}
    celery_file = os.environ.get(CELERY_CONFIG_ENV)
    try:
        options["celery"] = _celery_executor().config_schema.as_field()
    except ImportError:
        if celery_file:
            raise
    if celery_file:
        default = {"celery": celery_file_config(celery_file)}

    @dg.executor(
        name="spotify_brain",
        config_schema=dg.Field(dg.Selector(options), default_value=default),
    )
    def spotify_brain_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
        """Steps in the run's process (`in_process`), or on Celery workers sharing the data root (`celery`)."""
        (choice, config), = init_context.executor_config.items()
        if choice == "celery" and init_context.instance.is_ephemeral:
            raise dg.DagsterInvariantViolationError("Celery workers share the run's Dagster instance: set DAGSTER_HOME (deploy/README.md)")
        target = dg.in_process_executor if choice == "in_process" else _celery_executor()
        inner = target.executor_creation_fn(dg.InitExecutorContext(init_context.job, target, config, init_context.instance))
        return _Stamped(inner, stamp_root=choice == "celery")

    return spotify_brain_executor
