import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from spotify_brain_assets.defs.automation import slot_key
from spotify_brain_assets.definitions import defs

from .conftest import REPO


def test_definitions_load_without_warnings_from_our_code():
    code = "import spotify_brain_assets as s; s.defs.resolve_all_job_defs(); s.defs.resolve_asset_graph()"
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], cwd=REPO, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.fast
def test_foundation_assets_jobs_sensor_and_schedule_exist():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"ingestions", "plays", "history"} <= keys
    ingestions = graph.get(dg.AssetKey("ingestions"))
    assert isinstance(ingestions.partitions_def, dg.DynamicPartitionsDefinition)
    assert ingestions.partitions_def.name == "ingestions"
    assert graph.get(dg.AssetKey("history")).partitions_def is None
    assert {j.name for j in defs.resolve_all_job_defs()} >= {"update", "full_retrain"}
    sensor = defs.resolve_sensor_def("ingestion_slot_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    schedule = defs.resolve_schedule_def("full_retrain_daily")
    assert schedule.cron_schedule == "15 0 * * *" and schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    checks = {k.name for k in graph.asset_check_keys if k.asset_key == dg.AssetKey("history")}
    assert {"no_duplicates", "no_nulls", "sorted_by_played_at", "sessions_follow_gap_rule", "no_play_lost"} <= checks


@pytest.mark.fast
def test_jobs_select_their_slices_and_writers_share_a_pool():
    update = {k.to_user_string() for k in defs.resolve_job_def("update").asset_layer.selected_asset_keys}
    full = {k.to_user_string() for k in defs.resolve_job_def("full_retrain").asset_layer.selected_asset_keys}
    assert {"ingestions", "plays", "history"} <= update
    assert "ingestions" not in full and {"plays", "history"} <= full
    graph = defs.resolve_asset_graph()
    for key in ("ingestions", "plays", "history"):
        assert graph.get(dg.AssetKey(key)).pools == {"spotify_brain_writer"}


@pytest.mark.fast
def test_ingestions_freshness_policy_flags_a_silent_stop_within_two_hours():
    spec = next(s for s in defs.resolve_all_asset_specs() if s.key == dg.AssetKey("ingestions"))
    assert spec.freshness_policy.fail_window.to_timedelta() == timedelta(hours=2)


@pytest.mark.fast
def test_sensor_adds_the_slot_partition_and_requests_one_run_per_slot():
    sensor = defs.resolve_sensor_def("ingestion_slot_sensor")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, definitions=defs)
        result = sensor(context)
        assert len(result.run_requests) == 1
        key = result.run_requests[0].partition_key
        assert key == result.cursor and key[-4:] in ("0000", "3000")
        assert result.dynamic_partitions_requests[0].partition_keys == [key]
        again = sensor(dg.build_sensor_context(instance=instance, cursor=key, definitions=defs))
        assert isinstance(again, dg.SkipReason)


@pytest.mark.fast
def test_slot_keys_are_the_utc_half_hour():
    import pandas as pd

    assert slot_key(pd.Timestamp("2026-03-29T01:44:59+01:00")) == "20260329_003000"
    assert slot_key(pd.Timestamp("2026-11-26T09:00:00Z")) == "20261126_090000"


@pytest.mark.parametrize("listeners", [None, "listeners:\n  - {name: alice, share: true}\n  - {name: bob}\n"])
def test_dg_check_defs_passes(tmp_path, listeners):
    """The repository is a `dg` project: `dg check defs` loads the definitions through [tool.dg],
    as one listener and as a household (every name unique across assets, jobs and checks)."""
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "DAGSTER_HOME": str(tmp_path), "SPOTIFY_BRAIN_DATA_DIR": str(tmp_path / "data")}
    if listeners:
        (tmp_path / "listeners.yaml").write_text(listeners)
        env["SPOTIFY_BRAIN_LISTENERS"] = str(tmp_path / "listeners.yaml")
    proc = subprocess.run([str(Path(sys.executable).with_name("dg")), "check", "defs"], cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "All definitions loaded successfully" in proc.stdout + proc.stderr


@pytest.mark.fast
def test_every_asset_check_says_what_it_guarantees():
    graph = defs.resolve_asset_graph()
    assert [k.to_user_string() for k in graph.asset_check_keys if not graph.get_check_spec(k).description] == []


@pytest.mark.fast
def test_network_steps_are_retried_with_exponential_backoff_and_jitter():
    from spotify_brain_assets.defs.common import NETWORK_RETRY

    policy = NETWORK_RETRY
    assert policy.max_retries >= 2 and policy.backoff == dg.Backoff.EXPONENTIAL and policy.jitter == dg.Jitter.PLUS_MINUS
    for key in ("ingestions", "spotify_export"):  # retried through retried_on_network_errors, not a retry_policy
        op = defs.resolve_assets_def(key).op
        assert op.retry_policy is None and hasattr(op.compute_fn.decorated_fn, "__wrapped__")


@pytest.mark.fast
def test_assets_whose_logic_changes_between_releases_carry_a_code_version():
    versions = {s.key.to_user_string(): s.code_version for s in defs.resolve_all_asset_specs()}
    assert all(versions[key] for key in ("plays", "history", "spotify_export"))
