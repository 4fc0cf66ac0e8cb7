"""The contract with the predecessor's website: every path it reads (fixtures/predecessor_website_paths.json,
written from issue 14's table) on a demo run, on an empty history and where a baseline serves."""

import json
import shutil

import dagster as dg
import pandas as pd
import pytest

from spotify_brain_assets.defs.reporting.dashboard import dashboard
from spotify_brain_assets.defs.reporting.reports import predictions
from spotify_brain_assets.dashboard import website
from spotify_brain_assets.dashboard.build import Inputs, build_dashboard
from spotify_brain_assets.dashboard.schema import dashboard_json
from spotify_brain_assets.ml.model_store import sidecar_path
from spotify_brain_assets.plays.schema import HISTORY_COLUMNS
from spotify_brain_assets.storage.paths import DataPaths

from .conftest import FIXTURES, demo_at, run_job, store_for

CLOCK, SLOT = "2026-03-01T12:00:00Z", "20260301_120000"
PATHS = json.loads((FIXTURES / "predecessor_website_paths.json").read_text())["paths"]
JSON_TYPES = {"string": str, "object": dict, "array": list, "boolean": bool, "null": type(None)}


def _is(value, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, JSON_TYPES[kind])


def values_at(data, path: str):
    """(concrete path, value) for `path`; `[]` walks every element; a null or absent parent yields
    its own problem, reported by that parent's entry."""
    found = [("", data)]
    for part in path.split("."):
        key, each = (part[:-2], True) if part.endswith("[]") else (part, False)
        nxt = []
        for where, node in found:
            if not isinstance(node, dict):
                continue  # the parent is null (or of the wrong type): its own entry says so
            value = node.get(key, KeyError)
            here = f"{where}.{key}".lstrip(".")
            if each and isinstance(value, list):
                nxt += [(f"{here}[{i}]", v) for i, v in enumerate(value)]
            else:
                nxt.append((here, value))
        found = nxt
    return found


def problems(data: dict, demo: bool = False) -> list[str]:
    """Every way `data` breaks the website's contract (an empty list: none)."""
    out = []
    for entry in PATHS:
        for where, value in values_at(data, entry["path"]):
            if value is KeyError:
                out.append(f"{where}: missing")
            elif not any(_is(value, t) for t in entry["types"]):
                out.append(f"{where}: {value!r} is not {entry['types']}")
            elif value is not None and not isinstance(value, (dict, list, bool)):
                if "min" in entry and value < entry["min"] or "max" in entry and value > entry["max"]:
                    out.append(f"{where}: {value!r} outside [{entry.get('min')}, {entry.get('max')}]")
                if "enum" in entry and value not in entry["enum"]:
                    out.append(f"{where}: {value!r} not one of {entry['enum']}")
            if demo and value is None and not entry.get("may_be_null_on_a_demo_run"):
                out.append(f"{where}: null on a demo run")
    return out


def read(path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    """A demo data root after an `update` slot and a `full_retrain` (shared, never modified)."""
    root = tmp_path_factory.mktemp("website") / "data"
    root.mkdir()
    with dg.instance_for_test() as instance:
        assert run_job("update", instance, root, demo_at(CLOCK), SLOT).success
        assert run_job("full_retrain", instance, root, demo_at(CLOCK)).success
    return root


@pytest.mark.fast
def test_the_fixture_names_every_path_of_the_table():
    listed = {e["path"] for e in PATHS}
    for path in ["next_prediction.mood_distribution[].probability", "next_prediction.prediction_source", "next_prediction.abstained",
                 "next_prediction.recommended_tracks[].image_url", "metrics.latest.mood_model.majority_val_accuracy",
                 "metrics.latest.session_model.per_hour_metrics.night.n_positive", "metrics.latest.run_at", "generated_at"]:
        assert path in listed


@pytest.mark.fast
def test_the_contract_check_finds_a_missing_key_and_a_value_out_of_range():
    data = build_dashboard(Inputs(history=pd.DataFrame(columns=HISTORY_COLUMNS), now=pd.Timestamp(CLOCK), timezone="UTC"))
    del data["metrics"]["latest"]["mood_model"]["val_accuracy"]
    data["next_prediction"]["normalized_entropy"] = 1.5
    assert sorted(problems(data)) == ["metrics.latest.mood_model.val_accuracy: missing", "next_prediction.normalized_entropy: 1.5 outside [0, 1]"]


@pytest.mark.fast
def test_an_empty_history_has_every_path_with_nulls_not_missing_keys():
    data = build_dashboard(Inputs(history=pd.DataFrame(columns=HISTORY_COLUMNS), now=pd.Timestamp(CLOCK), timezone="Europe/Stockholm"))
    dashboard_json(data)
    assert problems(data) == []
    nxt, latest = data["next_prediction"], data["metrics"]["latest"]
    assert nxt["mood_distribution"] == [] and nxt["prediction_source"] is None and nxt["abstained"] is None
    assert latest["num_tracks"] == 0 and latest["run_at"] is None and latest["mood_model"]["val_accuracy"] is None
    assert latest["session_model"]["per_hour_metrics"]["night"] == {"pr_auc": None, "roc_auc": None, "n_samples": None, "n_positive": None}


@pytest.mark.fast
def test_uncertainty_rules():
    assert website.normalized_entropy([0.25] * 4) == 1.0 and website.normalized_entropy([1.0, 0.0]) == 0.0
    answer = {"available": True, "served": {"kind": "baseline", "name": "persistence", "version": None}, "context_moods": [2],
              "probabilities": [{"cluster_id": 2, "label": "a", "probability": 0.7}, {"cluster_id": 0, "label": "b", "probability": 0.3}]}
    keys = website.prediction_keys(answer, None)
    assert keys["prediction_source"] == "persistence_baseline" and keys["confidence_kind"] == "estimated_baseline_probability"
    assert keys["switch_probability"] == pytest.approx(0.3) and keys["context_level"] == "last" and keys["recent_window_size"] == 1
    assert keys["abstained"] is False and keys["predictability"] == "low"  # entropy 0.88
    flat = {**answer, "probabilities": [{"cluster_id": c, "label": str(c), "probability": 0.25} for c in range(4)]}
    assert website.prediction_keys(flat, None)["abstained"] is True
    # the predictions written before `served` existed: "source"
    old = {**answer, "served": None, "source": "baseline:same_as_previous"}
    assert website.prediction_keys(old, None)["prediction_source"] == "persistence_baseline"
    assert website.prediction_keys({**answer, "served": {"kind": "model", "name": "x", "version": "abc"}}, None)["model_version"] == "abc"


def test_a_demo_run_has_every_path_from_its_evaluation_and_predictions(demo_root):
    paths = DataPaths.at(demo_root)
    data, served = read(paths.dashboard_json), read(paths.predictions)["next_mood"]
    dashboard_json(data)
    assert problems(data, demo=True) == []
    nxt = data["next_prediction"]
    kind, name, _ = website.served(served)
    assert nxt["prediction_source"] == website.prediction_source(kind, name)
    assert (nxt["model_version"] is not None) == (kind == "model")
    assert [d["probability"] for d in nxt["mood_distribution"]] == [p["probability"] for p in served["probabilities"]]
    assert len(nxt["mood_distribution"]) >= 3 and data["is_demo"] is True
    mood = read(paths.mood_evaluation)
    assert data["metrics"]["latest"]["mood_model"]["val_accuracy"] == mood["candidate"]["test"]["accuracy"]


def test_where_a_baseline_serves_the_site_is_told_so(demo_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(demo_root, root)
    paths = DataPaths.at(root)
    paths.mood_classifier.unlink(missing_ok=True)  # no model in use: the gate's baseline answers
    sidecar_path(paths.mood_classifier).unlink(missing_ok=True)
    with dg.instance_for_test() as instance:
        resources = {"store": store_for(root), "listening_source": demo_at(CLOCK)}
        assert dg.materialize([predictions.solo, dashboard.solo], instance=instance, resources=resources).success
    data, served = read(paths.dashboard_json), read(paths.predictions)["next_mood"]
    assert problems(data) == []
    nxt = data["next_prediction"]
    kind, name, _ = website.served(served)
    assert kind == "baseline" and nxt["prediction_source"] == f"{website.PREDECESSOR_NAMES.get(name, name)}_baseline"
    assert nxt["confidence_kind"] == "estimated_baseline_probability" and nxt["model_version"] is None
    baseline = read(paths.mood_evaluation)["baselines"][name]
    assert nxt["validation_reliability"] == baseline["accuracy"] and nxt["validation_log_loss"] == baseline["log_loss"]


@pytest.mark.fast
def test_the_website_preset_puts_the_json_where_the_site_bundles_it_and_no_page(monkeypatch):
    from spotify_brain_assets.defs.reporting.dashboard import website_deployment_from_env

    monkeypatch.setenv("SPOTIFY_BRAIN_WEBSITE_REPO", "/tmp/site")
    monkeypatch.setenv("SPOTIFY_BRAIN_WEBSITE_DIR", "src/assets")
    monkeypatch.setenv("SPOTIFY_BRAIN_WEBSITE_PAGE", "0")
    assert website_deployment_from_env().files == {"dashboard_data.json": "src/assets/dashboard_data.json"}
