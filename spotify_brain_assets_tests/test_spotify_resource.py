"""SpotifyResource and its source: configuration from the environment, quota skips, ReccoBeats outages."""

import dagster as dg
import pandas as pd
import pytest

from spotify_brain_assets.fakes import FakeServer, Fault, make_track
from spotify_brain_assets.resources import listening_source_from_env
from spotify_brain_assets.sources.base import ListeningSource, SourceUnavailable
from spotify_brain_assets.sources.spotify_resource import SpotifyResource

from .spotify_fakes import resource

pytestmark = pytest.mark.fast  # no subprocess, no browser, no Dagster run

CLOCK = "2026-09-20T23:00:00Z"


@pytest.fixture
def fake():
    with FakeServer() as server:
        server.set_clock(CLOCK)
        yield server


def test_the_source_follows_the_protocol_and_reads_urls_from_the_environment(fake, monkeypatch, tmp_path):
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SPOTIFY_BRAIN_SOURCE", raising=False)
    monkeypatch.setenv("SPOTIFY_BRAIN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SPOTIFY_REFRESH_TOKEN_AUTHORIZED_AT", "2026-08-01T10:00:00+00:00")
    configured = listening_source_from_env()
    assert isinstance(configured, SpotifyResource)
    # the UI shows the variable each setting came from
    for field, name in [("api_url", "SPOTIFY_API_URL"), ("accounts_url", "SPOTIFY_ACCOUNTS_URL"),
                        ("reccobeats_url", "RECCOBEATS_API_URL"), ("authorized_at", "SPOTIFY_REFRESH_TOKEN_AUTHORIZED_AT")]:
        assert isinstance(getattr(configured, field), dg.EnvVar) and getattr(configured, field).env_var_name == name
    with configured.process_config_and_initialize_cm() as resolved:  # dg.EnvVar resolved, as in a run
        fake.add_play(make_track(name="Hello", artists=["Band"]), "2026-09-20T22:00:00Z")
        source = resolved.source("Europe/Stockholm")
        assert isinstance(source, ListeningSource) and source.origin == "spotify"
        assert resolved.urls() == {"accounts": fake.accounts_url, "api": fake.api_url, "reccobeats": fake.reccobeats_url}
        assert resolved.token_path() == tmp_path / "data" / ".secrets" / "spotify_refresh_token.json"
        assert resolved.authorization_date() == "2026-08-01T10:00:00+00:00"
        assert len(source.recently_played(None)) == 1 and source.backfill(pd.Timestamp(CLOCK).to_pydatetime()) == []
    assert resolved._sources == []  # teardown closed the run's HTTP sessions
    assert "fake-client-secret" not in repr(resolved)
    monkeypatch.delenv("SPOTIFY_API_URL")
    unset = listening_source_from_env()
    assert unset.api_url is None and unset.urls()["api"] == "https://api.spotify.com"  # an unset variable: the default


def test_quota_exceeded_makes_the_source_unavailable(fake, tmp_path):
    fake.inject("recently_played", Fault.rate_limited(retry_after=None, quota=True))
    source = resource(fake, tmp_path, CLOCK, env=False).source("UTC")
    with pytest.raises(SourceUnavailable, match="QUOTA_EXCEEDED"):
        source.recently_played(None)


def test_a_reccobeats_outage_answers_no_features_so_plays_wait_as_pending(fake, tmp_path):
    fake.set_features("5FVd6KXrgO9B3JPmC8OPst")
    fake.inject("audio_features", Fault.server_error(503), times=None)
    source = resource(fake, tmp_path, CLOCK, env=False).source("UTC")
    assert source.audio_features(["5FVd6KXrgO9B3JPmC8OPst"]) == []
    assert "answered 503" in source.features_down
    asked = len(fake.requests_to("audio_features"))
    assert source.audio_features(["5FVd6KXrgO9B3JPmC8OPst"]) == []  # not asked again in this run
    assert len(fake.requests_to("audio_features")) == asked
    fake.clear_faults()
    assert len(resource(fake, tmp_path, CLOCK, env=False).source("UTC").audio_features(["5FVd6KXrgO9B3JPmC8OPst"])) == 1


def test_the_clock_freezes_now(monkeypatch):
    assert SpotifyResource(client_id="a", client_secret="b", refresh_token="c", clock=CLOCK).now() == pd.Timestamp(CLOCK)
    naive = SpotifyResource(client_id="a", client_secret="b", refresh_token="c", clock="2026-09-20T23:00:00")
    assert naive.now() == pd.Timestamp(CLOCK)  # a naive instant is UTC
    for name in ("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET", "SPOTIFY_REFRESH_TOKEN"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("SPOTIFY_BRAIN_CLOCK", "half past nine")
    with pytest.raises(ValueError, match="'half past nine' \\(SPOTIFY_BRAIN_CLOCK\\) is not an ISO instant"):
        listening_source_from_env()


def test_recommendations_are_steered_by_a_mood_centroid_over_http(fake, tmp_path):
    calm = ["1" * 22, "2" * 22, "3" * 22]
    loud = ["4" * 22, "5" * 22]
    for track_id in calm:
        fake.set_features(track_id, energy=0.2, valence=0.3, acousticness=0.9)
    for track_id in loud:
        fake.set_features(track_id, energy=0.95, valence=0.8, acousticness=0.05)
    source = resource(fake, tmp_path, CLOCK, env=False).source("UTC")
    centroid = {"valence": 0.8, "energy": 0.9, "danceability": 0.5, "acousticness": 0.1, "instrumentalness": 0.0, "tempo_norm": 0.5}
    items = source.recommendations([calm[0]], centroid, size=2)
    assert [i["href"].rsplit("/", 1)[-1] for i in items] == loud  # the centroid wins over the seed's own mood
    asked = fake.requests_to("recommendation")[-1]
    assert asked.query["tempo"] == ["125.0"] and "tempo_norm" not in asked.query
