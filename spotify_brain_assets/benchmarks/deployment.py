"""A throwaway household deployment on this machine, for the deployment tests and the benchmark.

Debian's PostgreSQL (a fresh cluster in a temporary folder, on a free port, password auth) and Redis,
the Dagster daemon running the run queue with `deploy/dagster.postgres.yaml`, and Celery workers
started as a household would start them (`dagster-celery worker start -y deploy/celery.yaml`). Every
process is a child of the caller, so its CPU time is counted in the caller's RUSAGE_CHILDREN once it
has stopped.

Until `listeners.yaml` exists, N listeners are emulated on the single-listener graph as N data roots
(run config of the `store` resource), N demo seeds and N `spotify_brain/listener` tags.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import dagster as dg
import yaml

from ..defs.common import WRITER_POOL, WRITER_RUN_TAGS
from ..defs.automation import slot_key

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
LISTENER_TAG = "spotify_brain/listener"
WRITES_TAG = next(iter(WRITER_RUN_TAGS))
BIN = Path(sys.executable).parent


def postgres_bin() -> Path | None:
    """Debian's newest installed PostgreSQL server binaries."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def missing_binaries() -> list[str]:
    """What this machine lacks to run the deployment (Debian package names)."""
    return (["postgresql"] if postgres_bin() is None else []) + (["redis-server"] if shutil.which("redis-server") is None else [])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, what: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before listening on port {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not listen on port {port} within {timeout:g} s")


def _stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
    """Signal a child's process group and reap it (so its CPU time is counted)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass(frozen=True)
class Postgres:
    """A running cluster: `database(name)` creates a database and returns its DAGSTER_PG_* variables."""

    pg_bin: Path
    socket_dir: Path
    port: int
    password: str
    owner: str | None

    def database(self, name: str) -> dict[str, str]:
        subprocess.run(
            [self.pg_bin / "createdb", "-h", str(self.socket_dir), "-p", str(self.port), "-U", "dagster", name],
            check=True, capture_output=True, **({"user": self.owner} if self.owner else {}),
        )
        return {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": "dagster",
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": name,
        }


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    """A fresh PostgreSQL cluster on a free port of 127.0.0.1, password auth over TCP.

    initdb refuses root, so as root (CI) the cluster belongs to the `postgres` user Debian's package
    creates, or to `nobody`; its folder is made outside pytest's private temporary tree for that.
    """
    pg_bin = postgres_bin()
    if pg_bin is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
    owner = None
    if os.geteuid() == 0:
        owner = next(name for name in ("postgres", "nobody") if _user_exists(name))
    folder = Path(tempfile.mkdtemp(prefix="spotify-brain-pg-"))
    folder.chmod(0o755)
    password = secrets.token_hex(16)
    (folder / "pwfile").write_text(password + "\n")
    if owner:
        shutil.chown(folder, owner)
        shutil.chown(folder / "pwfile", owner)
    as_owner = {"user": owner} if owner else {}
    port = free_port()
    process = None
    try:
        subprocess.run(
            [pg_bin / "initdb", "-D", folder / "data", "-U", "dagster", f"--pwfile={folder / 'pwfile'}",
             "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, **as_owner,
        )
        process = subprocess.Popen(
            [pg_bin / "postgres", "-D", folder / "data", "-p", str(port), "-k", str(folder),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=300"],
            stdout=subprocess.DEVNULL, stderr=open(folder / "postgres.log", "wb"), start_new_session=True, **as_owner,
        )
        _wait_for_port(port, "postgres", process)
        for _ in range(100):  # the port opens a moment before connections are accepted
            if subprocess.run([pg_bin / "pg_isready", "-h", "127.0.0.1", "-p", str(port)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        yield Postgres(pg_bin, folder, port, password, owner)
    finally:
        if process is not None:
            _stop(process, signal.SIGINT)  # postgres' fast shutdown
        shutil.rmtree(folder, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@contextlib.contextmanager
def redis() -> Iterator[str]:
    """A Redis on a free port of 127.0.0.1, nothing persisted; yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        _wait_for_port(port, "redis-server", process)
        yield f"redis://127.0.0.1:{port}"
    finally:
        _stop(process)


@dataclass
class Deployment:
    """DAGSTER_HOME with the Postgres instance, the environment of every process, and the processes."""

    home: Path
    env: dict[str, str]
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)
    daemon: subprocess.Popen | None = None

    def instance(self) -> dg.DagsterInstance:
        with _environ(self.env):
            return dg.DagsterInstance.get()

    def start_daemon(self) -> None:
        """The daemon: the run queue, run monitoring, and the sensors left on (the dead-run sensor)."""
        self.daemon = subprocess.Popen(
            [BIN / "dagster-daemon", "run", "-w", str(REPO / "workspace.yaml")],
            cwd=self.home, env=self.env, stdout=open(self.home / "daemon.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def start_worker(self, name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """A Celery worker taking one step at a time, named `name@host`."""
        worker = subprocess.Popen(
            [BIN / "dagster-celery", "worker", "start", "-A", "dagster_celery.app", "-y", self.env["SPOTIFY_BRAIN_CELERY_CONFIG"],
             "-n", name, "--", "--concurrency=1", "--without-gossip", "--without-mingle"],
            cwd=self.home, env={**self.env, **(env or {})}, stdout=open(self.home / f"worker-{name}.log", "ab"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.workers[name] = worker
        return worker

    def wait_for_workers(self, names: list[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all("ready." in (self.home / f"worker-{n}.log").read_text(errors="replace") for n in names):
                return
            dead = [n for n in names if self.workers[n].poll() is not None]
            if dead:
                raise RuntimeError(f"worker(s) {dead} exited: see {self.home}/worker-*.log")
            time.sleep(0.2)
        raise TimeoutError(f"workers {names} not ready within {timeout:g} s")

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker and its step process, as when its machine dies."""
        _stop(self.workers.pop(name), signal.SIGKILL)

    def stop(self) -> None:
        for name in list(self.workers):
            _stop(self.workers.pop(name))
        if self.daemon is not None:
            _stop(self.daemon)
            self.daemon = None


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def celery_config(target: Path, **transport_options) -> Path:
    """deploy/celery.yaml with some broker transport options changed (shorter timeouts for tests)."""
    config = yaml.safe_load((DEPLOY / "celery.yaml").read_text())
    config["execution"]["config"]["config_source"]["broker_transport_options"].update(transport_options)
    target.write_text(yaml.safe_dump(config))
    return target


@contextlib.contextmanager
def deployment(home: Path, pg_env: dict[str, str], redis_url: str, celery_file: Path | None = None, default_root: Path | None = None) -> Iterator[Deployment]:
    """A DAGSTER_HOME using deploy/dagster.postgres.yaml as is; processes are started by the caller."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(DEPLOY / "dagster.postgres.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "DAGSTER_"))}
    env.update(
        pg_env,
        DAGSTER_HOME=str(home),
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # `dagster-celery worker start` runs `celery`
        SPOTIFY_BRAIN_ENV_FILE=os.devnull,
        SPOTIFY_BRAIN_SOURCE="demo",
        SPOTIFY_BRAIN_DATA_DIR=str(default_root or home / "unused-data-root"),
        SPOTIFY_BRAIN_CELERY_CONFIG=str(celery_file or DEPLOY / "celery.yaml"),
        SPOTIFY_BRAIN_CELERY_BROKER=f"{redis_url}/0",
        SPOTIFY_BRAIN_CELERY_BACKEND=f"{redis_url}/1",
    )
    deployed = Deployment(home, env)
    try:
        yield deployed
    finally:
        deployed.stop()


@dataclass(frozen=True)
class Listener:
    """An emulated listener: its own data root, demo seed and timezone, and the tags of its runs."""

    name: str
    root: Path
    seed: int
    timezone: str = "UTC"

    def run_config(self, clock: str) -> dict:
        return {
            "resources": {
                "store": {"config": {"root": str(self.root), "timezone": self.timezone}},
                "listening_source": {"config": {"seed": self.seed, "clock": clock}},
            },
            "loggers": {"console": {"config": {"log_level": "WARNING"}}},
        }

    def tags(self) -> dict[str, str]:
        return {LISTENER_TAG: self.name, WRITES_TAG: self.name}


def slots(first: str, count: int) -> list[tuple[str, str]]:
    """`count` consecutive :00/:30 UTC slots from `first` (ISO): (partition key, clock 7 min in)."""
    import pandas as pd

    start = pd.Timestamp(first, tz="UTC").floor("30min")
    moments = [start + pd.Timedelta(minutes=30 * i + 7) for i in range(count)]
    return [(slot_key(m.to_pydatetime()), m.isoformat()) for m in moments]


class Submitter:
    """Submits runs to the instance's queue as `dagster job launch` does, with one loaded workspace."""

    def __init__(self, deployed: Deployment):
        self.deployed = deployed
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "Submitter":
        from dagster._core.workspace.context import WorkspaceProcessContext
        from dagster._core.workspace.load_target import WorkspaceFileTarget

        self._stack.enter_context(_environ(self.deployed.env))
        self.instance = self._stack.enter_context(dg.DagsterInstance.get())
        context = self._stack.enter_context(WorkspaceProcessContext(self.instance, WorkspaceFileTarget([str(REPO / "workspace.yaml")])))
        self.workspace = context.create_request_context()
        self.location = self.workspace.get_code_location("spotify_brain_assets")
        self.repo = self.location.get_repository("__repository__")
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def stop_automation(self) -> None:
        """Stop the slot sensor, the export sensor and the daily schedule: the caller decides the runs."""
        for sensor in self.repo.get_sensors():
            if sensor.name != "dead_run_sensor":
                self.instance.stop_sensor(sensor.get_remote_origin_id(), sensor.selector_id, sensor)
        for schedule in self.repo.get_schedules():
            self.instance.stop_schedule(schedule.get_remote_origin_id(), schedule.selector_id, schedule)

    def submit(
        self, job_name: str, run_config: dict, tags: dict[str, str], partition: str | None = None, partitions: str = "ingestions"
    ) -> str:
        from dagster._cli.job import _create_run  # what `dagster job launch` does, without a process per run

        if partition:
            self.instance.add_dynamic_partitions(partitions, [partition])
            tags = {**tags, "dagster/partition": partition}
        job = self.repo.get_full_job(job_name)
        run = _create_run(
            instance=self.instance, code_location=self.location, remote_repo=self.repo, remote_job=job,
            run_config=run_config, tags=tags, op_selection=None, run_id=None,
        )
        return self.instance.submit_run(run.run_id, self.workspace).run_id

    def set_pool_limit(self, limit: int) -> None:
        """Emulated listeners share the writer pool's name; each has its own data root and writer lock."""
        self.instance.event_log_storage.set_concurrency_slots(WRITER_POOL, limit)


def wait_for_runs(instance: dg.DagsterInstance, run_ids: list[str], timeout: float) -> list[dg.RunRecord]:
    """The runs' records once all have finished; TimeoutError naming those still going."""
    from dagster._core.storage.dagster_run import FINISHED_STATUSES

    deadline = time.monotonic() + timeout
    while True:
        records = instance.get_run_records(filters=dg.RunsFilter(run_ids=run_ids))
        pending = [r.dagster_run.run_id for r in records if r.dagster_run.status not in FINISHED_STATUSES]
        if len(records) == len(run_ids) and not pending:
            return records
        if time.monotonic() > deadline:
            raise TimeoutError(f"runs still not finished after {timeout:g} s: {pending}")
        time.sleep(0.5)
