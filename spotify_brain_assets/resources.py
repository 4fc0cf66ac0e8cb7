"""Dagster resources: the data store and the listening source (Spotify or the demo listener)."""

import os
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
import pandas as pd

from .listeners.config import ListenerSettings
from .sources.base import ListeningSource
from .sources.demo import DemoListener
from .storage.paths import DATA_DIR_ENV, DEFAULT_DATA_DIR, DataPaths, data_root_from_env, listener_root

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

    def for_listener(self, listener: ListenerSettings) -> "DataStore":
        """A household listener's own data root, `<data root>/listeners/<name>/`, in its own timezone."""
        return DataStore(root=str(listener_root(self.root, listener.name)), timezone=listener.timezone or self.timezone)


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


class HouseholdSourcesResource(ListeningSourceResource):
    """The listeners of listeners.yaml: each one's assets get its own source (`for_listener`)."""

    demo_clock: str | None = None  # freezes the demo listeners' clock (SPOTIFY_BRAIN_DEMO_CLOCK)

    def for_listener(self, listener: ListenerSettings) -> "ListeningSourceResource":
        """A household listener's own source: its demo person, or Spotify with the credentials its variables hold."""
        if listener.source == "demo":
            return DemoListenerResource(seed=listener.demo_seed, clock=self.demo_clock or self.clock)
        from .sources.spotify_resource import ACCOUNTS_URL_ENV, API_URL_ENV, RECCOBEATS_URL_ENV, TOKEN_FILE, SpotifyResource

        missing = listener.missing_variables()
        if missing:
            raise ValueError(f"listener {listener.name!r}: {', '.join(missing)} not set (run `spotify-brain authorize --listener {listener.name}`)")
        return SpotifyResource(
            client_id=os.environ[listener.variable("client_id")],
            client_secret=os.environ[listener.variable("client_secret")],
            refresh_token=os.environ[listener.variable("refresh_token")],
            authorized_at=os.environ.get(listener.variable("authorized_at")) or None,
            accounts_url=os.environ.get(ACCOUNTS_URL_ENV) or None,
            api_url=os.environ.get(API_URL_ENV) or None,
            reccobeats_url=os.environ.get(RECCOBEATS_URL_ENV) or None,
            token_file=str(listener_root(data_root_from_env(), listener.name) / TOKEN_FILE),
            clock=self.clock,
        )

    def source(self, timezone: str) -> ListeningSource:
        raise RuntimeError("a household has one source per listener: materialize a listener's assets (alice/ingestions)")


class DemoListenerResource(ListeningSourceResource):
    """The built-in simulated listener: no Spotify account needed. Everything it feeds says "demo"."""

    seed: int = 7

    def source(self, timezone: str) -> DemoListener:
        return DemoListener(seed=self.seed, timezone=timezone, now=self.now().to_pydatetime())


def store_from_env() -> DataStore:
    zone(os.environ.get(TIMEZONE_ENV) or "UTC")  # fail at load time, with the variable named, rather than in the first run
    return DataStore(root=env_or(DATA_DIR_ENV, DEFAULT_DATA_DIR), timezone=env_or(TIMEZONE_ENV, "UTC"))


def listening_source_from_env(household: bool = False) -> ListeningSourceResource:
    """Spotify when its three secrets are set (or SPOTIFY_BRAIN_SOURCE=spotify), else the demo;
    for a household, each listener's source as listeners.yaml says."""
    choice = (os.environ.get(SOURCE_ENV) or "").strip().lower()
    if choice not in ("", "demo", "spotify"):
        raise ValueError(f"{SOURCE_ENV}={choice!r}: expected 'demo' or 'spotify'")
    configured = all(os.environ.get(name) for name in SPOTIFY_SECRETS)
    for name in (CLOCK_ENV, DEMO_CLOCK_ENV):
        if os.environ.get(name):
            frozen_clock(os.environ[name], name)  # a bad clock fails when the definitions load, naming the variable
    clock = env_or(CLOCK_ENV, None)
    if household:
        return HouseholdSourcesResource(clock=clock, demo_clock=env_or(DEMO_CLOCK_ENV, None))
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
