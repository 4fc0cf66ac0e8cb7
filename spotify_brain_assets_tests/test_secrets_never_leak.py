"""Failed `update` runs against the fake: nothing stored changes, the error says what to do, and no
credential appears in the event log, Python logs, stored files or the instance's storage."""

import logging
import shutil
from pathlib import Path

import dagster as dg
import pytest

from spotify_brain_assets.fakes import FakeServer, Fault, make_track

from .conftest import run_job, step_errors
from .spotify_fakes import leaks_in_files, leaks_in_run, resource, run_text, secrets_of
from .test_update_against_fake import snapshot

CLOCK = "2026-09-20T12:00:00+00:00"
LATER = "2026-09-20T12:30:00+00:00"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A fake with some listening, and a data root after one good slot (copied by each test)."""
    with FakeServer() as fake, dg.instance_for_test() as instance, pytest.MonkeyPatch.context() as mp:
        for name, value in fake.env().items():
            mp.setenv(name, value)
        for i in range(12):
            track = make_track(name=f"Song {i}", artists=["Band"])
            fake.add_play(track, f"2026-09-20T11:{i * 4:02d}:00Z")
            fake.set_features(track["id"], valence=i / 12)
        fake.set_clock(CLOCK)
        root = tmp_path_factory.mktemp("prepared") / "data"
        root.mkdir()
        assert run_job("update", instance, root, resource(fake, root, CLOCK), "20260920_120000").success
        fake.add_play(make_track(name="After", artists=["Band"]), "2026-09-20T12:20:00Z")
        fake.set_clock(LATER)
        yield fake, root


@pytest.mark.parametrize(
    "endpoint, fault, message",
    [
        ("token", Fault.invalid_grant("Refresh token expired"), "Run `spotify-brain authorize` to authorize Spotify Brain again"),
        ("token", Fault.invalid_grant("Refresh token revoked"), "invalid_grant: Refresh token revoked"),
        ("token", Fault.invalid_client(), "Check SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET"),
        ("recently_played", Fault.token_expired(), "answered 401: Missing/invalid/expired access token"),
        ("recently_played", Fault.server_error(503), "answered 503 on all 4 attempts"),
        ("recently_played", Fault.slow(0.4), "timed out (ReadTimeout) on all 4 attempts"),
        ("recently_played", Fault.rate_limited(retry_after=120), "would exceed the 0.5 s this run may spend waiting"),
        ("recently_played", Fault.malformed_json(), "spotify GET /v1/me/player/recently-played answered 200 with a body that is not valid JSON"),
        ("audio_features", Fault.malformed_json(), "reccobeats GET /v1/audio-features answered 200 with a body that is not valid JSON"),
    ],
    ids=["expired", "revoked", "invalid-client", "401-twice", "503", "timeouts", "429-beyond-cap", "malformed-spotify", "malformed-reccobeats"],
)
def test_a_failed_run_changes_nothing_and_leaks_nothing(prepared, tmp_path, instance, monkeypatch, caplog, quick_retries, endpoint, fault, message):
    fake, prepared_root = prepared
    root = tmp_path / "data"
    shutil.copytree(prepared_root, root)
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    before = snapshot(root)
    fake.inject(endpoint, fault, times=None)
    caplog.set_level(logging.DEBUG)  # urllib3 and everything else, at their most talkative
    try:
        result = run_job("update", instance, root, resource(fake, root, LATER), "20260920_123000", raise_on_error=False)
    finally:
        fake.clear_faults()
    assert not result.success
    assert message in step_errors(result) and message in run_text(instance, result.run_id)  # the scan sees errors
    assert snapshot(root) == before  # no partial ingestion file, no change to history
    secrets = secrets_of(fake)
    leaks = leaks_in_run(instance, result.run_id, secrets) + leaks_in_files(root, secrets)
    leaks += leaks_in_files(Path(instance.root_directory), secrets)
    leaks += [f"{name} in Python logs" for name, value in secrets.items() if value in caplog.text]
    assert leaks == []


def test_the_scan_would_see_a_leak(prepared, tmp_path):
    """The scanners find a secret where one is: a scan that cannot fail proves nothing."""
    fake, _ = prepared
    (tmp_path / "notes.txt").write_text(f"oops {fake.client_secret}")
    assert leaks_in_files(tmp_path, secrets_of(fake)) == [f"client secret in {tmp_path / 'notes.txt'}"]
