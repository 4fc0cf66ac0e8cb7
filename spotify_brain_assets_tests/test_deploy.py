"""The household deployment with real components: Debian's PostgreSQL and Redis started here, the
Dagster daemon running the run queue of deploy/dagster.postgres.yaml, and Celery workers started
with deploy/celery.yaml. The household is a listeners.yaml of three demo listeners; the other tests
run the single-listener graph (data roots, demo seeds and listener tags given per run)."""

import os
import time
from itertools import combinations
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from spotify_brain_assets.defs.common import WRITER_POOL
from spotify_brain_assets.benchmarks import deployment as dep
from spotify_brain_assets.runtime.runs import host, reap

from .conftest import defs


@pytest.fixture(scope="module")
def cluster():
    missing = dep.missing_binaries()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must install {' '.join(missing)} (see .ci/run)")
        pytest.skip(f"deployment tests need Debian's {' and '.join(missing)}: apt-get install postgresql redis-server")
    with dep.postgres() as pg, dep.redis() as redis_url:
        yield pg, redis_url


THREE = """\
listeners:
  - {name: alice, seed: 11, timezone: Europe/Stockholm}
  - {name: bob, seed: 12}
  - {name: carol, seed: 13, timezone: America/New_York}
"""


@pytest.fixture
def household(cluster, tmp_path, request):
    """A fresh instance (its own database) with the daemon and a Celery config whose timeouts suit a test;
    with the `listeners` marker, its text as listeners.yaml."""
    pg, redis_url = cluster
    database = request.node.name.lower().replace("[", "_").replace("]", "")[:60]
    # a worker that dies with its machine hands its step back after 20 s instead of 75 minutes
    celery_file = dep.celery_config(tmp_path / "celery.yaml", visibility_timeout=20, unacked_restore_interval=1, unacked_restore_throttle=1)
    with dep.deployment(tmp_path / "home", pg.database(database), redis_url, celery_file, default_root=tmp_path / "data") as deployed:
        marker = request.node.get_closest_marker("listeners")
        if marker:
            (tmp_path / "listeners.yaml").write_text(marker.args[0])
            deployed.env["SPOTIFY_BRAIN_LISTENERS"] = str(tmp_path / "listeners.yaml")
        with dep.Submitter(deployed) as submitter:
            submitter.stop_automation()
            deployed.start_daemon()
            yield deployed, submitter


def alone(listener: dep.Listener, slots: list[tuple[str, str]], root: Path) -> pd.DataFrame:
    """The listener's history after the same slots run in-process, on a root of its own."""
    job = defs.resolve_job_def("update")
    by_itself = dep.Listener(listener.name, root, listener.seed, listener.timezone)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("ingestions", [key for key, _ in slots])
        for key, clock in slots:
            assert job.execute_in_process(instance=instance, partition_key=key, run_config=by_itself.run_config(clock)).success
    return pd.read_parquet(root / "history.parquet")


def workers_of(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    """(step, Celery worker) for every step a worker took, in order, from the run's event log."""
    found = []
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
        event = record.event_log_entry.dagster_event
        worker = event.engine_event_data.metadata.get("Celery worker")
        if worker is not None:
            found.append((event.step_key, worker.value))
    return found


@pytest.mark.listeners(THREE)
def test_a_household_day_runs_through_the_queue_on_two_workers(household, tmp_path):
    deployed, submitter = household
    deployed.start_worker("w1")
    deployed.start_worker("w2")
    deployed.wait_for_workers(["w1", "w2"])
    root = tmp_path / "data" / "listeners"
    listeners = [
        dep.Listener("alice", root / "alice", seed=11, timezone="Europe/Stockholm"),
        dep.Listener("bob", root / "bob", seed=12),
        dep.Listener("carol", root / "carol", seed=13, timezone="America/New_York"),
    ]
    slots = dep.slots("2026-05-04T07:00:00", 3)
    run_ids = [
        submitter.submit(f"{lst.name}__update", {"resources": {"listening_source": {"config": {"clock": clock}}}}, {}, key, f"{lst.name}__ingestions")
        for key, clock in slots for lst in listeners
    ]

    records = dep.wait_for_runs(submitter.instance, run_ids, timeout=1200)

    assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
    spans = {lst.name: sorted((r.start_time, r.end_time) for r in records if r.dagster_run.tags[dep.LISTENER_TAG] == lst.name) for lst in listeners}
    for name, runs in spans.items():
        assert len(runs) == len(slots)
        for (_, end), (start, _) in zip(runs, runs[1:]):
            assert end <= start, f"two runs of {name} overlapped"
    assert any(
        a[0] < b[1] and b[0] < a[1] for x, y in combinations(spans, 2) for a in spans[x] for b in spans[y]
    ), "no two listeners' runs ever ran at once"
    workers = {worker for run_id in run_ids for _, worker in workers_of(submitter.instance, run_id)}
    assert workers == {f"w1@{host()}", f"w2@{host()}"}
    for lst in listeners:
        pd.testing.assert_frame_equal(pd.read_parquet(lst.root / "history.parquet"), alone(lst, slots, tmp_path / f"{lst.name}-alone"))


def _wait_for_step_start(instance: dg.DagsterInstance, run_id: str, step: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records:
            assert [s for s, _ in workers_of(instance, run_id)][:1] == [step]
            return
        time.sleep(0.05)
    raise TimeoutError(f"step {step} of run {run_id} did not start within {timeout:g} s")


def test_a_worker_killed_mid_step_leaves_the_instance_recoverable(household, tmp_path):
    deployed, submitter = household
    instance = submitter.instance
    deployed.start_worker("w1")
    deployed.start_worker("w2")
    deployed.wait_for_workers(["w1", "w2"])
    dave = dep.Listener("dave", tmp_path / "dave", seed=14)
    (first, first_clock), (second, second_clock) = dep.slots("2026-05-04T07:00:00", 2)
    run_id = submitter.submit("update", dave.run_config(first_clock), dave.tags(), first)

    # the first slot of a fresh data root ingests 90 days of backfill: seconds of work to kill into
    _wait_for_step_start(instance, run_id, "ingestions")
    (_, victim), = workers_of(instance, run_id)
    deployed.kill_worker(victim.split("@")[0])
    assert not instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS).records, "the step ended before the kill"

    # the run's own process lives on, waiting for the step: the reaper must not take the newest
    # event's process (the killed step) for the run's
    assert instance.get_run_by_id(run_id).tags["spotify_brain/host"] == host()
    assert reap(instance, say=lambda _: None) == []
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED

    (record,) = dep.wait_for_runs(instance, [run_id], timeout=600)
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    ingestions_by = [worker for step, worker in workers_of(instance, run_id) if step == "ingestions"]
    assert ingestions_by[0] == victim and len(ingestions_by) == 2 and ingestions_by[1] != victim  # handed to the survivor

    next_run = submitter.submit("update", dave.run_config(second_clock), dave.tags(), second)
    (record,) = dep.wait_for_runs(instance, [next_run], timeout=600)
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert not instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.QUEUED]))
    assert not instance.event_log_storage.get_concurrency_info(WRITER_POOL).active_run_ids
    pd.testing.assert_frame_equal(
        pd.read_parquet(dave.root / "history.parquet"), alone(dave, [(first, first_clock), (second, second_clock)], tmp_path / "dave-alone")
    )


def test_a_worker_that_does_not_see_the_data_root_refuses(household, tmp_path):
    deployed, submitter = household
    elsewhere = tmp_path / "worker-local-data"
    elsewhere.mkdir()
    deployed.start_worker("blind", env={"SPOTIFY_BRAIN_DATA_DIR": str(elsewhere)})
    deployed.wait_for_workers(["blind"])
    (key, clock), = dep.slots("2026-05-04T07:00:00", 1)
    config = {"resources": {"listening_source": {"config": {"clock": clock}}}}  # the data root of the environment

    run_id = submitter.submit("update", config, {dep.LISTENER_TAG: "erin"}, key)

    (record,) = dep.wait_for_runs(submitter.instance, [run_id], timeout=600)
    assert record.dagster_run.status == dg.DagsterRunStatus.FAILURE
    (failure,) = submitter.instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RESOURCE_INIT_FAILURE).records
    message = failure.event_log_entry.dagster_event.engine_event_data.error.to_string()
    assert f"worker host {host()} does not see the data root" in message
    assert f"SPOTIFY_BRAIN_DATA_DIR={elsewhere}" in message
    assert list(elsewhere.iterdir()) == []  # nothing written where the worker looked
    assert [p.name for p in (tmp_path / "data").iterdir()] == [".spotify_brain_root.json"]  # the run's data root: only its id
