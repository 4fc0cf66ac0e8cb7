"""Dagster resources: the data store and the listening source (Spotify or the demo listener)."""

import os
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
import pandas as pd

from .sources.base import ListeningSource
from .sources.demo import DemoListener
from .storage.paths import DataPaths, data_root_from_env

TIMEZONE_ENV = "SPOTIFY_BRAIN_TIMEZONE"
SOURCE_ENV = "SPOTIFY_BRAIN_SOURCE"
DEMO_CLOCK_ENV = "SPOTIFY_BRAIN_DEMO_CLOCK"  # freezes the demo listener's clock (replays, tests)
CLOCK_ENV = "SPOTIFY_BRAIN_CLOCK"  # freezes either source's clock (replays against the fake server)
SPOTIFY_SECRETS = ("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET", "SPOTIFY_REFRESH_TOKEN")


class DataStore(dg.ConfigurableResource):
    """The data root holding all state, and the listener's timezone that every hour-of-day uses."""

    root: str = "data"
    timezone: str = "UTC"

    @property
    def paths(self) -> DataPaths:
        return DataPaths.at(self.root)

    @property
    def tz(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"{TIMEZONE_ENV}={self.timezone!r} is not an IANA timezone name (e.g. Europe/Stockholm)"
            ) from exc


def frozen_clock(clock: str) -> pd.Timestamp:
    """An ISO instant as UTC (a naive one is taken as UTC), or an error saying what is expected."""
    try:
        moment = pd.Timestamp(clock)
    except ValueError:
        moment = pd.NaT
    if pd.isna(moment):
        raise ValueError(f"clock {clock!r} ({CLOCK_ENV}) is not an ISO instant such as 2026-09-20T23:00:00Z")
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
    store = DataStore(root=data_root_from_env(), timezone=os.environ.get(TIMEZONE_ENV) or "UTC")
    store.tz  # fail at load time, with the variable named, rather than in the first run
    return store


def listening_source_from_env() -> ListeningSourceResource:
    """Spotify when its three secrets are set (or SPOTIFY_BRAIN_SOURCE=spotify), else the demo."""
    choice = (os.environ.get(SOURCE_ENV) or "").strip().lower()
    if choice not in ("", "demo", "spotify"):
        raise ValueError(f"{SOURCE_ENV}={choice!r}: expected 'demo' or 'spotify'")
    configured = all(os.environ.get(name) for name in SPOTIFY_SECRETS)
    clock = os.environ.get(CLOCK_ENV) or None
    if clock:
        frozen_clock(clock)  # a bad clock fails when the definitions load, naming the variable
    if choice == "demo" or (choice == "" and not configured):
        return DemoListenerResource(clock=os.environ.get(DEMO_CLOCK_ENV) or clock)
    if not configured:
        missing = [name for name in SPOTIFY_SECRETS if not os.environ.get(name)]
        raise ValueError(f"{SOURCE_ENV}=spotify but {', '.join(missing)} not set (see README: real credentials)")
    from .sources.spotify_resource import SpotifyResource

    return SpotifyResource(
        client_id=dg.EnvVar("SPOTIFY_CLIENT_ID"),
        client_secret=dg.EnvVar("SPOTIFY_CLIENT_SECRET"),
        refresh_token=dg.EnvVar("SPOTIFY_REFRESH_TOKEN"),
        clock=clock,
    )
