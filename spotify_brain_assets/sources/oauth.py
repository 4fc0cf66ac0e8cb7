"""Spotify's refresh-token grant (external-apis.md §1): access tokens, and rotated refresh tokens kept.

Spotify may answer a refresh with a new refresh token, or with none (then the old one stays valid).
A rotated token is stored in a 0600 file together with a hash of the configured token it replaced,
and used only while SPOTIFY_REFRESH_TOKEN still equals that origin: a user who authorizes again gets
a new token in .env, which then wins over anything stored.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .http import ClientError, HttpClient

SCOPE = "user-read-recently-played"
REAUTHORIZE = (
    "Run `spotify-brain authorize` to authorize Spotify Brain again (it writes a new SPOTIFY_REFRESH_TOKEN "
    "to .env), then restart Dagster so that it reads it."
)


class AuthorizationExpired(RuntimeError):
    """Spotify refused the refresh token (invalid_grant): expired after 6 months, revoked, or unknown."""


class InvalidClient(RuntimeError):
    """Spotify refused the client id/secret (invalid_client)."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write_secret_file(path: Path, text: str) -> None:
    """Write `text` atomically to a file only its owner can read (0600), in a 0700 folder if new."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


class RefreshTokenStore:
    """The newest refresh token Spotify gave us, for the next run; tied to the configured token."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def current(self, configured: str) -> str:
        """The token to refresh with: the stored rotation of `configured`, else `configured` itself."""
        if not self.path.exists():
            return configured
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            origin, token = doc["origin_sha256"], doc["refresh_token"]
        except (OSError, ValueError, KeyError, TypeError):
            return configured  # unreadable: the configured token is the safe choice
        return token if origin == _digest(configured) and token else configured

    def remember(self, configured: str, rotated: str) -> None:
        doc = {
            "origin_sha256": _digest(configured),
            "refresh_token": rotated,
            "rotated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "note": "written by Spotify Brain: the rotated Spotify refresh token; keep private",
        }
        write_secret_file(self.path, json.dumps(doc, indent=2) + "\n")


class TokenManager:
    """Access tokens for the Web API, refreshed shortly before they expire and after a 401."""

    def __init__(
        self,
        accounts: HttpClient,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        store: RefreshTokenStore | None = None,
        refresh_margin_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not (client_id and client_secret and refresh_token):
            raise ValueError("Spotify client id, client secret and refresh token are all required")
        self._accounts = accounts
        self._basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        self._configured = refresh_token
        self._store = store
        self._refresh_token = store.current(refresh_token) if store else refresh_token
        self._margin = refresh_margin_s
        self._clock = clock
        self._access: str | None = None
        self._expires_at = 0.0
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"TokenManager(refreshes={self.refreshes})"

    def access_token(self) -> str:
        if self._access is None or self._clock() >= self._expires_at - self._margin:
            self._refresh()
        assert self._access is not None
        return self._access

    def close(self) -> None:
        self._accounts.close()

    def invalidate(self) -> None:
        """Forget the access token (Spotify answered 401): the next call refreshes."""
        self._access = None

    def _refresh(self) -> None:
        try:
            answer = self._accounts.request(
                "POST",
                "/api/token",
                data={"grant_type": "refresh_token", "refresh_token": self._refresh_token},
                headers={"Authorization": self._basic, "Content-Type": "application/x-www-form-urlencoded"},
            )
        except ClientError as exc:
            code = exc.payload.get("error") if isinstance(exc.payload, dict) else None
            description = exc.payload.get("error_description") if isinstance(exc.payload, dict) else None
            detail = f"{code}: {description}" if description else str(code)
            if code == "invalid_grant":
                raise AuthorizationExpired(
                    f"Spotify refused the refresh token ({detail}). Spotify expires refresh tokens 6 months after "
                    f"authorization and when access is revoked. {REAUTHORIZE}"
                ) from None
            if code == "invalid_client":
                raise InvalidClient(
                    f"Spotify refused the client credentials ({detail}). Check SPOTIFY_CLIENT_ID and "
                    "SPOTIFY_CLIENT_SECRET against the app's settings at https://developer.spotify.com/dashboard."
                ) from None
            raise
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise AuthorizationExpired(f"Spotify's token endpoint answered without an access token. {REAUTHORIZE}")
        self._access = str(answer["access_token"])
        self._expires_at = self._clock() + float(answer.get("expires_in") or 3600)
        self.refreshes += 1
        rotated = answer.get("refresh_token")
        if rotated and rotated != self._refresh_token:
            self._refresh_token = str(rotated)
            if self._store is not None:
                self._store.remember(self._configured, self._refresh_token)
