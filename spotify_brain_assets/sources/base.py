"""What every listening source provides, in the APIs' own shapes (shared/docs/external-apis.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable


#: recently-played lists only the newest 50 plays (external-apis.md §2); older ones are gone from it
RECENTLY_PLAYED_WINDOW = 50


class SourceUnavailable(RuntimeError):
    """The source cannot serve this run (e.g. a spent quota): skip the run cleanly, store nothing."""


@runtime_checkable
class ListeningSource(Protocol):
    #: the `origin` recorded on each play this source provides ("spotify" or "demo")
    origin: str

    def recently_played(self, after: datetime | None) -> list[dict[str, Any]]:
        """Recently-played items (Spotify's PlayHistory objects) played after `after`, any order."""

    def audio_features(self, track_ids: list[str]) -> list[dict[str, Any]]:
        """ReccoBeats audio-feature items for up to 40 Spotify ids; unknown ids are simply absent."""

    def recommendations(self, seed_ids: list[str], targets: dict[str, float], size: int = 10) -> list[dict[str, Any]]:
        """Tracks like the seeds, near the target features, in ReccoBeats' recommendation shape."""

    def backfill(self, before: datetime) -> list[dict[str, Any]]:
        """Earlier plays a fresh data root may start from ([] where the source has none)."""
