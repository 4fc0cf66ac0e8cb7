"""ReccoBeats (external-apis.md §4): audio features for Spotify ids, and track recommendations.

Keyless. Audio features come in batches of at most 40 ids; items carry ReccoBeats' own UUID as `id`,
so they are matched back through the Spotify id at the end of `href`, and ids ReccoBeats does not
know are simply absent from the answer.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..plays.parse import spotify_id_from_href
from .http import HttpClient, MalformedResponse

FEATURES_BATCH = 40
MAX_SEEDS = 5
MAX_SIZE = 100
TARGETS = (
    "acousticness", "danceability", "energy", "instrumentalness", "liveness", "speechiness", "valence",
    "key", "mode", "loudness", "tempo", "popularity", "featureWeight",
)


class ReccoBeatsClient:
    def __init__(self, http: HttpClient):
        self.http = http

    def audio_features(self, spotify_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Audio-feature items for the ids ReccoBeats knows, one per id, in batches of 40."""
        wanted = list(dict.fromkeys(i for i in spotify_ids if i))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), FEATURES_BATCH):
            batch = wanted[start : start + FEATURES_BATCH]
            answer = self.http.request("GET", "/v1/audio-features", params={"ids": batch})
            for item in _content(answer, "/v1/audio-features"):
                href = item.get("href") if isinstance(item, dict) else None
                track_id = spotify_id_from_href(href) if isinstance(href, str) else None
                if track_id in batch:
                    found.setdefault(track_id, item)
        return [found[i] for i in wanted if i in found]

    def recommendations(
        self,
        seeds: list[str],
        size: int = 20,
        negative_seeds: list[str] | None = None,
        **targets: float,
    ) -> list[dict[str, Any]]:
        """Tracks like `seeds` (1–5 Spotify or ReccoBeats ids), optionally steered by feature targets."""
        if not 1 <= len(seeds) <= MAX_SEEDS:
            raise ValueError(f"recommendations take 1 to {MAX_SEEDS} seeds, not {len(seeds)}")
        if not 1 <= size <= MAX_SIZE:
            raise ValueError(f"recommendation size must be 1 to {MAX_SIZE}, not {size}")
        unknown = set(targets) - set(TARGETS)
        if unknown:
            raise ValueError(f"unknown recommendation targets {sorted(unknown)}; expected some of {list(TARGETS)}")
        params: dict[str, Any] = {"seeds": list(seeds), "size": size, **targets}
        if negative_seeds:
            params["negativeSeeds"] = list(negative_seeds)[:MAX_SEEDS]
        answer = self.http.request("GET", "/v1/track/recommendation", params=params)
        return [t for t in _content(answer, "/v1/track/recommendation") if isinstance(t, dict)]


def _content(answer: Any, endpoint: str) -> list[Any]:
    if not isinstance(answer, dict) or not isinstance(answer.get("content"), list):
        raise MalformedResponse(
            f"reccobeats GET {endpoint} answered without a `content` list", "reccobeats", f"GET {endpoint}", 200
        )
    return answer["content"]
