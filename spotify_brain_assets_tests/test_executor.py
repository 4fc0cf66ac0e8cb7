"""Choosing where steps run by configuration, and the data-root id that steps on workers check."""

import dagster as dg
import pytest
from dagster._config import validate_config

from spotify_brain_assets.benchmarks.deployment import DEPLOY
from spotify_brain_assets.runtime.executor import CELERY_CONFIG_ENV, ROOT_ID_TAG, DataRootNotShared, check_shared_root, executor_from_env, root_id
from spotify_brain_assets.runtime.runs import host
from spotify_brain_assets.storage.paths import DataPaths

pytestmark = pytest.mark.fast


def _default(executor: dg.ExecutorDefinition) -> dict:
    return executor.config_schema.as_field().default_value


def test_steps_run_in_process_unless_configured(monkeypatch):
    monkeypatch.delenv(CELERY_CONFIG_ENV, raising=False)
    assert _default(executor_from_env()) == {"in_process": {}}


def test_the_workers_file_makes_celery_the_default_and_a_run_may_still_choose(monkeypatch):
    monkeypatch.setenv(CELERY_CONFIG_ENV, str(DEPLOY / "celery.yaml"))
    executor = executor_from_env()
    celery = _default(executor)["celery"]
    assert celery["broker"] == {"env": "SPOTIFY_BRAIN_CELERY_BROKER"}
    assert celery["config_source"]["task_acks_late"] is True
    config_type = executor.config_schema.config_type
    for choice in ({"in_process": {}}, {"celery": {"broker": "redis://127.0.0.1:6379/0", "backend": "redis://127.0.0.1:6379/1"}}):
        assert validate_config(config_type, choice).success, choice


def test_a_bad_celery_file_is_refused_naming_the_variable(monkeypatch, tmp_path):
    bad = tmp_path / "celery.yaml"
    bad.write_text("broker: redis://nowhere\n")  # not under execution: config:
    monkeypatch.setenv(CELERY_CONFIG_ENV, str(bad))
    with pytest.raises(ValueError, match=f"{CELERY_CONFIG_ENV}={bad}: not a readable dagster-celery config"):
        executor_from_env()


def test_a_step_refuses_a_data_root_that_is_not_the_runs(tmp_path, monkeypatch):
    shared, local = DataPaths.at(tmp_path / "shared"), DataPaths.at(tmp_path / "local")
    stamped = root_id(shared)
    assert root_id(shared) == stamped  # stamped once
    run = dg.DagsterRun(job_name="update", run_id="r1", tags={ROOT_ID_TAG: stamped})
    check_shared_root(shared, run)
    check_shared_root(local, dg.DagsterRun(job_name="update", run_id="r2"))  # steps in the run's process: nothing to check
    monkeypatch.setenv("SPOTIFY_BRAIN_DATA_DIR", str(local.root))
    with pytest.raises(DataRootNotShared, match=f"worker host {host()} does not see the data root of run r1.*SPOTIFY_BRAIN_DATA_DIR={local.root} and {local.root} has no"):
        check_shared_root(local, run)
    root_id(local)  # another data root, with an id of its own
    with pytest.raises(DataRootNotShared, match="is another data root"):
        check_shared_root(local, run)
