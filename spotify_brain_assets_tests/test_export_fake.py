"""The export import against the fake ReccoBeats over HTTP: rate limits, unknown tracks, interruptions.

An import paused by a long rate limit, and an import whose process is killed (SIGKILL) mid-way, are
each re-run and must end byte-for-byte like an uninterrupted import, without asking ReccoBeats for a
track it already answered (requests are counted on the fake).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from spotify_brain_assets.fakes import FakeServer, Fault, random_track_id
from spotify_brain_assets.storage.paths import DataPaths

from .conftest import REPO, materializations, run_job
from .spotify_fakes import resource

CLOCK = "2026-09-20T12:00:00Z"
N_TRACKS, UNKNOWN, BATCH = 120, 8, 5
IMPORT = {"ops": {"spotify_export": {"config": {"batch_size": BATCH, "checkpoint_seconds": 0}}}}
#: what an import stores; compared between interrupted and uninterrupted imports
RESULTS = ["history.parquet", "plays.parquet", "processed/export_plays.parquet", "unavailable_features.parquet", "cache/audio_features.parquet"]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """An extended-history export of 400 plays of 120 tracks; ReccoBeats knows all but 8."""
    rng = np.random.default_rng(5)
    ids = [random_track_id(rng) for _ in range(N_TRACKS)]
    ends = pd.Timestamp("2024-01-01T08:00:00Z") + pd.to_timedelta(np.cumsum(rng.integers(200, 4_000, 400)), unit="s")
    picks = rng.integers(0, N_TRACKS, 400)
    picks[:N_TRACKS] = np.arange(N_TRACKS)  # every track at least once
    records = [
        {
            "ts": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "ms_played": 180_000, "master_metadata_track_name": f"Song {i}",
            "master_metadata_album_artist_name": f"Band {i % 17}", "spotify_track_uri": f"spotify:track:{ids[i]}",
            "reason_start": "trackdone", "reason_end": "trackdone", "shuffle": False, "skipped": None,
            "offline": False, "offline_timestamp": int(end.timestamp()), "incognito_mode": False,
        }
        for i, end in zip(picks.tolist(), ends)
    ]
    folder = tmp_path_factory.mktemp("export") / "Spotify Extended Streaming History"
    folder.mkdir()
    (folder / "Streaming_History_Audio_2024_0.json").write_text(json.dumps(records[:250]))
    (folder / "Streaming_History_Audio_2024-2025_1.json").write_text(json.dumps(records[250:]))
    return folder, ids


def serve(fake: FakeServer, ids: list[str]) -> None:
    for n, track_id in enumerate(ids[UNKNOWN:]):
        fake.set_features(track_id, valence=round(n / N_TRACKS, 3), energy=0.4, tempo=80.0 + n)


def data_root_with(tmp_path, export, name: str):
    root = tmp_path / name
    shutil.copytree(export[0], root / "imports" / export[0].name)
    return root


def asked(fake: FakeServer) -> list[list[str]]:
    """The ids of each audio-features request, in order."""
    return [[i for v in r.query["ids"] for i in v.split(",")] for r in fake.requests_to("audio_features")]


def stored(root) -> dict[str, pd.DataFrame]:
    paths = DataPaths.at(root)
    out = {name: pd.read_parquet(paths.root / name) for name in RESULTS}
    out["cache/audio_features.parquet"] = out["cache/audio_features.parquet"].sort_values("track_id").reset_index(drop=True)
    return out


@pytest.fixture(scope="module")
def uninterrupted(export, tmp_path_factory):
    root = data_root_with(tmp_path_factory.mktemp("reference"), export, "data")
    import dagster as dg

    with FakeServer() as fake, dg.instance_for_test() as instance:
        serve(fake, export[1])
        result = run_job("import_export", instance, root, resource(fake, root, CLOCK, env=False), run_config=IMPORT)
        assert result.success
        assert len(asked(fake)) == -(-N_TRACKS // BATCH)
    return stored(root)


def assert_same(root, reference) -> None:
    for name, frame in stored(root).items():
        pd.testing.assert_frame_equal(frame, reference[name], obj=name)


def test_rate_limits_are_waited_out_and_unknown_tracks_are_recorded_with_their_plays(export, uninterrupted, tmp_path, instance):
    root = data_root_with(tmp_path, export, "data")
    with FakeServer() as fake:
        serve(fake, export[1])
        # three failures in a row: the client's fourth and last attempt gets through
        fake.inject("audio_features", Fault.rate_limited(retry_after=0))
        fake.inject("audio_features", Fault.rate_limited(retry_after=None))
        fake.inject("audio_features", Fault.server_error(503))
        result = run_job("import_export", instance, root, resource(fake, root, CLOCK, env=False), run_config=IMPORT)
        requests = asked(fake)
    assert result.success
    meta = materializations(result)["spotify_export"]
    assert meta["status"] == "complete" and meta["tracks_unknown_to_reccobeats"] == UNKNOWN
    assert len(requests) == -(-N_TRACKS // BATCH) + 3  # the first batch, asked again after each fault
    assert_same(root, uninterrupted)
    unavailable = uninterrupted["unavailable_features.parquet"]
    history = uninterrupted["history.parquet"]
    unknown = set(export[1][:UNKNOWN])
    assert set(unavailable["track_id"]) == unknown and not history["track_id"].isin(unknown).any()
    # every play of the export is in history or in the unavailable record, once
    assert len(history) + len(unavailable) == 400 and history["origin"].eq("export").all()


def test_an_import_paused_by_a_long_rate_limit_resumes_where_it_stopped(export, uninterrupted, tmp_path, instance):
    root = data_root_with(tmp_path, export, "data")
    paths = DataPaths.at(root)
    with FakeServer() as fake:
        serve(fake, export[1])
        # seven requests answered, then "come back in an hour" for as long as it takes
        fake.inject("audio_features", Fault.slow(0), times=7)
        fake.inject("audio_features", Fault.rate_limited(retry_after=3600), times=None)
        first = run_job("import_export", instance, root, resource(fake, root, CLOCK, env=False), run_config=IMPORT)
        assert first.success
        meta = materializations(first)["spotify_export"]
        assert meta["status"].startswith("paused") and "rate limited" in meta["status"]
        assert meta["feature_requests"] == 7 and meta["tracks_waiting"] == N_TRACKS - 7 * BATCH
        state = json.loads(paths.export_state.read_text())
        assert state["status"] == "paused" and state["tracks_waiting"] == N_TRACKS - 7 * BATCH
        partial = pd.read_parquet(paths.history)
        assert 0 < len(partial) < len(uninterrupted["history.parquet"])  # what is complete is already in history
        fake.clear_faults()
        second = run_job("import_export", instance, root, resource(fake, root, CLOCK, env=False), run_config=IMPORT)
        assert second.success and materializations(second)["spotify_export"]["status"] == "complete"
        requests = asked(fake)
    assert_same(root, uninterrupted)
    answered = requests[:7] + requests[8:]  # the eighth was answered 429
    counts = Counter(i for batch in answered for i in batch)
    assert max(counts.values()) == 1 and set(counts) == set(export[1])


def test_an_import_killed_mid_way_continues_without_fetching_a_track_twice(export, uninterrupted, tmp_path, instance):
    root = data_root_with(tmp_path, export, "data")
    script = textwrap.dedent(
        """
        import sys
        import dagster as dg
        from spotify_brain_assets.definitions import defs
        from spotify_brain_assets.resources import DataStore
        from spotify_brain_assets.sources.spotify_resource import SpotifyResource

        root, url, clock, config = sys.argv[1:5]
        source = SpotifyResource(client_id="id", client_secret="secret", refresh_token="token", reccobeats_url=url,
                                 api_url=url, accounts_url=url, token_file=root + "/.secrets/t.json", clock=clock)
        defs.resolve_job_def("import_export").execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), run_config=__import__("json").loads(config),
            resources={"store": DataStore(root=root, timezone="UTC"), "listening_source": source},
        )
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "DAGSTER_"))}
    with FakeServer() as fake:
        serve(fake, export[1])
        fake.inject("audio_features", Fault.slow(0.1), times=None)  # a slow service: time to kill mid-way
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(root), fake.reccobeats_url, CLOCK, json.dumps(IMPORT)],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 120
        while len(fake.requests_to("audio_features")) < 9 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err[-2000:]
        killed_requests = asked(fake)
        assert 9 <= len(killed_requests) < -(-N_TRACKS // BATCH)
        paths = DataPaths.at(root)
        assert not paths.export_plays.exists() and not paths.history.exists()  # nothing half-imported
        saved = pd.read_parquet(paths.features_cache)
        assert len(saved) >= (len(killed_requests) - 2) * BATCH - UNKNOWN  # every answered batch but the last is saved

        fake.clear_faults()
        rerun = run_job("import_export", instance, root, resource(fake, root, CLOCK, env=False), run_config=IMPORT)
        assert rerun.success
        requests = asked(fake)
    assert_same(root, uninterrupted)
    counts = Counter(i for batch in requests for i in batch)
    twice = {i for i, n in counts.items() if n > 1}
    # only the batch in flight (or answered but not yet saved) when the process died is asked again
    assert len(twice) <= BATCH and any(twice <= set(batch) for batch in killed_requests[-2:])
    assert set(counts) == set(export[1])
