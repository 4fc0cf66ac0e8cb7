"""The WARN check on the refresh token's age (Spotify expires refresh tokens 6 months after authorization)."""

import dagster as dg
import pytest

from spotify_brain_assets.defs.ingestion.credentials import spotify_refresh_token_age
from spotify_brain_assets.resources import DemoListenerResource
from spotify_brain_assets.sources.spotify_resource import SpotifyResource

pytestmark = pytest.mark.fast  # no subprocess, no browser, no Dagster run

NOW = "2026-09-20T12:00:00Z"


def spotify(authorized_at):
    return SpotifyResource(client_id="id", client_secret="secret", refresh_token="token", authorized_at=authorized_at, clock=NOW)


def test_a_recent_token_passes_with_its_age():
    result = spotify_refresh_token_age(listening_source=spotify("2026-06-01T12:00:00+00:00"))
    assert result.passed and result.metadata["age_days"].value == 111.0
    assert result.metadata["days_until_expiry"].value == 71.0


@pytest.mark.parametrize("authorized_at, days", [("2026-04-20", 153.5), ("2026-02-01T00:00:00Z", 231.5)])
def test_a_token_older_than_five_months_warns_with_the_fix(authorized_at, days):
    result = spotify_refresh_token_age(listening_source=spotify(authorized_at))
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert f"{days:g} days old" in result.description and "spotify-brain authorize" in result.description


@pytest.mark.parametrize("authorized_at", [None, "last spring"])
def test_an_unknown_authorization_date_warns(authorized_at, monkeypatch):
    monkeypatch.delenv("SPOTIFY_REFRESH_TOKEN_AUTHORIZED_AT", raising=False)
    result = spotify_refresh_token_age(listening_source=spotify(authorized_at))
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert "SPOTIFY_REFRESH_TOKEN_AUTHORIZED_AT" in result.description


def test_the_date_comes_from_the_environment_by_default(monkeypatch):
    monkeypatch.setenv("SPOTIFY_REFRESH_TOKEN_AUTHORIZED_AT", "2026-09-01T00:00:00+00:00")
    assert spotify_refresh_token_age(listening_source=spotify(None)).passed


def test_the_demo_listener_has_no_token_to_age():
    assert spotify_refresh_token_age(listening_source=DemoListenerResource()).passed
