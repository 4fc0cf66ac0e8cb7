"""Helpers for tests that talk to the fake Spotify + ReccoBeats server over HTTP."""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg

from spotify_brain_assets.fakes import FakeServer
from spotify_brain_assets.sources.http import HttpClient, RetryPolicy, Timeouts
from spotify_brain_assets.sources.oauth import RefreshTokenStore, TokenManager
from spotify_brain_assets.sources.reccobeats import ReccoBeatsClient
from spotify_brain_assets.sources.spotify import SpotifyClient
from spotify_brain_assets.sources.spotify_resource import SpotifyResource

#: tiny waits so that no test sleeps for seconds; the cap still bounds everything
FAST = RetryPolicy(max_attempts=4, backoff_s=0.002, backoff_max_s=0.02, retry_after_floor_s=0.002, max_total_wait_s=0.5)
TIMEOUTS = Timeouts(connect_s=1.0, read_s=0.25)
LOG = logging.getLogger("spotify_brain_tests")


def http(service: str, url: str, retry: RetryPolicy = FAST) -> HttpClient:
    return HttpClient(service, url, timeouts=TIMEOUTS, retry=retry, logger=LOG)


def tokens(fake: FakeServer, store_path: Path | None = None, refresh_token: str | None = None) -> TokenManager:
    return TokenManager(
        http("spotify accounts", fake.accounts_url),
        fake.client_id,
        fake.client_secret,
        refresh_token or fake.refresh_token,
        RefreshTokenStore(store_path) if store_path else None,
    )


def spotify_client(fake: FakeServer, store_path: Path | None = None) -> SpotifyClient:
    return SpotifyClient(http("spotify", fake.api_url), tokens(fake, store_path))


def reccobeats_client(fake: FakeServer, retry: RetryPolicy = FAST) -> ReccoBeatsClient:
    return ReccoBeatsClient(http("reccobeats", fake.reccobeats_url, retry))


def resource(fake: FakeServer, root: Path, clock: str, env: bool = True, **overrides) -> SpotifyResource:
    """The production resource pointed at the fake; credentials through dg.EnvVar when `env`
    (set them with `monkeypatch.setenv` from `fake.env()`), as `listening_source_from_env` does."""
    credentials = (
        {name: dg.EnvVar(var) for name, var in (("client_id", "SPOTIFY_CLIENT_ID"), ("client_secret", "SPOTIFY_CLIENT_SECRET"), ("refresh_token", "SPOTIFY_REFRESH_TOKEN"))}
        if env
        else {"client_id": fake.client_id, "client_secret": fake.client_secret, "refresh_token": fake.refresh_token}
    )
    settings = dict(
        accounts_url=fake.accounts_url,
        api_url=fake.api_url,
        reccobeats_url=fake.reccobeats_url,
        token_file=str(root / ".secrets" / "spotify_refresh_token.json"),
        authorized_at="2026-09-01T00:00:00+00:00",
        connect_timeout_s=TIMEOUTS.connect_s,
        read_timeout_s=TIMEOUTS.read_s,
        max_attempts=FAST.max_attempts,
        backoff_s=FAST.backoff_s,
        backoff_max_s=FAST.backoff_max_s,
        retry_after_floor_s=FAST.retry_after_floor_s,
        max_total_wait_s=FAST.max_total_wait_s,
        clock=clock,
    )
    settings.update(overrides)
    return SpotifyResource(**credentials, **settings)


def secrets_of(fake: FakeServer) -> dict[str, str]:
    """Every credential the fake knows or handed out, by a name for error messages."""
    found = {"client secret": fake.client_secret}
    found.update({f"refresh token {i}": t for i, t in enumerate(fake.refresh_tokens)})
    found.update({f"access token {i}": t for i, t in enumerate(fake.issued_access_tokens)})
    return found


def leaks_in_files(root: Path, secrets: dict[str, str], skip: tuple[Path, ...] = ()) -> list[str]:
    """`name in path` for every secret found in any file under `root` (bytes, any encoding of text)."""
    leaks = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        if any(path == s or s in path.parents for s in skip):
            continue
        data = path.read_bytes()
        leaks += [f"{name} in {path}" for name, value in secrets.items() if value.encode() in data]
    return leaks


def run_text(instance: dg.DagsterInstance, run_id: str) -> str:
    """Everything the instance keeps about a run: messages, metadata, errors, and the run itself."""
    texts = [repr(instance.get_run_by_id(run_id))]
    for record in instance.all_logs(run_id):
        texts.append(record.user_message or "")
        texts.append(repr(record))
        if record.dagster_event is not None:
            texts.append(repr(record.dagster_event.event_specific_data))
    return "\n".join(texts)


def leaks_in_run(instance: dg.DagsterInstance, run_id: str, secrets: dict[str, str]) -> list[str]:
    blob = run_text(instance, run_id)
    return [f"{name} in the event log of run {run_id}" for name, value in secrets.items() if value in blob]
