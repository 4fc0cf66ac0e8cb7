"""The Spotify listening source as a Dagster resource: Spotify for plays, ReccoBeats for audio features."""

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from ..resources import ListeningSourceResource
from ..storage.paths import data_root_from_env
from .base import SourceUnavailable
from .http import HttpClient, QuotaExceeded, RateLimited, RetryPolicy, ServiceFailing, Timeouts
from .oauth import RefreshTokenStore, TokenManager
from .reccobeats import TARGETS as RECOMMENDATION_TARGETS
from .reccobeats import ReccoBeatsClient
from .spotify import SpotifyClient

ACCOUNTS_URL_ENV, DEFAULT_ACCOUNTS_URL = "SPOTIFY_ACCOUNTS_URL", "https://accounts.spotify.com"
API_URL_ENV, DEFAULT_API_URL = "SPOTIFY_API_URL", "https://api.spotify.com"
RECCOBEATS_URL_ENV, DEFAULT_RECCOBEATS_URL = "RECCOBEATS_API_URL", "https://api.reccobeats.com"
AUTHORIZED_AT_ENV = "SPOTIFY_REFRESH_TOKEN_AUTHORIZED_AT"
#: where a rotated refresh token waits for the next run, relative to the data root
TOKEN_FILE = Path(".secrets") / "spotify_refresh_token.json"


@dataclass
class SpotifySource:
    """A ListeningSource over HTTP. A ReccoBeats outage leaves plays pending instead of failing the run."""

    spotify: SpotifyClient
    reccobeats: ReccoBeatsClient
    log: logging.Logger
    origin: str = "spotify"
    features_down: str | None = field(default=None)  # why ReccoBeats was given up on in this run

    def recently_played(self, after: datetime | None) -> list[dict[str, Any]]:
        try:
            return self.spotify.recently_played(after)
        except QuotaExceeded as exc:
            raise SourceUnavailable(f"{exc}. Nothing was fetched; the next slot asks again.") from None

    def audio_features(self, track_ids: list[str]) -> list[dict[str, Any]]:
        # the plays are in hand now and Spotify keeps only 50: rather than fail the run and risk losing
        # them, plays whose features cannot be fetched wait as pending and are retried with backoff
        if self.features_down:
            return []
        try:
            return self.reccobeats.audio_features(track_ids)
        except (RateLimited, ServiceFailing) as exc:
            self.features_down = str(exc)
            self.log.warning(f"{exc}: plays without features wait in pending_features.parquet and are retried later")
            return []

    def recommendations(self, seed_ids: list[str], targets: dict[str, float], size: int = 10) -> list[dict[str, Any]]:
        """ReccoBeats' recommendations like `seed_ids`, steered toward a mood centroid's features."""
        steer = {k: v for k, v in targets.items() if k in RECOMMENDATION_TARGETS}
        if "tempo_norm" in targets and "tempo" not in steer:
            steer["tempo"] = float(targets["tempo_norm"]) * 250.0
        return self.reccobeats.recommendations(seed_ids[:5], size=size, **steer)

    def backfill(self, before: datetime) -> list[dict[str, Any]]:
        return []  # the API keeps only the newest 50 plays; older listening comes from a data export

    def close(self) -> None:
        self.spotify.api.close()
        self.spotify.tokens.close()
        self.reccobeats.http.close()


class SpotifyResource(ListeningSourceResource):
    """Your Spotify listening: recently-played plays from Spotify, audio features from ReccoBeats.

    Credentials come from the environment (SPOTIFY_CLIENT_ID, SPOTIFY_CLIENT_SECRET,
    SPOTIFY_REFRESH_TOKEN, written by `spotify-brain authorize`); so do the base URLs
    (SPOTIFY_ACCOUNTS_URL, SPOTIFY_API_URL, RECCOBEATS_API_URL) when they are set, else the real services.
    """

    client_id: str = Field(repr=False)
    client_secret: str = Field(repr=False)
    refresh_token: str = Field(repr=False)
    accounts_url: str | None = None  # None: https://accounts.spotify.com
    api_url: str | None = None  # None: https://api.spotify.com
    reccobeats_url: str | None = None  # None: https://api.reccobeats.com
    token_file: str | None = None  # rotated refresh token; None: <data root>/.secrets/spotify_refresh_token.json
    authorized_at: str | None = None  # ISO date of authorization; None: $SPOTIFY_REFRESH_TOKEN_AUTHORIZED_AT
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    max_attempts: int = 5  # per request, the first included
    backoff_s: float = 1.0  # first wait after a 5xx or network error, doubling, with jitter
    backoff_max_s: float = 30.0
    retry_after_floor_s: float = 1.0  # wait when a 429 carries `Retry-After: 0` or none
    max_total_wait_s: float = 120.0  # all retry waits of one client in one run
    # `clock` (inherited): an ISO instant that freezes "now", e.g. $SPOTIFY_BRAIN_CLOCK for replays

    _sources: list = PrivateAttr(default_factory=list)

    def urls(self) -> dict[str, str]:
        return {
            "accounts": self.accounts_url or DEFAULT_ACCOUNTS_URL,
            "api": self.api_url or DEFAULT_API_URL,
            "reccobeats": self.reccobeats_url or DEFAULT_RECCOBEATS_URL,
        }

    def token_path(self) -> Path:
        return Path(self.token_file) if self.token_file else Path(data_root_from_env()).expanduser() / TOKEN_FILE

    def authorization_date(self) -> str | None:
        return self.authorized_at or os.environ.get(AUTHORIZED_AT_ENV) or None

    def source(self, timezone: str) -> SpotifySource:
        log = dg.get_dagster_logger("spotify")
        urls = self.urls()
        timeouts = Timeouts(self.connect_timeout_s, self.read_timeout_s)
        retry = RetryPolicy(self.max_attempts, self.backoff_s, self.backoff_max_s, self.retry_after_floor_s, self.max_total_wait_s)

        def client(service: str, url: str) -> HttpClient:
            return HttpClient(service, url, timeouts=timeouts, retry=retry, logger=log)

        tokens = TokenManager(
            client("spotify accounts", urls["accounts"]),
            self.client_id,
            self.client_secret,
            self.refresh_token,
            RefreshTokenStore(self.token_path()),
        )
        source = SpotifySource(SpotifyClient(client("spotify", urls["api"]), tokens), ReccoBeatsClient(client("reccobeats", urls["reccobeats"])), log)
        self._sources.append(source)
        return source

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        while self._sources:
            self._sources.pop().close()
