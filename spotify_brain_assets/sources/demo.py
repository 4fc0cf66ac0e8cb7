"""The built-in demo listener: a deterministic simulated person, served in the APIs' shapes.

It lets anyone run the whole graph without a Spotify account. Its plays are a pure function of
(seed, timezone, local day), so a slot re-run sees the same listening, and ingestion goes through
exactly the code path it takes with Spotify: recently-played items within a 50-play window, audio
features in batches of at most 40, some tracks without features, some plays that appear late.
"""

from __future__ import annotations

import base64
import functools
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from .base import RECENTLY_PLAYED_WINDOW

WINDOW = RECENTLY_PLAYED_WINDOW
BACKFILL_DAYS = 90
BASE62 = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))

#: mood → centre of (valence, energy, danceability, acousticness, instrumentalness, tempo)
MOODS = {
    "sunny pop": (0.82, 0.78, 0.80, 0.12, 0.03, 120.0),
    "workout": (0.60, 0.92, 0.70, 0.04, 0.10, 150.0),
    "calm acoustic": (0.55, 0.30, 0.50, 0.80, 0.10, 92.0),
    "melancholy": (0.18, 0.32, 0.38, 0.65, 0.15, 76.0),
    "deep focus": (0.30, 0.42, 0.45, 0.35, 0.88, 110.0),
    "dark energy": (0.20, 0.86, 0.52, 0.05, 0.45, 138.0),
}
MOOD_NAMES = list(MOODS)
#: habitual sessions: (weekend?, local hour, probability, mood weights in MOOD_NAMES order)
HABITS = [
    (False, 7.6, 0.80, (0.10, 0.05, 0.25, 0.05, 0.50, 0.05)),
    (False, 12.4, 0.45, (0.30, 0.05, 0.40, 0.10, 0.15, 0.00)),
    (False, 17.8, 0.70, (0.15, 0.55, 0.05, 0.00, 0.05, 0.20)),
    (False, 21.3, 0.60, (0.05, 0.00, 0.35, 0.45, 0.10, 0.05)),
    (True, 10.8, 0.70, (0.35, 0.00, 0.45, 0.10, 0.10, 0.00)),
    (True, 15.2, 0.55, (0.45, 0.25, 0.05, 0.00, 0.00, 0.25)),
    (True, 22.6, 0.65, (0.30, 0.05, 0.00, 0.15, 0.00, 0.50)),
]
STAY_IN_MOOD = 0.85
NO_FEATURES_SHARE = 0.03
LATE_SHARE = 0.08
WORDS_A = "Golden Silent Electric Velvet Paper Neon Hollow Crimson Quiet Wild Lunar Broken Bright Northern Slow".split()
WORDS_B = "Harbor Engines Letters Gardens Signals Rivers Streets Mirrors Satellites Fires Winters Dreams Lights Roads Waves".split()


def _base62_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    chars = BASE62[rng.integers(0, 62, size=(n, 22))]
    return np.array(["".join(row) for row in chars])


def _cover(hue: int) -> str:
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="300" height="300">'
        f'<rect width="300" height="300" fill="hsl({hue},55%,45%)"/>'
        f'<circle cx="150" cy="150" r="90" fill="hsl({(hue + 40) % 360},60%,70%)"/></svg>'
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


@functools.lru_cache(maxsize=8)
def catalog(seed: int, n_tracks: int = 3000) -> pd.DataFrame:
    """A few thousand tracks whose features form distinct moods; artists mostly keep to one mood."""
    rng = np.random.default_rng([seed, 0])
    n_artists = n_tracks // 10
    artist_mood = rng.integers(0, len(MOODS), n_artists)
    artist = rng.integers(0, n_artists, n_tracks)
    mood = np.where(rng.random(n_tracks) < 0.85, artist_mood[artist], rng.integers(0, len(MOODS), n_tracks))
    centres = np.array(list(MOODS.values()))[mood]
    spread = np.array([0.08, 0.07, 0.08, 0.08, 0.08, 9.0])
    feats = centres + rng.normal(0, 1, centres.shape) * spread
    feats[:, :5] = feats[:, :5].clip(0, 1)
    feats[:, 5] = feats[:, 5].clip(50, 220)
    artist_names = np.array([f"{WORDS_A[i % 15]} {WORDS_B[(i * 7) % 15]}{'' if i < 225 else f' {i}'}" for i in range(n_artists)])
    df = pd.DataFrame(
        {
            "track_id": _base62_ids(rng, n_tracks),
            "track_name": [f"{WORDS_B[(i * 3) % 15].rstrip('s')} of {WORDS_A[(i * 11) % 15]} No. {i}" for i in range(n_tracks)],
            "artist_name": artist_names[artist],
            "mood": mood,
            "popularity": rng.pareto(1.5, n_tracks) + 1,
            "duration_ms": rng.integers(140_000, 330_000, n_tracks),
            "has_features": rng.random(n_tracks) >= NO_FEATURES_SHARE,
            "reccobeats_id": [str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**63, n_tracks)],
            "image_url": [_cover(int(h)) for h in (artist * 37) % 360],
        }
    )
    for i, name in enumerate(["valence", "energy", "danceability", "acousticness", "instrumentalness", "tempo"]):
        df[name] = feats[:, i].round(4)
    return df


@functools.lru_cache(maxsize=4096)
def _day_plays(seed: int, tz_name: str, day: date) -> pd.DataFrame:
    """The plays of one local day: habitual sessions that keep a mood and sometimes switch."""
    cat = catalog(seed)
    rng = np.random.default_rng([seed, day.toordinal()])
    weekend = day.weekday() >= 5
    by_mood = [np.flatnonzero(cat["mood"].to_numpy() == m) for m in range(len(MOODS))]
    weights = [cat["popularity"].to_numpy()[ix] / cat["popularity"].to_numpy()[ix].sum() for ix in by_mood]
    frames = []
    for is_weekend, hour, prob, mood_weights in HABITS:
        if is_weekend != weekend or rng.random() >= prob:
            continue
        n = int(min(3 + rng.geometric(1 / 9), 40))
        moods = np.empty(n, dtype=int)
        moods[0] = rng.choice(len(MOODS), p=mood_weights)
        switch = rng.random(n) >= STAY_IN_MOOD
        targets = rng.choice(len(MOODS), size=n, p=mood_weights)
        for i in range(1, n):  # a Markov chain over a few dozen tracks: inherently sequential
            moods[i] = targets[i] if switch[i] else moods[i - 1]
        tracks = np.array([rng.choice(by_mood[m], p=weights[m]) for m in moods])
        start_minutes = hour * 60 + rng.normal(0, 25)
        gaps_ms = cat["duration_ms"].to_numpy()[tracks] + rng.integers(0, 20_000, n)
        local_end = pd.Timestamp(day) + pd.to_timedelta(start_minutes, unit="min") + pd.to_timedelta(np.cumsum(gaps_ms), unit="ms")
        frames.append(pd.DataFrame({"catalog_row": tracks, "local": local_end}))
    if not frames:
        return pd.DataFrame({"catalog_row": pd.Series(dtype=int), "played_at": pd.Series(dtype="datetime64[ms, UTC]"), "visible_at": pd.Series(dtype="datetime64[ms, UTC]")})
    plays = pd.concat(frames, ignore_index=True)
    local = plays.pop("local").dt.tz_localize(ZoneInfo(tz_name), ambiguous="NaT", nonexistent="shift_forward")
    plays["played_at"] = local.dt.tz_convert("UTC").dt.floor("ms").dt.as_unit("ms")
    plays = plays.dropna(subset=["played_at"]).reset_index(drop=True)
    late = rng.random(len(plays)) < LATE_SHARE
    delay = pd.to_timedelta(np.where(late, rng.integers(10, 90, len(plays)), 0), unit="min")
    plays["visible_at"] = plays["played_at"] + delay
    return plays


@dataclass(frozen=True)
class DemoListener:
    """The simulated person. `now` freezes its clock (tests, reproducible runs); None = wall clock."""

    seed: int = 7
    timezone: str = "UTC"
    now: datetime | None = None
    origin: str = "demo"

    def clock(self) -> pd.Timestamp:
        return pd.Timestamp(self.now or datetime.now(timezone.utc)).tz_convert("UTC")

    def plays(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Every play (visible or not yet) with played_at in [start, end), joined to the catalog."""
        tz = ZoneInfo(self.timezone)
        start, end = pd.Timestamp(start).tz_convert("UTC"), pd.Timestamp(end).tz_convert("UTC")
        days = pd.date_range(start.tz_convert(tz).date() - timedelta(days=1), end.tz_convert(tz).date(), freq="D")
        frames = [_day_plays(self.seed, self.timezone, d.date()) for d in days]
        plays = pd.concat(frames, ignore_index=True)
        plays = plays[(plays["played_at"] >= start) & (plays["played_at"] < end)]
        cat = catalog(self.seed)
        return plays.join(cat, on="catalog_row").sort_values("played_at").reset_index(drop=True)

    def _items(self, plays: pd.DataFrame) -> list[dict[str, Any]]:
        return [
            {
                "track": {
                    "id": row.track_id,
                    "name": row.track_name,
                    "type": "track",
                    "uri": f"spotify:track:{row.track_id}",
                    "duration_ms": int(row.duration_ms),
                    "artists": [{"name": row.artist_name, "type": "artist"}],
                    "album": {
                        "name": f"{row.artist_name} — Demo Sessions",
                        "images": [
                            {"url": row.image_url, "width": 640, "height": 640},
                            {"url": row.image_url, "width": 300, "height": 300},
                            {"url": row.image_url, "width": 64, "height": 64},
                        ],
                    },
                },
                "played_at": row.played_at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{row.played_at.microsecond // 1000:03d}Z",
                "context": None,
            }
            for row in plays.itertuples()
        ]

    def recently_played(self, after: datetime | None) -> list[dict[str, Any]]:
        now = self.clock()
        recent = self.plays(now - timedelta(days=3), now + timedelta(seconds=1))
        recent = recent[(recent["played_at"] <= now) & (recent["visible_at"] <= now)].tail(WINDOW)
        if after is not None:
            recent = recent[recent["played_at"] > pd.Timestamp(after)]
        return self._items(recent.iloc[::-1])  # newest first, like the API

    def audio_features(self, track_ids: list[str]) -> list[dict[str, Any]]:
        if not 1 <= len(track_ids) <= 40:
            raise ValueError(f"audio features are served for 1 to 40 ids at a time, not {len(track_ids)}")
        cat = catalog(self.seed).set_index("track_id")
        known = cat.loc[cat.index.intersection(track_ids)]
        known = known[known["has_features"]]
        return [
            {
                "id": row.reccobeats_id,
                "href": f"https://open.spotify.com/track/{track_id}",
                "acousticness": row.acousticness,
                "danceability": row.danceability,
                "energy": row.energy,
                "instrumentalness": row.instrumentalness,
                "tempo": row.tempo,
                "valence": row.valence,
                "key": -1,
                "mode": 1,
            }
            for track_id, row in known.iterrows()
        ]

    def recommendations(self, seed_ids: list[str], targets: dict[str, float], size: int = 10) -> list[dict[str, Any]]:
        """Catalog tracks nearest to the target features, in ReccoBeats' recommendation shape."""
        cat = catalog(self.seed)
        cat = cat[cat["has_features"] & ~cat["track_id"].isin(seed_ids)].assign(tempo_norm=lambda c: (c["tempo"] / 250).clip(upper=1))
        names = [n for n in targets if n in cat.columns and n != "tempo"]
        distance = sum((cat[n] - targets[n]) ** 2 for n in names) if names else 0.0
        best = cat.assign(_d=distance).sort_values(["_d", "track_id"]).head(size)
        return [
            {
                "id": row.reccobeats_id,
                "trackTitle": row.track_name,
                "artists": [{"name": row.artist_name}],
                "durationMs": int(row.duration_ms),
                "href": f"https://open.spotify.com/track/{row.track_id}",
            }
            for row in best.itertuples()
        ]

    def backfill(self, before: datetime) -> list[dict[str, Any]]:
        """Ninety days of listening before `before`, so that models can train on the first run."""
        end = pd.Timestamp(before).tz_convert("UTC")
        plays = self.plays(end - timedelta(days=BACKFILL_DAYS), end)
        return self._items(plays[plays["visible_at"] <= self.clock()])
