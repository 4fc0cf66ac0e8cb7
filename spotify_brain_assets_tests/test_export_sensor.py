"""The sensor that starts `import_export` when an export lands in imports/, and resumes a paused import."""

import json
import os

import dagster as dg
import pandas as pd
import pytest

from spotify_brain_assets.definitions import defs
from spotify_brain_assets.imports.discover import discover
from spotify_brain_assets.storage.paths import DataPaths

from .conftest import store_for

SENSOR = defs.resolve_sensor_def("spotify_export_sensor")
pytestmark = pytest.mark.fast  # no subprocess, no browser, no Dagster run


def tick(root, cursor=None):
    context = dg.build_sensor_context(cursor=cursor, resources={"store": store_for(root)})
    return SENSOR(context)


def requests_of(result) -> list[dg.RunRequest]:
    if isinstance(result, dg.RunRequest):
        return [result]
    return list(getattr(result, "run_requests", None) or [])


def test_new_files_start_an_import_once_they_stop_changing(data_root):
    paths = DataPaths.at(data_root)
    assert isinstance(tick(data_root), dg.SkipReason)  # no imports/ folder yet
    paths.imports.mkdir()
    export = paths.imports / "Streaming_History_Audio_2025_0.json"
    export.write_text("[]")
    first = tick(data_root)
    assert not requests_of(first) and first.cursor  # seen once: maybe still being copied
    export.write_text("[ ]")  # the copy grew meanwhile
    os.utime(export, ns=(export.stat().st_mtime_ns + 10**9,) * 2)
    second = tick(data_root, first.cursor)
    assert not requests_of(second) and second.cursor != first.cursor
    third = tick(data_root, second.cursor)
    (request,) = requests_of(third)
    assert request.run_key == f"import:{second.cursor}" and SENSOR.job_name == "import_export"

    # once imported (the state records these files), nothing more happens
    versions = discover(paths.imports).versions()
    paths.processed.mkdir()
    state = {"status": "complete", "path": str(paths.imports), "files": versions, "updated_at": pd.Timestamp.now(tz="UTC").isoformat()}
    paths.export_state.write_text(json.dumps(state))
    assert isinstance(tick(data_root, third.cursor), dg.SkipReason)


def test_a_paused_import_is_resumed_after_a_while(data_root):
    paths = DataPaths.at(data_root)
    paths.imports.mkdir()
    (paths.imports / "endsong_0.json").write_text("[]")
    paths.processed.mkdir()
    base = {"status": "paused", "reason": "RateLimited: 429", "path": str(paths.imports), "files": discover(paths.imports).versions()}
    recent = pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=2)
    paths.export_state.write_text(json.dumps({**base, "updated_at": recent.isoformat()}))
    waiting = tick(data_root)
    assert isinstance(waiting, dg.SkipReason) and "paused" in waiting.skip_message
    earlier = pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=20)
    paths.export_state.write_text(json.dumps({**base, "updated_at": earlier.isoformat()}))
    (request,) = requests_of(tick(data_root))
    assert request.run_key == f"resume:{earlier.isoformat()}"


def test_a_zip_still_being_copied_is_waited_for(data_root):
    paths = DataPaths.at(data_root)
    paths.imports.mkdir()
    (paths.imports / "my_spotify_data.zip").write_bytes(b"PK\x03\x04 the first megabytes")
    result = tick(data_root)
    assert isinstance(result, dg.SkipReason) and "my_spotify_data.zip" in result.skip_message
