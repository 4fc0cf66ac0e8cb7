"""The dashboard's schema: the pydantic models are its source, the committed JSON Schema is generated
from them, and a document that breaks them is never written."""

import copy
import json

import jsonschema
import pandas as pd
import pytest

from spotify_brain_assets.dashboard.build import Inputs, build_dashboard
from spotify_brain_assets.dashboard.schema import (
    SCHEMA_FILE, DashboardSchemaError, dashboard_json, json_schema, json_schema_text, write_dashboard_json,
)
from spotify_brain_assets.storage.files import json_text

from .test_dashboard_build import NOW, history_of

pytestmark = pytest.mark.fast

MOOD_EVALUATION = {
    "status": "trained", "primary_metric": "log_loss",
    "candidate": {"test": {"accuracy": 0.9, "log_loss": 0.36}},
    "baselines": {"markov": {"accuracy": 0.9, "log_loss": 0.35}},
    "decision": {"promoted": False, "metric": "log_loss", "higher_is_better": False, "candidate": 0.36,
                 "best_baseline": "markov", "best_baseline_value": 0.35, "summary": "not promoted"},
}
PREDICTIONS = {"next_mood": {"available": True, "source": "baseline:markov", "mood_cluster_id": 1, "confidence": 0.9,
                             "probabilities": [{"cluster_id": 1, "label": "High energy, positive", "probability": 0.9}]}}


@pytest.fixture(scope="module")
def doc() -> dict:
    """A dashboard with plays, stats, a recap, an evaluation and a served prediction."""
    minutes = list(range(0, 300, 10))
    history = history_of(minutes, [0] * len(minutes), [1] * len(minutes))
    return build_dashboard(Inputs(history=history, now=NOW, timezone="Europe/Stockholm",
                                  mood_evaluation=MOOD_EVALUATION, predictions=PREDICTIONS))


def broken(doc: dict, change) -> dict:
    out = copy.deepcopy(doc)
    change(out)
    return out


def test_the_committed_json_schema_is_generated_from_the_models():
    # after changing the models: python -m spotify_brain_assets.dashboard.schema_file
    assert SCHEMA_FILE.read_text(encoding="utf-8") == json_schema_text()
    jsonschema.Draft202012Validator.check_schema(json_schema())


def test_a_valid_dashboard_is_written_as_strict_json(doc, tmp_path):
    target = tmp_path / "export" / "dashboard_data.json"
    write_dashboard_json(doc, target)
    assert target.read_text(encoding="utf-8") == json_text(doc)
    assert json.loads(target.read_text())["recap"]["years"][0]["plays"] == 30


BREAKS = [
    # (what is wrong, the change, the path the error names)
    ("a probability above 1", lambda d: d["next_prediction"].update(normalized_entropy=1.5), "next_prediction.normalized_entropy"),
    ("a count given as text", lambda d: d["stats"]["ranges"]["7d"].update(plays="30"), "stats.ranges.7d.plays"),
    ("an hour that does not exist", lambda d: d["session_probs"].update({"24": 0.1}), "session_probs.24 (the key)"),
    ("a website key missing", lambda d: d["next_prediction"].pop("abstained"), "next_prediction.abstained: missing"),
    ("a key of a closed object", lambda d: d["stats"]["ranges"].update({"1d": d["stats"]["ranges"]["7d"]}), "stats.ranges.1d"),
    ("null where a key may only be absent", lambda d: d["freshness"].update(stale_after_hours=None), "freshness.stale_after_hours"),
    ("a clock without 24 hours", lambda d: d["recap"]["years"][0]["clock"].pop(), "recap.years[0].clock"),
    ("a boolean as a number", lambda d: d["models"]["mood"]["details"]["rows"][0]["values"].update(accuracy=True),
     "models.mood.details.rows[0].values.accuracy"),
]


@pytest.mark.parametrize("change, where", [b[1:] for b in BREAKS], ids=[b[0] for b in BREAKS])
def test_a_broken_dashboard_names_the_field_and_leaves_the_file_as_it_was(doc, tmp_path, change, where):
    target = tmp_path / "dashboard_data.json"
    write_dashboard_json(doc, target)
    before = target.read_bytes()
    bad = broken(doc, change)
    with pytest.raises(DashboardSchemaError, match="is not written") as raised:
        write_dashboard_json(bad, target)
    assert f"  {where}" in str(raised.value)
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["dashboard_data.json"]
    # the published JSON Schema says the same to readers that are not Python
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(json_text(bad)), json_schema())


def test_the_published_json_schema_accepts_what_the_models_accept(doc):
    jsonschema.validate(json.loads(dashboard_json(doc)), json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def test_many_problems_are_counted_and_the_first_ones_shown(doc):
    bad = broken(doc, lambda d: d["recently_played"].__setitem__(slice(0, 3), [{"track_id": 1}] * 3))
    with pytest.raises(DashboardSchemaError) as raised:
        dashboard_json(bad)
    message = str(raised.value)
    assert "in 21 place(s)" in message and "\n  recently_played[0].track_id: Input should be a valid string (got 1)\n" in message
    assert "\n  recently_played[0].played_at: missing\n" in message and message.endswith("[1].artist_name: missing\n  … and 11 more")
