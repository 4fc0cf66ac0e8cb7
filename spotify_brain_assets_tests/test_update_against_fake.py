"""The `update` job, slot after slot over a simulated day of listening, against the fake over HTTP.

Faults are injected along the way (rate limits, an access token expiring mid-run, a slow answer, a
ReccoBeats outage, 5xx, invalid_grant, a spent quota, malformed JSON, late plays, a rotating refresh
token). At the end history must hold exactly the plays the fake listed whose tracks have features,
none lost and none twice, and every other listed play must be recorded as unavailable.
"""

import hashlib
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spotify_brain_assets.fakes import FakeServer, Fault, make_track
from spotify_brain_assets.plays.schema import AUDIO_FEATURES, KEY
from spotify_brain_assets.resources import listening_source_from_env
from spotify_brain_assets.sources.spotify_resource import SpotifyResource
from spotify_brain_assets.storage.paths import DataPaths

from .conftest import materializations, run_job, step_errors
from .spotify_fakes import leaks_in_files, leaks_in_run, resource, secrets_of

DAY = pd.Timestamp("2026-09-20T00:00:00Z")
#: (start, plays): morning, lunch, evening, night; the evening and night fill most of the 50-play window
SESSIONS = [("07:10", 14), ("12:05", 9), ("17:20", 28), ("21:00", 34)]
N_TRACKS = 70
NEVER_FEATURES = slice(0, 5)  # ReccoBeats never knows these
LATE_FEATURES = slice(5, 9)  # ReccoBeats analyses these only in the evening
ALBUMLESS = slice(9, 11)  # recently-played lacks their album: looked up with GET /v1/tracks/{id}


def listening_day(fake: FakeServer, seed: int = 11) -> tuple[pd.DataFrame, list[dict]]:
    """A day of plays loaded into the fake; returns every play (listed or not) and the tracks."""
    rng = np.random.default_rng(seed)
    tracks = [
        make_track(name=f"Song {i}", artists=[f"Band {i % 9}"], album=f"Album {i % 13}", duration_ms=int(rng.integers(150_000, 280_000)))
        for i in range(N_TRACKS)
    ]
    frames = []
    for start, n in SESSIONS:
        pick = rng.integers(0, N_TRACKS, n)
        durations = np.array([tracks[i]["duration_ms"] for i in pick])
        skipped = rng.random(n) < 0.08
        played_ms = np.where(skipped, rng.integers(5_000, 30_000, n), durations)
        ends = DAY + pd.Timedelta(start + ":00") + pd.to_timedelta(np.cumsum(played_ms + rng.integers(500, 8_000, n)), unit="ms")
        late = rng.random(n) < 0.12
        visible = ends + pd.to_timedelta(np.where(late, rng.integers(20, 80, n), 0), unit="min")
        frames.append(pd.DataFrame({"track": pick, "played_at": ends.floor("ms"), "visible_at": visible.floor("ms"), "ms_played": played_ms}))
    plays = pd.concat(frames, ignore_index=True)
    plays["track_id"] = [tracks[i]["id"] for i in plays["track"]]
    albumless = {t["id"] for t in tracks[ALBUMLESS]}
    for row in plays.itertuples():  # ~85 plays: the fake's API takes one at a time
        fake.add_play(tracks[row.track], row.played_at, visible_at=row.visible_at, ms_played=int(row.ms_played),
                      omit=("album",) if row.track_id in albumless else ())
    for n, track in enumerate(tracks):
        if n >= LATE_FEATURES.stop:
            fake.set_features(track["id"], valence=round(n / N_TRACKS, 3), energy=round(1 - n / N_TRACKS, 3), tempo=90.0 + n)
    return plays.assign(listed=plays["ms_played"] > 30_000), tracks


#: what ingestion and history keep: a failed or skipped run must not change any of it
STORED = ("ingestions", "cache", "history.parquet", "history.previous.parquet", "plays.parquet", "plays_ledger.json",
          "pending_features.parquet", "unavailable_features.parquet")


def snapshot(root: Path) -> dict[str, str]:
    """Content hashes of the ingestion and history layers (reports downstream may refresh on any run)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] in STORED
    }


@pytest.fixture
def fake(monkeypatch):
    with FakeServer() as server:
        server.rotate_refresh_tokens = True  # the stored rotation must carry from run to run
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server


def test_a_day_of_slots_with_faults_keeps_every_play_exactly_once(fake, instance, data_root):
    plays, tracks = listening_day(fake)
    paths = DataPaths.at(data_root)
    runs = []

    def slot(moment: str, expect: str = "success"):
        clock = pd.Timestamp(moment)
        fake.set_clock(clock)
        before = snapshot(data_root)
        result = run_job("update", instance, data_root, resource(fake, data_root, clock.isoformat()),
                         clock.strftime("%Y%m%d_%H%M%S"), raise_on_error=False)
        runs.append(result.run_id)
        fake.clear_faults()
        if expect == "failure":
            assert not result.success
            assert snapshot(data_root) == before, "a failed run changed what is stored"
            return step_errors(result)
        assert result.success, step_errors(result)
        meta = materializations(result)
        if expect == "skipped":
            assert snapshot(data_root) == before and "plays_in_file" not in meta["ingestions"]  # nothing fetched, no file
            return meta["ingestions"]["skipped"]
        return meta

    fake.inject("recently_played", Fault.rate_limited(retry_after=0))
    fake.inject("track", Fault.token_expired())  # the access token expires mid-run
    first = slot("2026-09-20T08:00:00Z")
    assert first["ingestions"]["plays_in_file"] > 0 and first["ingestions"]["origin"] == "spotify"

    fake.inject("recently_played", Fault.slow(0.6))  # slower than the 0.25 s read timeout
    fake.inject("audio_features", Fault.server_error(502), times=2)
    slot("2026-09-20T10:00:00Z")

    fake.inject("audio_features", Fault.server_error(503), times=None)  # ReccoBeats is down for this run
    outage = slot("2026-09-20T13:00:00Z")
    assert outage["ingestions"]["pending_features"] >= outage["ingestions"]["new_plays"] > 0

    fake.inject("token", Fault.invalid_grant("Refresh token revoked"))
    assert "spotify-brain authorize" in slot("2026-09-20T15:00:00Z", "failure")

    fake.inject("recently_played", Fault.rate_limited(retry_after=None, quota=True))
    assert "QUOTA_EXCEEDED" in slot("2026-09-20T17:00:00Z", "skipped")

    fake.inject("recently_played", Fault.malformed_json())
    assert "GET /v1/me/player/recently-played answered 200 with a body that is not valid JSON" in slot("2026-09-20T18:30:00Z", "failure")

    for n, track in enumerate(tracks[LATE_FEATURES]):  # ReccoBeats has analysed them by now
        fake.set_features(track["id"], valence=0.5, energy=0.4 + n / 100, tempo=100.0)
    slot("2026-09-20T20:00:00Z")
    fake.inject("audio_features", Fault.rate_limited(retry_after=None))
    slot("2026-09-20T22:00:00Z")
    slot("2026-09-21T00:30:00Z")
    last = slot("2026-09-28T12:00:00Z")  # a week on: pending plays are retried one last time
    assert last["ingestions"]["newly_unavailable"] > 0

    # history holds exactly the listed plays whose tracks have features, each once
    history = pd.read_parquet(paths.history)
    listed = plays[plays["listed"]]
    never = {t["id"] for t in tracks[NEVER_FEATURES]}
    want = listed[~listed["track_id"].isin(never)]
    assert not history.duplicated(KEY).any()
    assert sorted(map(tuple, history[KEY].astype(str).values)) == sorted(map(tuple, want[KEY].astype(str).values))
    assert len(history) == len(want) > 60
    # ... with the fake's features and the track objects' metadata
    by_id = {t["id"]: t for t in tracks}
    assert (history["track_name"] == history["track_id"].map(lambda i: by_id[i]["name"])).all()
    assert history["image_url"].str.startswith("https://i.scdn.co/image/").all()
    assert not history[AUDIO_FEATURES].isna().any().any()
    assert set(history["origin"]) == {"spotify"}
    # the others are recorded, not dropped
    unavailable = pd.read_parquet(paths.unavailable_features)
    assert sorted(map(tuple, unavailable[KEY].astype(str).values)) == sorted(
        map(tuple, listed[listed["track_id"].isin(never)][KEY].astype(str).values)
    )
    assert len(pd.read_parquet(paths.pending_features)) == 0
    # Development Mode: never the batch lookup; single lookups only for the album-less tracks
    assert fake.requests_to("tracks_batch") == []
    assert {r.path.rsplit("/", 1)[1] for r in fake.requests_to("track")} == {t["id"] for t in tracks[ALBUMLESS]} & set(listed["track_id"])
    assert max(len(r.query["ids"]) for r in fake.requests_to("audio_features")) <= 40
    # the rotated refresh token waits, private, for the next run
    token_file = data_root / ".secrets" / "spotify_refresh_token.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and fake.refresh_tokens[-1] in token_file.read_text()
    # no credential anywhere: event logs, metadata, errors, stored files, the instance's own storage
    secrets = secrets_of(fake)
    assert len(secrets) > 10
    leaks = [leak for run_id in runs for leak in leaks_in_run(instance, run_id, secrets)]
    leaks += leaks_in_files(data_root, secrets, skip=(token_file,))
    leaks += leaks_in_files(Path(instance.root_directory), secrets)
    assert leaks == []


def test_spotify_brain_clock_freezes_the_spotify_source_so_the_7_day_rule_can_be_replayed(fake, monkeypatch, instance, data_root):
    monkeypatch.setenv("SPOTIFY_BRAIN_DATA_DIR", str(data_root))
    monkeypatch.delenv("SPOTIFY_BRAIN_SOURCE", raising=False)
    analysed, unanalysed = make_track(name="Analysed"), make_track(name="Never analysed")
    fake.set_features(analysed["id"])
    fake.add_play(analysed, "2026-09-20T10:00:00Z")
    waiting = fake.add_play(unanalysed, "2026-09-20T10:05:00Z")

    def slot(moment: str) -> dict:
        fake.set_clock(moment)
        monkeypatch.setenv("SPOTIFY_BRAIN_CLOCK", moment)
        source = listening_source_from_env()
        assert isinstance(source, SpotifyResource) and source.clock.env_var_name == "SPOTIFY_BRAIN_CLOCK"
        result = run_job("update", instance, data_root, source, pd.Timestamp(moment).strftime("%Y%m%d_%H%M%S"))
        return materializations(result)["ingestions"]

    assert slot("2026-09-20T11:00:00Z")["pending_features"] == 1
    day_later = slot("2026-09-21T11:00:00Z")  # retried with backoff, still waiting
    assert day_later["retried_pending"] == 1 and day_later["newly_unavailable"] == 0
    assert slot("2026-09-27T11:30:00Z")["newly_unavailable"] == 1  # 7 days after it was first seen
    unavailable = pd.read_parquet(DataPaths.at(data_root).unavailable_features)
    assert unavailable["played_at"].tolist() == [waiting]
    assert unavailable["first_seen_at"].tolist() == [pd.Timestamp("2026-09-20T11:00:00Z")]  # the frozen clock, not the wall's
    assert len(pd.read_parquet(DataPaths.at(data_root).pending_features)) == 0


def attempts(result, step: str = "ingestions") -> int:
    return 1 + sum(e.event_type_value == "STEP_RESTARTED" and e.step_key == step for e in result.all_events)


def test_an_outage_longer_than_the_clients_retries_is_retried_by_dagster_and_other_errors_are_not(fake, instance, data_root, quick_retries):
    track = make_track(name="Hello")
    fake.set_features(track["id"])
    fake.add_play(track, "2026-09-20T07:00:00Z")
    moment = pd.Timestamp("2026-09-20T08:00:00Z")
    fake.set_clock(moment)
    source = resource(fake, data_root, moment.isoformat())
    fake.inject("recently_played", Fault.server_error(503), times=4)  # every attempt of the step's first try
    result = run_job("update", instance, data_root, source, "20260920_080000", raise_on_error=False)
    assert result.success and attempts(result) == 2, step_errors(result)
    assert len(pd.read_parquet(DataPaths.at(data_root).history)) == 1

    before = snapshot(data_root)
    fake.inject("token", Fault.invalid_grant("Refresh token revoked"), times=None)
    result = run_job("update", instance, data_root, source, "20260920_083000", raise_on_error=False)
    assert not result.success and attempts(result) == 1  # the same on every attempt: fails at once
    assert "spotify-brain authorize" in step_errors(result) and snapshot(data_root) == before
