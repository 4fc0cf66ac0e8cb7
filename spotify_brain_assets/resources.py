"""Dagster resources: the data store and the listening source (Spotify or the demo listener)."""

import os
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
import pandas as pd

from .sources.base import ListeningSource
from .sources.demo import DemoListener
from .storage.paths import DATA_DIR_ENV, DEFAULT_DATA_DIR, DataPaths

TIMEZONE_ENV = "SPOTIFY_BRAIN_TIMEZONE"
SOURCE_ENV = "SPOTIFY_BRAIN_SOURCE"
DEMO_CLOCK_ENV = "SPOTIFY_BRAIN_DEMO_CLOCK"  # freezes the demo listener's clock (replays, tests)
CLOCK_ENV = "SPOTIFY_BRAIN_CLOCK"  # freezes either source's clock (replays against the fake server)
SPOTIFY_SECRETS = ("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET", "SPOTIFY_REFRESH_TOKEN")


def env_or(name: str, default: str | None) -> str | None:
    """`dg.EnvVar(name)` when the variable is set, so that the UI names where a setting came from;
    else the default (an EnvVar must be set when a run starts)."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{TIMEZONE_ENV}={name!r} is not an IANA timezone name (e.g. Europe/Stockholm)") from exc


class DataStore(dg.ConfigurableResource):
    """The data root holding all state, and the listener's timezone that every hour-of-day uses."""

    root: str = DEFAULT_DATA_DIR  # SPOTIFY_BRAIN_DATA_DIR
    timezone: str = "UTC"  # SPOTIFY_BRAIN_TIMEZONE

    @property
    def paths(self) -> DataPaths:
        return DataPaths.at(self.root)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from .runtime.executor import check_shared_root

        check_shared_root(self.paths, context.run)  # a step on a worker must see the run's data root

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)


def frozen_clock(clock: str, variable: str = CLOCK_ENV) -> pd.Timestamp:
    """An ISO instant as UTC (a naive one is taken as UTC), or an error saying what is expected."""
    try:
        moment = pd.Timestamp(clock)
    except ValueError:
        moment = pd.NaT
    if pd.isna(moment):
        raise ValueError(f"clock {clock!r} ({variable}) is not an ISO instant such as 2026-09-20T23:00:00Z")
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


class ListeningSourceResource(dg.ConfigurableResource):
    """Base of the listening sources: what ingestion asks for, whichever source answers."""

    clock: str | None = None  # an ISO instant that freezes "now" (replays, tests); None = wall clock

    def source(self, timezone: str) -> ListeningSource:
        raise NotImplementedError

    def now(self) -> pd.Timestamp:
        return frozen_clock(self.clock) if self.clock else pd.Timestamp(datetime.now(timezone.utc))


class DemoListenerResource(ListeningSourceResource):
    """The built-in simulated listener: no Spotify account needed. Everything it feeds says "demo"."""

    seed: int = 7

    def source(self, timezone: str) -> DemoListener:
        return DemoListener(seed=self.seed, timezone=timezone, now=self.now().to_pydatetime())


def store_from_env() -> DataStore:
    zone(os.environ.get(TIMEZONE_ENV) or "UTC")  # fail at load time, with the variable named, rather than in the first run
    return DataStore(root=env_or(DATA_DIR_ENV, DEFAULT_DATA_DIR), timezone=env_or(TIMEZONE_ENV, "UTC"))


def listening_source_from_env() -> ListeningSourceResource:
    """Spotify when its three secrets are set (or SPOTIFY_BRAIN_SOURCE=spotify), else the demo."""
    choice = (os.environ.get(SOURCE_ENV) or "").strip().lower()
    if choice not in ("", "demo", "spotify"):
        raise ValueError(f"{SOURCE_ENV}={choice!r}: expected 'demo' or 'spotify'")
    configured = all(os.environ.get(name) for name in SPOTIFY_SECRETS)
    for name in (CLOCK_ENV, DEMO_CLOCK_ENV):
        if os.environ.get(name):
            frozen_clock(os.environ[name], name)  # a bad clock fails when the definitions load, naming the variable
    clock = env_or(CLOCK_ENV, None)
    if choice == "demo" or (choice == "" and not configured):
        return DemoListenerResource(clock=env_or(DEMO_CLOCK_ENV, clock))
    if not configured:
        missing = [name for name in SPOTIFY_SECRETS if not os.environ.get(name)]
        raise ValueError(f"{SOURCE_ENV}=spotify but {', '.join(missing)} not set (see README: real credentials)")
    from .sources.spotify_resource import ACCOUNTS_URL_ENV, API_URL_ENV, AUTHORIZED_AT_ENV, RECCOBEATS_URL_ENV, SpotifyResource

    return SpotifyResource(
        client_id=dg.EnvVar("SPOTIFY_CLIENT_ID"),
        client_secret=dg.EnvVar("SPOTIFY_CLIENT_SECRET"),
        refresh_token=dg.EnvVar("SPOTIFY_REFRESH_TOKEN"),
        accounts_url=env_or(ACCOUNTS_URL_ENV, None),
        api_url=env_or(API_URL_ENV, None),
        reccobeats_url=env_or(RECCOBEATS_URL_ENV, None),
        authorized_at=env_or(AUTHORIZED_AT_ENV, None),
        clock=clock,
    )
