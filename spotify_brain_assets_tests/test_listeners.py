"""listeners.yaml: its errors, the per-listener graph the factory builds, and runs that stay in their listener's root."""

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from spotify_brain_assets.definitions import build_definitions
from spotify_brain_assets.listeners.config import ListenersFileError, load_listeners, parse_listeners

from .conftest import cli_env, defs, demo_at, store_for

HOUSEHOLD = """\
listeners:
  - name: alice
    timezone: Europe/Stockholm
    share: true
  - name: bob
    source: demo
    seed: 12
"""
CLOCK = "2026-05-04T07:07:00+00:00"
SLOT = "20260504_070000"


def error_of(text: str) -> str:
    with pytest.raises(ListenersFileError) as caught:
        parse_listeners(text, Path("listeners.yaml"))
    return str(caught.value)


@pytest.mark.fast
@pytest.mark.parametrize(
    "text, expected",
    [
        ("listeners:\n  - name: alice\n    colour: red\n", "line 3: unknown key 'colour' in a listener"),
        ("listeners:\n  - name: alice\n  - name: alice\n", "line 3: listener 'alice' is listed twice (first on line 2)"),
        ("listeners:\n  - name: Alice Smith\n", "line 2: name 'Alice Smith' must be a slug"),
        ("listeners:\n  - name: household\n", "line 2: name 'household' must be a slug"),
        ("listeners:\n  - name: alice\n    timezone: Mars/Olympus\n", "line 3: listener 'alice': 'Mars/Olympus' is not an IANA timezone"),
        ("listeners:\n  - name: alice\n    source: lastfm\n", "line 3: listener 'alice': source must be spotify or demo"),
        ("listeners:\n  - name: alice\n    credentials:\n      refresh_token: AQB-x.y\n", "line 4: listener 'alice': credentials.refresh_token must name an environment variable"),
        ("listeners:\n  - name: alice\n    share: maybe\n", "line 3: share must be true or false"),
        ("listeners:\n  - name: alice\n   - name: bob\n", "line 3: not valid YAML"),
        ("listeners: []\n", "line 1: `listeners:` must be a non-empty list"),
        ("", "the file is empty"),
    ],
)
def test_a_bad_file_is_refused_naming_the_line(text, expected):
    assert expected in error_of(text)


@pytest.mark.fast
def test_spotify_listeners_name_their_variables_and_missing_ones_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "listeners.yaml"
    path.write_text("listeners:\n  - name: alice\n    source: spotify\n    credentials: {client_id: HOUSE_APP_ID, client_secret: HOUSE_APP_SECRET}\n")
    monkeypatch.setenv("SPOTIFY_BRAIN_LISTENERS", str(path))
    environ = {"HOUSE_APP_ID": "id", "HOUSE_APP_SECRET": "secret"}
    with pytest.raises(ListenersFileError, match="ALICE_SPOTIFY_REFRESH_TOKEN, which is not set"):
        load_listeners(environ=environ)
    (alice,) = load_listeners(environ={**environ, "ALICE_SPOTIFY_REFRESH_TOKEN": "token"})
    assert alice.variable("client_id") == "HOUSE_APP_ID" and alice.variable("authorized_at") == "ALICE_SPOTIFY_AUTHORIZED_AT"
    assert "token" not in repr(alice)  # names, never values


@pytest.mark.fast
def test_a_named_file_that_does_not_exist_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SPOTIFY_BRAIN_LISTENERS", str(tmp_path / "nope.yaml"))
    with pytest.raises(ListenersFileError, match="no such file"):
        load_listeners()


@pytest.fixture
def household_defs(tmp_path, monkeypatch) -> dg.Definitions:
    path = tmp_path / "listeners.yaml"
    path.write_text(HOUSEHOLD)
    monkeypatch.setenv("SPOTIFY_BRAIN_LISTENERS", str(path))
    return build_definitions()


def test_the_factory_builds_the_graph_once_per_listener(household_defs):
    graph = household_defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    solo = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {f"{name}/{key}" for name in ("alice", "bob") for key in solo} <= keys
    assert not keys & solo  # no unprefixed asset is left
    alice_history = graph.get(dg.AssetKey(["alice", "history"]))
    assert alice_history.group_name == "alice_history"
    assert {k.to_user_string() for k in alice_history.parent_keys} == {"alice/plays", "alice/mood_clusters"}
    assert graph.get(dg.AssetKey(["bob", "ingestions"])).partitions_def.name == "bob__ingestions"
    assert household_defs.get_assets_def(dg.AssetKey(["alice", "mood_classifier"])).op.pool == "spotify_brain_writer__alice"
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert ("bob/history", "no_play_lost") in checks and ("alice/mood_classifier", "promotion_gate") in checks
    jobs = {job.name for job in household_defs.jobs}
    assert {"alice__update", "bob__update", "alice__full_retrain", "bob__full_retrain", "alice__import_export"} <= jobs
    retrain = household_defs.resolve_job_def("alice__full_retrain")
    assert retrain.tags["spotify_brain/listener"] == "alice"
    assert {k.path[0] for k in retrain.asset_layer.asset_graph.get_all_asset_keys() if k in retrain.asset_layer.executable_asset_keys} == {"alice"}
    assert {s.name for s in household_defs.schedules} == {"alice__full_retrain_daily", "bob__full_retrain_daily"}


def test_one_sensor_adds_every_listeners_slot_and_requests_their_runs(household_defs, instance):
    sensor = household_defs.resolve_sensor_def("ingestion_slot_sensor")
    result = sensor(dg.build_sensor_context(instance=instance))
    jobs = sorted(r.job_name for r in result.run_requests)
    assert jobs[:2] == ["alice__update", "bob__update"]
    added = {(r.partitions_def_name, tuple(r.partition_keys)) for r in result.dynamic_partitions_requests}
    key = result.cursor
    assert added == {("alice__ingestions", (key,)), ("bob__ingestions", (key,))}


def test_a_listeners_run_writes_only_its_own_root_and_equals_the_listener_alone(household_defs, data_root, tmp_path):
    household_store = store_for(data_root, "UTC")
    clock = {"resources": {"listening_source": {"config": {"clock": CLOCK}}}}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("alice__ingestions", [SLOT])
        result = household_defs.resolve_job_def("alice__update").execute_in_process(
            instance=instance, partition_key=SLOT, run_config=clock, resources={"store": household_store}
        )
        assert result.success
        assert result.dagster_run.tags["spotify_brain/listener"] == "alice"
    alice = data_root / "listeners" / "alice"
    assert (alice / "history.parquet").exists() and not (data_root / "listeners" / "bob").exists()
    assert not (data_root / "history.parquet").exists()

    alone = tmp_path / "alone"
    (settings,) = [l for l in parse_listeners(HOUSEHOLD, Path("x")) if l.name == "alice"]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("ingestions", [SLOT])
        assert defs.resolve_job_def("update").execute_in_process(
            instance=instance, partition_key=SLOT,
            resources={"store": store_for(alone, "Europe/Stockholm"), "listening_source": demo_at(CLOCK, settings.demo_seed)},
        ).success
    pd.testing.assert_frame_equal(pd.read_parquet(alice / "history.parquet"), pd.read_parquet(alone / "history.parquet"))

    # the household page: alice shares, bob does not
    graph = household_defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get(dg.AssetKey("household_page")).parent_keys} == {"alice/history"}
    with dg.instance_for_test() as instance:
        page = household_defs.resolve_job_def("household").execute_in_process(instance=instance, run_config=clock, resources={"store": household_store})
    assert page.success
    data = json.loads((data_root / "export" / "household_data.json").read_text())
    assert [entry["name"] for entry in data["listeners"]] == ["alice"]
    assert "bob" not in (data_root / "export" / "household.html").read_text()
    assert (data_root / "export" / data["listeners"][0]["dashboard"]).resolve() == (alice / "export" / "index.html").resolve()


def test_the_cli_updates_one_listener_or_refuses_an_unknown_one(data_root, dagster_home, tmp_path):
    path = tmp_path / "listeners.yaml"
    path.write_text(HOUSEHOLD)
    env = {**cli_env(data_root, dagster_home, CLOCK), "SPOTIFY_BRAIN_LISTENERS": str(path), "SPOTIFY_BRAIN_ENV_FILE": "/dev/null"}
    cli = [sys.executable, "-m", "spotify_brain_assets.cli"]
    unknown = subprocess.run([*cli, "update", "--listener", "zed"], env=env, capture_output=True, text=True, timeout=300)
    assert unknown.returncode == 2 and "--listener zed: not in listeners.yaml (listeners: alice, bob)" in unknown.stderr
    done = subprocess.run([*cli, "update", "--listener", "bob"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bob__update: succeeded" in done.stdout and "household: succeeded" in done.stdout
    assert (data_root / "listeners" / "bob" / "history.parquet").exists()
    assert not (data_root / "listeners" / "alice").exists()
