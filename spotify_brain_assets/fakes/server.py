"""A local fake of the Spotify Accounts service, the Spotify Web API and ReccoBeats, over real HTTP.

Spotify and ReccoBeats are not reachable from our machines or CI, so the clients are proven against
this server instead. It follows the contract in shared/docs/external-apis.md (§7 is its checklist):
Development-Mode field set, 50-play recently-played window, plays of 30 s or less never listed,
newest-first items, string cursors, the batch track lookup answering 403, ReccoBeats omitting
unknown ids, and the error bodies of each service. One server answers all three under path prefixes:

    fake.accounts_url    = http://127.0.0.1:PORT/accounts     (SPOTIFY_ACCOUNTS_URL)
    fake.api_url         = http://127.0.0.1:PORT/spotify      (SPOTIFY_API_URL)
    fake.reccobeats_url  = http://127.0.0.1:PORT/reccobeats   (RECCOBEATS_API_URL)

Python API (tests start it on a free port)::

    from spotify_brain_assets.fakes import FakeServer, Fault, make_track

    with FakeServer() as fake:                     # client id/secret/refresh token: fake.client_id, ...
        track = make_track("5FVd6KXrgO9B3JPmC8OPst", "Do I Wanna Know?", ["Arctic Monkeys"])
        fake.add_play(track, "2026-09-20T21:47:12.317Z")            # visible once played
        fake.add_play(track, "2026-09-20T22:00:00Z", visible_at="2026-09-20T23:30:00Z")  # a late play
        fake.add_play(track, "2026-09-20T22:05:00Z", ms_played=12_000)   # a skip: never listed
        fake.set_features(track["id"], valence=0.4, energy=0.5)          # the rest get defaults
        fake.set_clock("2026-09-20T23:00:00Z")      # the server's "now"; None = wall clock
        fake.inject("recently_played", Fault.rate_limited(retry_after=0))   # next request: 429
        fake.inject("audio_features", Fault.server_error(503), times=2)
        fake.inject("token", Fault.invalid_grant("Refresh token expired"), times=None)  # until cleared
        ... run a client against fake.accounts_url / fake.api_url / fake.reccobeats_url ...
        fake.requests_to("audio_features")          # what was asked, for assertions
        fake.issued_access_tokens                   # every access token handed out (secret scans)

Endpoints (fault names in brackets): POST /accounts/api/token [token], GET /accounts/authorize
[authorize], GET /spotify/v1/me/player/recently-played [recently_played], GET /spotify/v1/tracks/{id}
[track], GET /spotify/v1/tracks?ids= [tracks_batch] (403 in Development Mode; `dev_mode=False` gives
the legacy positional array), GET /reccobeats/v1/audio-features [audio_features], GET
/reccobeats/v1/track?ids= [track_metadata], GET /reccobeats/v1/track/recommendation [recommendation].

Faults (`Fault.*`, queued per endpoint and consumed one request each, `times=None` = persistent):
rate_limited(retry_after=N | "0" | None, quota=False), server_error(500|502|503), malformed_json(),
slow(seconds) (answers normally after the delay, for client timeouts), token_expired() (revokes every
access token and answers 401, i.e. expiry mid-run), invalid_grant(description), invalid_client(),
forbidden(). Token state: `revoke_refresh_token(description)` (persistent invalid_grant),
`rotate_refresh_tokens=True` (each refresh returns a new refresh token and retires the old one),
`include_refresh_token=True` (the unchanged token echoed back), `expires_in`. Other switches:
`dev_mode=False` (legacy batch lookup), `millisecond_timestamps=False` (played_at without
milliseconds), `deny_authorization=True`. ReccoBeats ids: Spotify ids or the fake's ReccoBeats UUIDs
(`reccobeats_id(id)`); ReccoBeats needs no token.

By hand (a listener like the demo's, over real HTTP; see `main` below)::

    python -m spotify_brain_assets.fakes.server --port 8777
    SPOTIFY_ACCOUNTS_URL=http://127.0.0.1:8777/accounts SPOTIFY_API_URL=http://127.0.0.1:8777/spotify \\
    RECCOBEATS_API_URL=http://127.0.0.1:8777/reccobeats SPOTIFY_CLIENT_ID=fake-client-id \\
    SPOTIFY_CLIENT_SECRET=fake-client-secret SPOTIFY_REFRESH_TOKEN=fake-refresh-token spotify-brain update
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np
import pandas as pd

WINDOW = 50
MIN_LISTED_MS = 30_000
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SPOTIFY_ID_RE = re.compile(r"^[0-9A-Za-z]{22}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RECCOBEATS_NS = uuid.UUID("6f1c7d2e-4b1a-4d8e-9a55-2f0c1b3e8d11")
UNAUTHORIZED = "Missing/invalid/expired access token"
SCOPE = "user-read-recently-played"
FEATURE_DEFAULTS = {
    "acousticness": 0.2, "danceability": 0.6, "energy": 0.6, "instrumentalness": 0.01, "key": 5,
    "liveness": 0.12, "loudness": -7.0, "mode": 1, "speechiness": 0.04, "tempo": 120.0, "valence": 0.5,
}
SERVICES = {"accounts": "accounts", "spotify": "spotify", "reccobeats": "reccobeats"}


def _base62(seed: str, n: int = 22) -> str:
    digest = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    out = []
    for _ in range(n):
        digest, rem = divmod(digest, 62)
        out.append(BASE62[rem])
    return "".join(out)


def random_track_id(rng: np.random.Generator | None = None) -> str:
    """A well-formed Spotify track id (22 base-62 characters)."""
    rng = rng or np.random.default_rng()
    return "".join(BASE62[i] for i in rng.integers(0, 62, 22))


def reccobeats_id(spotify_id: str) -> str:
    """The fake's ReccoBeats UUID for a Spotify id (stable, so tests can use it)."""
    return str(uuid.uuid5(RECCOBEATS_NS, spotify_id))


def make_track(
    track_id: str | None = None,
    name: str = "Untitled",
    artists: Iterable[str] = ("Unknown Artist",),
    album: str | None = None,
    duration_ms: int = 200_000,
    isrc: str | None = None,
    images: bool = True,
) -> dict[str, Any]:
    """A TrackObject with the Development-Mode field set (no popularity, markets or linked_from)."""
    track_id = track_id or _base62(f"track:{name}:{','.join(artists)}")
    album_name = album or f"{name} (Single)"
    album_id = _base62(f"album:{album_name}")

    def artist(artist_name: str) -> dict[str, Any]:
        artist_id = _base62(f"artist:{artist_name}")
        return {
            "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist_id}"},
            "href": f"https://api.spotify.com/v1/artists/{artist_id}",
            "id": artist_id, "name": artist_name, "type": "artist", "uri": f"spotify:artist:{artist_id}",
        }

    art = hashlib.sha1(album_id.encode()).hexdigest()[:24]
    artist_objects = [artist(a) for a in artists]
    return {
        "album": {
            "album_type": "album", "total_tracks": 10, "artists": artist_objects[:1],
            "external_urls": {"spotify": f"https://open.spotify.com/album/{album_id}"},
            "href": f"https://api.spotify.com/v1/albums/{album_id}", "id": album_id,
            "images": [
                {"height": 640, "url": f"https://i.scdn.co/image/ab67616d0000b273{art}", "width": 640},
                {"height": 300, "url": f"https://i.scdn.co/image/ab67616d00001e02{art}", "width": 300},
                {"height": 64, "url": f"https://i.scdn.co/image/ab67616d00004851{art}", "width": 64},
            ] if images else [],
            "name": album_name, "release_date": "2020-01-01", "release_date_precision": "day",
            "type": "album", "uri": f"spotify:album:{album_id}",
        },
        "artists": artist_objects,
        "disc_number": 1, "duration_ms": int(duration_ms), "explicit": False,
        "external_ids": {"isrc": isrc or f"XX{_base62('isrc:' + track_id, 10).upper()}"},
        "external_urls": {"spotify": f"https://open.spotify.com/track/{track_id}"},
        "href": f"https://api.spotify.com/v1/tracks/{track_id}",
        "id": track_id, "is_local": False, "is_playable": True, "name": name, "preview_url": None,
        "track_number": 1, "type": "track", "uri": f"spotify:track:{track_id}",
    }


def _ts(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).floor("ms")


def _iso_ms(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


@dataclass(frozen=True)
class Fault:
    """One misbehaviour of an endpoint; rendered in the answering service's own error shape."""

    kind: str
    status: int = 0
    retry_after: str | None = None
    quota: bool = False
    delay: float = 0.0
    description: str | None = None

    @classmethod
    def rate_limited(cls, retry_after: float | int | str | None = 1, quota: bool = False) -> "Fault":
        """429; `retry_after=None` sends no Retry-After header; `quota=True` adds reason QUOTA_EXCEEDED."""
        return cls("rate_limited", 429, None if retry_after is None else str(retry_after), quota)

    @classmethod
    def server_error(cls, status: int = 500) -> "Fault":
        if status not in (500, 502, 503):
            raise ValueError(f"server_error takes 500, 502 or 503, not {status}")
        return cls("server_error", status)

    @classmethod
    def malformed_json(cls) -> "Fault":
        """200 with a body that is not JSON (a truncated document)."""
        return cls("malformed_json", 200)

    @classmethod
    def slow(cls, seconds: float) -> "Fault":
        """Answer normally, but only after `seconds` (longer than the client's read timeout)."""
        return cls("slow", 0, delay=seconds)

    @classmethod
    def token_expired(cls) -> "Fault":
        """Revoke every access token handed out and answer 401, as when one expires mid-run."""
        return cls("token_expired", 401)

    @classmethod
    def invalid_grant(cls, description: str = "Refresh token expired") -> "Fault":
        return cls("invalid_grant", 400, description=description)

    @classmethod
    def invalid_client(cls, description: str | None = "Invalid client") -> "Fault":
        return cls("invalid_client", 400, description=description)

    @classmethod
    def forbidden(cls) -> "Fault":
        return cls("forbidden", 403)


@dataclass
class _Queued:
    fault: Fault
    times: int | None  # None: until cleared


@dataclass(frozen=True)
class RecordedRequest:
    """What a client asked (no credentials kept): for assertions on batching, auth scheme, paging."""

    endpoint: str
    method: str
    path: str
    query: dict[str, list[str]]
    auth_scheme: str | None  # "Basic", "Bearer" or None
    content_type: str | None
    form_keys: tuple[str, ...] = ()
    at: float = field(default_factory=time.monotonic)


class _Reply(Exception):
    """Raised inside handlers to answer with a status, a JSON (or raw) body and headers."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None):
        super().__init__(status)
        self.status, self.body, self.headers, self.raw = status, body, headers or {}, raw


class FakeServer:
    """Spotify Accounts + Web API + ReccoBeats on 127.0.0.1, in a background thread.

    Thread-safe: the handlers and the Python API share one lock. Use as a context manager, or call
    `start()` and `stop()`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        refresh_token: str = "fake-refresh-token",
        dev_mode: bool = True,
        expires_in: int = 3600,
    ):
        self.host, self._port = host, port
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_token = refresh_token
        self.dev_mode = dev_mode
        self.expires_in = expires_in
        self.rotate_refresh_tokens = False
        self.include_refresh_token = False  # send the unchanged refresh token back on each refresh
        self.deny_authorization = False  # /authorize redirects with error=access_denied
        self.millisecond_timestamps = True  # False: played_at without milliseconds, as some answers have
        self._lock = threading.RLock()
        self._clock: pd.Timestamp | None = None
        self._refresh_tokens: dict[str, str | None] = {refresh_token: None}  # token -> why invalid
        self._access_tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._issued: list[str] = []
        self._codes: dict[str, dict[str, str]] = {}
        self.authorizations: list[dict[str, str]] = []  # query of each /authorize visit
        self._faults: dict[str, list[_Queued]] = {}
        self._requests: list[RecordedRequest] = []
        self._tracks: dict[str, dict[str, Any]] = {}
        self._features: dict[str, dict[str, Any]] = {}
        self._plays: list[dict[str, Any]] = []
        self._plays_df: pd.DataFrame | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> "FakeServer":
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer((self.host, self._port), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-spotify", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake server is not running")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def accounts_url(self) -> str:
        return f"{self.url}/accounts"

    @property
    def api_url(self) -> str:
        return f"{self.url}/spotify"

    @property
    def reccobeats_url(self) -> str:
        return f"{self.url}/reccobeats"

    def env(self) -> dict[str, str]:
        """Environment variables that point Spotify Brain at this server with its credentials."""
        return {
            "SPOTIFY_ACCOUNTS_URL": self.accounts_url,
            "SPOTIFY_API_URL": self.api_url,
            "RECCOBEATS_API_URL": self.reccobeats_url,
            "SPOTIFY_CLIENT_ID": self.client_id,
            "SPOTIFY_CLIENT_SECRET": self.client_secret,
            "SPOTIFY_REFRESH_TOKEN": self.refresh_token,
        }

    # clock -----------------------------------------------------------------------------------
    @property
    def now(self) -> pd.Timestamp:
        with self._lock:
            return self._clock if self._clock is not None else _ts(datetime.now(timezone.utc))

    def set_clock(self, moment: Any | None) -> None:
        """Freeze the server's "now" (which plays are complete and visible); None = wall clock."""
        with self._lock:
            self._clock = None if moment is None else _ts(moment)

    def advance(self, delta: timedelta | str) -> pd.Timestamp:
        with self._lock:
            self._clock = self.now + pd.Timedelta(delta)
            return self._clock

    # catalog, plays, features ----------------------------------------------------------------
    def add_track(self, track: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._tracks[track["id"]] = track
        return track

    def add_play(
        self,
        track: dict[str, Any],
        played_at: Any,
        *,
        visible_at: Any | None = None,
        ms_played: int | None = None,
        context: dict[str, Any] | None = None,
        omit: Iterable[str] = (),
    ) -> pd.Timestamp:
        """A play ending at `played_at`, listed from `visible_at` (default: at once) if over 30 s.

        `omit` drops keys from the track object embedded in recently-played (e.g. ("album",)); the
        full object stays available from GET /v1/tracks/{id}.
        """
        self.add_track(track)
        played = _ts(played_at)
        visible = _ts(visible_at) if visible_at is not None else played
        with self._lock:
            self._plays.append(
                {
                    "track_id": track["id"],
                    "track": track,
                    "played_at": played,
                    "visible_at": max(visible, played),
                    "ms_played": int(ms_played if ms_played is not None else track.get("duration_ms", 200_000)),
                    "context": context,
                    "omit": tuple(omit),
                }
            )
            self._plays_df = None
        return played

    def add_plays(self, plays: pd.DataFrame, tracks: Iterable[dict[str, Any]]) -> None:
        """Bulk load: `plays` has track_id, played_at and optionally visible_at, ms_played."""
        with self._lock:
            for track in tracks:
                self._tracks[track["id"]] = track
            df = plays.copy()
            df["played_at"] = pd.to_datetime(df["played_at"], utc=True).dt.floor("ms")
            df["visible_at"] = pd.to_datetime(df["visible_at"], utc=True) if "visible_at" in df else df["played_at"]
            df["visible_at"] = df[["visible_at", "played_at"]].max(axis=1)
            if "ms_played" not in df:
                durations = {tid: t.get("duration_ms", 200_000) for tid, t in self._tracks.items()}
                df["ms_played"] = df["track_id"].map(durations)
            df["track"] = df["track_id"].map(self._tracks)
            df["context"] = None
            df["omit"] = [()] * len(df)
            self._plays.extend(df[["track_id", "track", "played_at", "visible_at", "ms_played", "context", "omit"]].to_dict("records"))
            self._plays_df = None

    def set_features(self, spotify_id: str, **features: float) -> None:
        """Audio features ReccoBeats knows for a track (unset ones take plausible defaults)."""
        unknown = set(features) - set(FEATURE_DEFAULTS) - {"isrc"}
        if unknown:
            raise ValueError(f"unknown audio features {sorted(unknown)}")
        with self._lock:
            self._features[spotify_id] = {**FEATURE_DEFAULTS, **features}

    def forget_track(self, track_id: str) -> None:
        """GET /v1/tracks/{id} answers 404 from now on (plays already made keep their track object)."""
        with self._lock:
            self._tracks.pop(track_id, None)

    def forget_features(self, spotify_id: str) -> None:
        with self._lock:
            self._features.pop(spotify_id, None)

    def visible_plays(self) -> pd.DataFrame:
        """The plays recently-played lists right now, oldest first (the whole 50-play window)."""
        with self._lock:
            df = self._frame()
            now = self.now
            listed = df[(df["played_at"] <= now) & (df["visible_at"] <= now) & (df["ms_played"] > MIN_LISTED_MS)]
            return listed.tail(WINDOW)

    def _frame(self) -> pd.DataFrame:
        if self._plays_df is None:
            cols = ["track_id", "track", "played_at", "visible_at", "ms_played", "context", "omit"]
            df = pd.DataFrame(self._plays, columns=cols)
            df["played_at"] = pd.to_datetime(df["played_at"], utc=True)
            df["visible_at"] = pd.to_datetime(df["visible_at"], utc=True)
            self._plays_df = df.sort_values("played_at", kind="stable").reset_index(drop=True)
        return self._plays_df

    # faults and tokens -----------------------------------------------------------------------
    def inject(self, endpoint: str, fault: Fault, times: int | None = 1) -> None:
        """Queue `fault` for the next `times` requests to `endpoint` (None: every one until cleared)."""
        if endpoint not in _ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {sorted(_ENDPOINTS)}")
        with self._lock:
            self._faults.setdefault(endpoint, []).append(_Queued(fault, times))

    def clear_faults(self, endpoint: str | None = None) -> None:
        with self._lock:
            if endpoint is None:
                self._faults.clear()
            else:
                self._faults.pop(endpoint, None)

    def _next_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(endpoint) or []
            if not queue:
                return None
            head = queue[0]
            if head.times is not None:
                head.times -= 1
                if head.times <= 0:
                    queue.pop(0)
            return head.fault

    def revoke_refresh_token(self, description: str = "Refresh token revoked", token: str | None = None) -> None:
        """From now on the token endpoint answers invalid_grant with `description` for this token."""
        with self._lock:
            self._refresh_tokens[token or self.refresh_token] = description

    def expire_access_tokens(self) -> None:
        with self._lock:
            self._access_tokens.clear()

    @property
    def issued_access_tokens(self) -> list[str]:
        with self._lock:
            return list(self._issued)

    @property
    def refresh_tokens(self) -> list[str]:
        """Every refresh token this server knows (valid or not): for secret scans."""
        with self._lock:
            return list(self._refresh_tokens)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.endpoint == endpoint]

    def reset_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _issue_access_token(self) -> str:
        token = "fake-access-" + secrets.token_urlsafe(24)
        with self._lock:
            self._access_tokens[token] = time.monotonic() + self.expires_in
            self._issued.append(token)
        return token

    def _issue_refresh_token(self) -> str:
        token = "fake-refresh-" + secrets.token_urlsafe(24)
        with self._lock:
            self._refresh_tokens[token] = None
        return token

    def _check_bearer(self, header: str | None) -> None:
        if not header or not header.startswith("Bearer "):
            raise _Reply(401, _spotify_error(401, UNAUTHORIZED), {"WWW-Authenticate": 'Bearer realm="spotify", error="missing_token"'})
        token = header[len("Bearer ") :].strip()
        with self._lock:
            expiry = self._access_tokens.get(token)
        if expiry is None or expiry <= time.monotonic():
            raise _Reply(
                401,
                _spotify_error(401, UNAUTHORIZED),
                {"WWW-Authenticate": 'Bearer realm="spotify", error="invalid_token", error_description="Invalid access token"'},
            )

    # by hand: a listener like the demo's ------------------------------------------------------
    def load_demo_listener(self, seed: int = 7, timezone_name: str = "UTC", days_back: float = 2, days_ahead: float = 7) -> int:
        """Plays of the built-in demo listener around now (the wall clock), with its catalog's features."""
        from ..sources.demo import DemoListener, catalog

        now = self.now
        plays = DemoListener(seed=seed, timezone=timezone_name, now=now.to_pydatetime()).plays(
            (now - pd.Timedelta(days=days_back)).to_pydatetime(), (now + pd.Timedelta(days=days_ahead)).to_pydatetime()
        )
        cat = catalog(seed)
        used = cat[cat["track_id"].isin(plays["track_id"])]
        tracks = [
            make_track(row.track_id, row.track_name, [row.artist_name], f"{row.artist_name} — Demo Sessions", int(row.duration_ms))
            for row in used.itertuples()
        ]
        self.add_plays(plays[["track_id", "played_at", "visible_at"]], tracks)
        for row in used[used["has_features"]].itertuples():
            self.set_features(
                row.track_id, valence=row.valence, energy=row.energy, danceability=row.danceability,
                acousticness=row.acousticness, instrumentalness=row.instrumentalness, tempo=row.tempo,
            )
        return len(plays)

    # answers ---------------------------------------------------------------------------------
    def _token(self, req: "_Handler", form: dict[str, list[str]]) -> Any:
        content_type = (req.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type != "application/x-www-form-urlencoded":
            raise _Reply(400, {"error": "unsupported_grant_type", "error_description": "grant_type parameter is missing"})
        client_id, client_secret = None, None
        auth = req.headers.get("Authorization") or ""
        if auth.startswith("Basic "):
            try:
                client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise _Reply(400, {"error": "invalid_client", "error_description": "Invalid client"})
        else:
            client_id = (form.get("client_id") or [None])[0]
            client_secret = (form.get("client_secret") or [None])[0]
        if not client_id:
            raise _Reply(400, {"error": "invalid_client"})
        if client_id != self.client_id or client_secret != self.client_secret:
            raise _Reply(400, {"error": "invalid_client", "error_description": "Invalid client"})
        grant = (form.get("grant_type") or [""])[0]
        if grant == "refresh_token":
            token = (form.get("refresh_token") or [""])[0]
            with self._lock:
                known = token in self._refresh_tokens
                why = self._refresh_tokens.get(token)
            if not known:
                raise _Reply(400, {"error": "invalid_grant", "error_description": "Invalid refresh token"})
            if why:
                raise _Reply(400, {"error": "invalid_grant", "error_description": why})
            body: dict[str, Any] = {"access_token": self._issue_access_token(), "token_type": "Bearer", "expires_in": self.expires_in, "scope": SCOPE}
            if self.rotate_refresh_tokens:
                body["refresh_token"] = self._issue_refresh_token()
                with self._lock:
                    self._refresh_tokens[token] = "Invalid refresh token"
            elif self.include_refresh_token:
                body["refresh_token"] = token
            return body
        if grant == "authorization_code":
            code = (form.get("code") or [""])[0]
            with self._lock:
                grant_info = self._codes.pop(code, None)
            if grant_info is None:
                raise _Reply(400, {"error": "invalid_grant", "error_description": "Invalid authorization code"})
            if (form.get("redirect_uri") or [""])[0] != grant_info["redirect_uri"]:
                raise _Reply(400, {"error": "invalid_grant", "error_description": "Invalid redirect URI"})
            return {
                "access_token": self._issue_access_token(), "token_type": "Bearer", "expires_in": self.expires_in,
                "refresh_token": self._issue_refresh_token(), "scope": grant_info["scope"],
            }
        raise _Reply(400, {"error": "unsupported_grant_type", "error_description": "grant_type parameter is missing"})

    def _authorize(self, query: dict[str, list[str]]) -> Any:
        q = {k: v[0] for k, v in query.items()}
        with self._lock:
            self.authorizations.append(q)
        if q.get("client_id") != self.client_id:
            raise _Reply(400, raw=b"INVALID_CLIENT: Invalid client", headers={"Content-Type": "text/plain"})
        redirect = q.get("redirect_uri") or ""
        parts = urlsplit(redirect)
        loopback = parts.hostname in ("127.0.0.1", "::1")
        if not redirect or parts.hostname == "localhost" or (parts.scheme == "http" and not loopback) or parts.scheme not in ("http", "https"):
            raise _Reply(400, raw=b"INVALID_CLIENT: Insecure redirect URI", headers={"Content-Type": "text/plain"})
        if q.get("response_type") != "code":
            raise _Reply(400, raw=b"unsupported_response_type", headers={"Content-Type": "text/plain"})
        answer: dict[str, str]
        if self.deny_authorization:
            answer = {"error": "access_denied"}
        else:
            code = secrets.token_urlsafe(32)
            with self._lock:
                self._codes[code] = {"redirect_uri": redirect, "scope": q.get("scope", "")}
            answer = {"code": code}
        if "state" in q:
            answer["state"] = q["state"]
        raise _Reply(303, raw=b"", headers={"Location": f"{redirect}?{urlencode(answer)}"})

    def _recently_played(self, query: dict[str, list[str]], href: str) -> Any:
        q = {k: v[0] for k, v in query.items()}
        try:
            limit = int(q.get("limit", "20"))
            after = int(q["after"]) if "after" in q else None
            before = int(q["before"]) if "before" in q else None
        except ValueError:
            raise _Reply(400, _spotify_error(400, "Invalid limit, after or before"))
        if not 1 <= limit <= 50:
            raise _Reply(400, _spotify_error(400, "Invalid limit"))
        if after is not None and before is not None:
            raise _Reply(400, _spotify_error(400, "Only one of after and before can be specified"))
        window = self.visible_plays()
        ms = window["played_at"].dt.as_unit("ms").astype("int64")
        base = f"{self.api_url}/v1/me/player/recently-played"
        if after is not None:
            page = window[ms > after].head(limit)
        elif before is not None:
            page = window[ms < before].tail(limit)
        else:
            page = window.tail(limit)
        page = page.iloc[::-1]  # newest first
        items = []
        for row in page.itertuples():  # at most 50 rows
            track = {k: v for k, v in row.track.items() if k not in row.omit}
            played_at = _iso_ms(row.played_at) if self.millisecond_timestamps else row.played_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            items.append({"track": track, "played_at": played_at, "context": row.context})
        if not items:
            return {"items": [], "next": None, "cursors": None, "limit": limit, "href": href}
        newest, oldest = _ms(page["played_at"].iloc[0]), _ms(page["played_at"].iloc[-1])
        nxt = f"{base}?{urlencode({'after': newest, 'limit': limit})}" if after is not None else f"{base}?{urlencode({'before': oldest, 'limit': limit})}"
        return {"items": items, "next": nxt, "cursors": {"after": str(newest), "before": str(oldest)}, "limit": limit, "href": href}

    def _track(self, track_id: str) -> Any:
        if not SPOTIFY_ID_RE.match(track_id):
            raise _Reply(400, _spotify_error(400, "invalid id"))
        with self._lock:
            track = self._tracks.get(track_id)
        if track is None:
            raise _Reply(404, _spotify_error(404, "Resource not found"))
        return track

    def _tracks_batch(self, query: dict[str, list[str]]) -> Any:
        if self.dev_mode:
            raise _Reply(403, _spotify_error(403, "Forbidden"))
        ids = [i for v in query.get("ids", []) for i in v.split(",")]
        if not ids or len(ids) > 50 or any(not SPOTIFY_ID_RE.match(i) for i in ids):
            raise _Reply(400, _spotify_error(400, "invalid id" if ids and len(ids) <= 50 else "Too many ids requested"))
        with self._lock:
            return {"tracks": [self._tracks.get(i) for i in ids]}

    def _ids(self, query: dict[str, list[str]], name: str, low: int, high: int) -> list[str]:
        ids = [i.strip() for v in query.get(name, []) for i in v.split(",") if i.strip()]
        if not low <= len(ids) <= high:
            raise _Reply(400, _reccobeats_error(400, f"{name} must hold {low} to {high} ids, not {len(ids)}"))
        return ids

    def _spotify_ids(self, ids: list[str]) -> list[str]:
        with self._lock:
            by_uuid = {reccobeats_id(s): s for s in set(self._features) | set(self._tracks)}
        return [by_uuid.get(i, i) if UUID_RE.match(i) else i for i in ids]

    def _audio_features(self, query: dict[str, list[str]]) -> Any:
        ids = self._spotify_ids(self._ids(query, "ids", 1, 40))
        content = []
        with self._lock:
            for sid in dict.fromkeys(ids):
                feats = self._features.get(sid)
                if feats is None:
                    continue  # unknown ids are omitted, never null
                item = {"id": reccobeats_id(sid), "href": f"https://open.spotify.com/track/{sid}"}
                item.update({k: v for k, v in feats.items() if k != "isrc"})
                if feats.get("isrc"):
                    item["isrc"] = feats["isrc"]
                content.append(item)
        return {"content": content}

    def _recco_track(self, sid: str) -> dict[str, Any]:
        track = self._tracks.get(sid) or make_track(sid)
        return {
            "id": reccobeats_id(sid),
            "trackTitle": track["name"],
            "artists": [{"id": reccobeats_id(a["id"]), "name": a["name"], "href": f"https://open.spotify.com/artist/{a['id']}"} for a in track["artists"]],
            "durationMs": track["duration_ms"],
            "isrc": (track.get("external_ids") or {}).get("isrc"),
            "ean": None,
            "upc": None,
            "href": f"https://open.spotify.com/track/{sid}",
            "availableCountries": "SE,GB,US",
            "popularity": int(hashlib.sha1(sid.encode()).digest()[0]) % 101,
        }

    def _track_metadata(self, query: dict[str, list[str]]) -> Any:
        ids = self._spotify_ids(self._ids(query, "ids", 1, 40))
        with self._lock:
            return {"content": [self._recco_track(s) for s in dict.fromkeys(ids) if s in self._tracks]}

    def _recommendation(self, query: dict[str, list[str]]) -> Any:
        seeds = self._spotify_ids(self._ids(query, "seeds", 1, 5))
        negative = set(self._spotify_ids([i for v in query.get("negativeSeeds", []) for i in v.split(",") if i]))
        try:
            size = int((query.get("size") or [""])[0])
        except ValueError:
            raise _Reply(400, _reccobeats_error(400, "size is required (1 to 100)"))
        if not 1 <= size <= 100:
            raise _Reply(400, _reccobeats_error(400, "size must be between 1 and 100"))
        with self._lock:
            feats = pd.DataFrame.from_dict(self._features, orient="index")
            if len(feats) == 0 or not feats.index.isin(seeds).any():
                raise _Reply(400, _reccobeats_error(400, "Bad seed: no seed track is known"))
            names = ["acousticness", "danceability", "energy", "instrumentalness", "valence"]
            target = feats.loc[feats.index.isin(seeds), names].mean()
            for name in names:
                if name in query:
                    target[name] = float(query[name][0])
            pool = feats[~feats.index.isin(list(seeds) + list(negative))]
            distance = ((pool[names] - target) ** 2).sum(axis=1).sort_values(kind="stable")
            return {"content": [self._recco_track(s) for s in distance.index[:size]]}


_ENDPOINTS = {
    "token", "authorize", "recently_played", "track", "tracks_batch", "spotify_audio_features",
    "audio_features", "track_metadata", "recommendation",
}


def _spotify_error(status: int, message: str, reason: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"status": status, "message": message}
    if reason:
        error["reason"] = reason
    return {"error": error}


def _reccobeats_error(status: int, message: str) -> dict[str, Any]:
    names = {400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
    return {"timestamp": datetime.now(timezone.utc).isoformat(), "status": status, "error": names.get(status, "Error"), "message": message}


def _route(path: str) -> tuple[str, str, str] | None:
    """(service, endpoint, argument) of a request path."""
    service, _, rest = path.lstrip("/").partition("/")
    rest = "/" + rest
    if service == "accounts":
        return {"/api/token": ("accounts", "token", ""), "/authorize": ("accounts", "authorize", "")}.get(rest)
    if service == "spotify":
        if rest == "/v1/me/player/recently-played":
            return "spotify", "recently_played", ""
        if rest == "/v1/tracks":
            return "spotify", "tracks_batch", ""
        if rest.startswith("/v1/tracks/"):
            return "spotify", "track", rest[len("/v1/tracks/") :]
        if rest.startswith("/v1/audio-features"):  # blocked for new apps since 2024-11-27
            return "spotify", "spotify_audio_features", ""
        return None
    if service == "reccobeats":
        return {
            "/v1/audio-features": ("reccobeats", "audio_features", ""),
            "/v1/track": ("reccobeats", "track_metadata", ""),
            "/v1/track/recommendation": ("reccobeats", "recommendation", ""),
        }.get(rest)
    return None


def _render_fault(fault: Fault, service: str) -> _Reply:
    if fault.kind == "rate_limited":
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if service == "reccobeats":
            return _Reply(429, _reccobeats_error(429, "Rate limit exceeded"), headers)
        if service == "accounts":
            return _Reply(429, {"error": "rate_limited", "error_description": "Too many requests"}, headers)
        if fault.quota:
            return _Reply(429, _spotify_error(429, "Too many requests", "QUOTA_EXCEEDED"), headers)
        return _Reply(429, _spotify_error(429, "API rate limit exceeded"), headers)
    if fault.kind == "server_error":
        message = {500: "Server error", 502: "Bad gateway", 503: "Service unavailable"}[fault.status]
        body = _reccobeats_error(fault.status, message) if service == "reccobeats" else _spotify_error(fault.status, message)
        return _Reply(fault.status, body)
    if fault.kind == "malformed_json":
        return _Reply(200, raw=b'{"items": [{"track": {"id": "5FVd6KXrgO9B', headers={"Content-Type": "application/json"})
    if fault.kind == "token_expired":
        return _Reply(401, _spotify_error(401, UNAUTHORIZED), {"WWW-Authenticate": 'Bearer realm="spotify", error="invalid_token", error_description="The access token expired"'})
    if fault.kind == "invalid_grant":
        return _Reply(400, {"error": "invalid_grant", "error_description": fault.description})
    if fault.kind == "invalid_client":
        body = {"error": "invalid_client"}
        if fault.description:
            body["error_description"] = fault.description
        return _Reply(400, body)
    if fault.kind == "forbidden":
        return _Reply(403, _reccobeats_error(403, "Forbidden") if service == "reccobeats" else _spotify_error(403, "Forbidden"))
    raise ValueError(f"fault {fault.kind!r} has no rendering")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeServer
    protocol_version = "HTTP/1.1"
    server_version = "FakeSpotify/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        route = _route(parts.path)
        try:
            if route is None:
                raise _Reply(404, _spotify_error(404, "Service not found"))
            service, endpoint, arg = route
            expected = "POST" if endpoint == "token" else "GET"
            if method != expected:
                raise _Reply(405, _spotify_error(405, "Method not allowed"))
            form = parse_qs(raw_body.decode("utf-8", "replace"), keep_blank_values=True) if endpoint == "token" else {}
            auth = self.headers.get("Authorization")
            with fake._lock:
                fake._requests.append(
                    RecordedRequest(endpoint, method, parts.path, query, auth.split(" ", 1)[0] if auth else None, self.headers.get("Content-Type"), tuple(sorted(form)))
                )
            fault = fake._next_fault(endpoint)
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
            if fault is not None and fault.kind == "token_expired":
                fake.expire_access_tokens()
            if fault is not None and fault.kind != "slow":
                raise _render_fault(fault, service)
            if service == "spotify":
                fake._check_bearer(auth)
            body = self._answer(endpoint, arg, query, form)
            raise _Reply(200, body)
        except _Reply as reply:
            self._send(reply)
        except Exception as exc:  # a bug in the fake: answer like a failing server, and say why
            self._send(_Reply(500, {"error": {"status": 500, "message": f"fake server error: {exc!r}"}}))

    def _answer(self, endpoint: str, arg: str, query: dict[str, list[str]], form: dict[str, list[str]]) -> Any:
        fake = self.fake
        if endpoint == "token":
            return fake._token(self, form)
        if endpoint == "authorize":
            return fake._authorize(query)
        if endpoint == "recently_played":
            parts = urlsplit(self.path)
            return fake._recently_played(query, f"{fake.api_url}{parts.path[len('/spotify'):]}?{parts.query}")
        if endpoint == "track":
            return fake._track(arg)
        if endpoint == "tracks_batch":
            return fake._tracks_batch(query)
        if endpoint == "spotify_audio_features":
            raise _Reply(403, _spotify_error(403, "Forbidden"))
        if endpoint == "audio_features":
            return fake._audio_features(query)
        if endpoint == "track_metadata":
            return fake._track_metadata(query)
        return fake._recommendation(query)

    def _send(self, reply: _Reply) -> None:
        if reply.raw is not None:
            data = reply.raw
            headers = {"Content-Type": "application/json", **reply.headers}
        else:
            data = json.dumps(reply.body).encode()
            headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers}
        try:
            self.send_response(reply.status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout): fine
            self.close_connection = True


def main(argv: list[str] | None = None) -> int:
    """Serve the fake by hand, with the demo listener's plays around the wall clock."""
    parser = argparse.ArgumentParser(prog="python -m spotify_brain_assets.fakes.server", description=main.__doc__)
    parser.add_argument("--port", type=int, default=8777)
    parser.add_argument("--host", default="127.0.0.1", help="keep it on loopback")
    parser.add_argument("--seed", type=int, default=7, help="the demo listener whose plays are served")
    parser.add_argument("--timezone", default="UTC", help="the simulated listener's timezone")
    parser.add_argument("--days-back", type=float, default=2.0, help="plays already made when the server starts")
    parser.add_argument("--days-ahead", type=float, default=7.0, help="plays that appear as the clock moves on")
    parser.add_argument("--rotate-refresh-tokens", action="store_true", help="rotate the refresh token on every refresh")
    args = parser.parse_args(argv)
    fake = FakeServer(args.host, args.port)
    fake.rotate_refresh_tokens = args.rotate_refresh_tokens
    count = fake.load_demo_listener(args.seed, args.timezone, args.days_back, args.days_ahead)
    fake.start()
    print(f"fake Spotify + ReccoBeats on {fake.url} ({count} plays of the demo listener, seed {args.seed})")
    print("point Spotify Brain at it with:")
    for name, value in fake.env().items():
        print(f"  export {name}={value}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
