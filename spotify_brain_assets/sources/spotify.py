"""The Spotify Web API calls Spotify Brain makes: recently-played, and single-track lookups.

Development-Mode apps lost the batch `GET /v1/tracks?ids=` in 2026 (external-apis.md §0), so a track
is looked up alone, and only when a recently-played item lacks what history needs (name, artists,
album images). Item order from the API is not relied on: items are sorted and deduplicated here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd

from .http import ClientError, HttpClient
from .oauth import TokenManager

RECENTLY_PLAYED = "/v1/me/player/recently-played"
PAGE_LIMIT = 50
MAX_PAGES = 10  # the API keeps only the newest 50 plays: more pages than this means a paging loop


class SpotifyClient:
    def __init__(self, api: HttpClient, tokens: TokenManager):
        self.api, self.tokens = api, tokens
        self.track_lookups = 0

    def get(self, path: str, endpoint: str, params: dict[str, Any] | None = None) -> Any:
        """GET with the access token; a 401 refreshes the token once and retries once."""
        for attempt in (1, 2):
            try:
                return self.api.request(
                    "GET", path, endpoint=endpoint, params=params,
                    headers={"Authorization": f"Bearer {self.tokens.access_token()}"},
                )
            except ClientError as exc:
                if exc.status == 401 and attempt == 1:
                    self.tokens.invalidate()
                    continue
                if exc.status == 403:
                    raise ClientError(
                        f"{exc} — in Development Mode the app owner needs Spotify Premium, the listener must be on "
                        "the app's user allowlist (Dashboard → User Management), and the token needs the scope "
                        "user-read-recently-played",
                        exc.service, exc.endpoint, exc.status, exc.payload,
                    ) from None
                raise
        raise AssertionError("unreachable")

    def recently_played(self, after: datetime | None, limit: int = PAGE_LIMIT) -> list[dict[str, Any]]:
        """Plays after `after` (all the API keeps when None), oldest first, without duplicates.

        Follows `next` while pages come back full, but only its cursor: the request goes to our own
        base URL, so a `next` naming another host never receives the token.
        """
        after_ms = None if after is None else int(pd.Timestamp(after).tz_convert("UTC").value // 1_000_000)
        params: dict[str, Any] = {"limit": limit}
        if after_ms is not None:
            params["after"] = after_ms
        items: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page = self.get(RECENTLY_PLAYED, RECENTLY_PLAYED, params)
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise ClientError(
                    f"spotify GET {RECENTLY_PLAYED} answered without an `items` list", "spotify", RECENTLY_PLAYED, 200
                )
            batch = page["items"]
            items.extend(batch)
            cursor = _next_cursor(page.get("next"))
            if len(batch) < limit or cursor is None or cursor == params_cursor(params):
                break
            params = {"limit": limit, **cursor}
        items = _sorted_unique(items)
        if after_ms is not None:
            items = [i for i in items if _played_ms(i) > after_ms]
        return self.complete(items)

    def track(self, track_id: str) -> dict[str, Any] | None:
        """GET /v1/tracks/{id}; None when Spotify does not know the id."""
        self.track_lookups += 1
        try:
            return self.get(f"/v1/tracks/{track_id}", "/v1/tracks/{id}")
        except ClientError as exc:
            if exc.status in (400, 404):
                return None
            raise

    def complete(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Items whose track lacks name, artists or album images get them from GET /v1/tracks/{id}."""
        lacking = list(dict.fromkeys(i["track"]["id"] for i in items if _lacks(i.get("track"))))
        if not lacking:
            return items
        found = {tid: t for tid in lacking if (t := self.track(tid)) is not None}
        return [
            {**item, "track": found[item["track"]["id"]]} if item["track"]["id"] in found and _lacks(item["track"]) else item
            for item in items
        ]


def params_cursor(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k in ("after", "before")}


def _next_cursor(next_url: str | None) -> dict[str, int] | None:
    if not next_url:
        return None
    query = parse_qs(urlsplit(next_url).query)
    for key in ("after", "before"):
        if query.get(key):
            try:
                return {key: int(query[key][0])}
            except ValueError:
                return None
    return None


def _played_ms(item: dict[str, Any]) -> int:
    return int(pd.Timestamp(item["played_at"]).tz_convert("UTC").value // 1_000_000)


def _sorted_unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Oldest first, one item per (track id, played_at); items without a track id (local files) dropped."""
    keyed = {}
    for item in items:
        track = item.get("track") or {}
        if not track.get("id") or not item.get("played_at"):
            continue
        keyed.setdefault((track["id"], _played_ms(item)), item)
    return [keyed[k] for k in sorted(keyed, key=lambda k: (k[1], k[0]))]


def _lacks(track: dict[str, Any] | None) -> bool:
    if not track or not track.get("id"):
        return False  # nothing to look up by
    artists = track.get("artists") or []
    images = (track.get("album") or {}).get("images") or []
    return not track.get("name") or not any(a.get("name") for a in artists) or not images
