"""Shared fixtures: a fresh data root, an instance, and a way to run a slice of the graph."""

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

os.environ.setdefault("SPOTIFY_BRAIN_ENV_FILE", os.devnull)  # a developer's own .env must not steer the tests

from spotify_brain_assets.definitions import defs  # noqa: E402
from spotify_brain_assets.resources import DataStore, DemoListenerResource  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TIMEZONE = "Europe/Stockholm"


@pytest.fixture
def data_root(tmp_path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def dagster_home(tmp_path) -> Path:
    """A DAGSTER_HOME with the repository's dagster.yaml, as the README sets it up."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    return home


def cli_env(data_root: Path, dagster_home: Path, clock: str | None = None) -> dict[str, str]:
    """The environment of a command a user types: this data root and home, the demo listener."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "DAGSTER_"))}
    env.update(
        SPOTIFY_BRAIN_DATA_DIR=str(data_root),
        SPOTIFY_BRAIN_SOURCE="demo",
        SPOTIFY_BRAIN_TIMEZONE=TIMEZONE,
        DAGSTER_HOME=str(dagster_home),
    )
    if clock:
        env["SPOTIFY_BRAIN_DEMO_CLOCK"] = clock
    return env


def store_for(root: Path, timezone: str = TIMEZONE) -> DataStore:
    return DataStore(root=str(root), timezone=timezone)


def demo_at(clock: str, seed: int = 7) -> DemoListenerResource:
    return DemoListenerResource(clock=clock, seed=seed)


def run_job(job_name: str, instance, root: Path, source, partition_key: str | None = None, run_config=None, raise_on_error=True):
    """Execute one of the real jobs with test resources; returns the ExecuteInProcessResult."""
    if partition_key:
        instance.add_dynamic_partitions("ingestions", [partition_key])
    job = defs.resolve_job_def(job_name)
    return job.execute_in_process(
        instance=instance,
        partition_key=partition_key,
        run_config=run_config,
        resources={"store": store_for(root), "listening_source": source},
        raise_on_error=raise_on_error,
    )


def materializations(result) -> dict[str, dict]:
    """Asset key → metadata values of the run's materializations."""
    return {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }


def step_errors(result) -> str:
    """The text of every step failure in a run, for asserting on error messages."""
    return "\n".join(str(e.event_specific_data.error) for e in result.all_events if e.event_type_value == "STEP_FAILURE")


@pytest.fixture
def quick_retries(monkeypatch):
    """The network steps' retries with millisecond waits (the real ones wait 20 s, 1 min and 2⅓ min)."""
    from spotify_brain_assets.defs import common

    monkeypatch.setattr(common, "NETWORK_RETRY", common.NETWORK_RETRY._replace(delay=0.001))
