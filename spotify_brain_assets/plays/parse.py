"""Turn API payloads (Spotify recently-played items, ReccoBeats audio features) into rows.

Both the real clients and the demo listener speak the APIs' documented shapes, so this is the one
place that knows those shapes. Malformed payloads raise `PayloadError` naming what is wrong.
"""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd

from .schema import AUDIO_FEATURES, METADATA_COLUMNS


class PayloadError(ValueError):
    """An API answered with something that does not fit its documented shape."""


def pick_image(images: list[dict[str, Any]] | None) -> str:
    """The 300 px album image, else the largest one, else an empty string."""
    if not images:
        return ""
    for image in images:
        if image.get("width") == 300 or image.get("height") == 300:
            return image.get("url") or ""
    sized = sorted(images, key=lambda im: (im.get("width") or 0) * (im.get("height") or 0), reverse=True)
    return sized[0].get("url") or ""


def item_rows(items: Iterable[dict[str, Any]], origin: str) -> pd.DataFrame:
    """Recently-played items → one row per play (metadata only), deduplicated and sorted."""
    rows = []
    for n, item in enumerate(items):
        try:
            track = item["track"]
            track_id = track["id"]
            played_at = item["played_at"]
        except (KeyError, TypeError) as exc:
            raise PayloadError(f"recently-played item {n} lacks {exc}: {str(item)[:200]}") from exc
        if not track_id:  # local files carry no id and have no audio features anywhere
            continue
        artists = track.get("artists") or []
        rows.append(
            {
                "track_id": track_id,
                "played_at": played_at,
                "track_name": track.get("name") or "",
                "artist_name": ", ".join(a.get("name", "") for a in artists if a.get("name")),
                "image_url": pick_image((track.get("album") or {}).get("images")),
                "duration_ms": track.get("duration_ms"),
            }
        )
    df = pd.DataFrame(rows, columns=METADATA_COLUMNS + ["image_url", "duration_ms"])
    try:
        # with or without milliseconds, always UTC
        df["played_at"] = pd.to_datetime(df["played_at"], utc=True, format="ISO8601").dt.as_unit("ms")
    except (ValueError, TypeError) as exc:
        raise PayloadError(f"recently-played item has an unreadable played_at: {exc}") from exc
    try:
        df["duration_ms"] = pd.to_numeric(df["duration_ms"]).astype("Int64")
    except (ValueError, TypeError) as exc:
        raise PayloadError(f"recently-played item has an unreadable track duration_ms: {exc}") from exc
    df["origin"] = origin
    return df.drop_duplicates(["track_id", "played_at"]).sort_values("played_at").reset_index(drop=True)


def spotify_id_from_href(href: str) -> str:
    return href.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]


def feature_rows(items: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """ReccoBeats audio-feature items → one row per Spotify track id (matched through `href`)."""
    rows = []
    for n, item in enumerate(items):
        try:
            row = {"track_id": spotify_id_from_href(item["href"])}
            for feature in AUDIO_FEATURES:
                value = item[feature]
                row[feature] = float(value)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PayloadError(f"audio-features item {n} is malformed ({exc!r}): {str(item)[:200]}") from exc
        rows.append(row)
    df = pd.DataFrame(rows, columns=["track_id"] + AUDIO_FEATURES)
    return df.drop_duplicates("track_id", keep="last").reset_index(drop=True)
