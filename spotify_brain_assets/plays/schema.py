"""Column contracts shared by ingestion files, plays.parquet and history.parquet (the predecessor's)."""

from __future__ import annotations

import numpy as np
import pandas as pd

AUDIO_FEATURES = ["valence", "energy", "danceability", "acousticness", "instrumentalness", "tempo"]
#: The six inputs of the mood clusters: tempo enters normalized.
CLUSTER_FEATURES = ["valence", "energy", "danceability", "acousticness", "instrumentalness", "tempo_norm"]
METADATA_COLUMNS = ["track_id", "played_at", "track_name", "artist_name"]
#: An ingestion file's columns, in the predecessor's order, plus `origin` (where the play came from)
#: and `duration_ms` (the track's length).
PLAY_COLUMNS = METADATA_COLUMNS + AUDIO_FEATURES + ["tempo_norm", "image_url", "origin", "duration_ms"]
SESSIONIZED_COLUMNS = PLAY_COLUMNS + ["session_id"]
HISTORY_COLUMNS = SESSIONIZED_COLUMNS + ["mood_cluster_id"]
KEY = ["track_id", "played_at"]

#: Origins a play can have. The API and the demo listener feed ingestion partitions; the others join
#: through their own doors (adoption, the export import: "export" for the extended streaming history,
#: "export-account" for account data, whose end times have minute precision).
ORIGINS = ("spotify", "demo", "demo-backfill", "predecessor", "export", "export-account")
UNASSIGNED_MOOD = -1
#: Columns younger than the predecessor: absent from older files, and nullable. A track's length comes
#: with the API's plays; the predecessor's and the export's plays do not know it.
OPTIONAL_COLUMNS = ("duration_ms",)

_STRING_COLUMNS = ["track_id", "track_name", "artist_name", "image_url", "origin"]


def tempo_norm(tempo: pd.Series) -> pd.Series:
    return (tempo / 250.0).clip(upper=1.0)


def conform(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Select `columns` in order with canonical dtypes (UTC ms timestamps, float features, int ids)."""
    out = df.reindex(columns=columns).copy()
    out["played_at"] = pd.to_datetime(out["played_at"], utc=True).dt.as_unit("ms")
    for col in _STRING_COLUMNS:
        if col in out:
            out[col] = out[col].astype("string")
    for col in AUDIO_FEATURES + ["tempo_norm"]:
        if col in out:
            out[col] = out[col].astype("float64")
    for col in ("session_id", "mood_cluster_id"):
        if col in out:
            out[col] = out[col].astype("int64")
    if "duration_ms" in out:
        out["duration_ms"] = pd.to_numeric(out["duration_ms"]).astype("Int64")
    return out.reset_index(drop=True)


def required(columns: list[str]) -> list[str]:
    """The columns a file must have to be read: all but the optional ones, which older files lack."""
    return [c for c in columns if c not in OPTIONAL_COLUMNS]


def empty(columns: list[str]) -> pd.DataFrame:
    return conform(pd.DataFrame(columns=columns), columns)


def is_demo(origins: pd.Series) -> bool:
    """Whether any play came from the demo listener: everything built from it must say so."""
    return bool(origins.astype("string").str.startswith("demo").any())


class MixedSourcesError(ValueError):
    """Demo plays would join a real listener's history, or real plays a demo history."""


def check_source_kind(stored_origins: pd.Series, source_origin: str, allow_mixed: bool = False) -> None:
    """Refuse a listening source of the other kind than the plays already stored.

    Demo plays in a real history (or the reverse) would silently corrupt every model and report,
    so mixing takes an explicit `allow_mixed`.
    """
    if allow_mixed or len(stored_origins) == 0:
        return
    demo_source = source_origin.startswith("demo")
    stored = stored_origins.astype("string").dropna()
    other = sorted(set(stored[stored.str.startswith("demo") != demo_source]))
    if not other:
        return
    if demo_source:
        raise MixedSourcesError(
            f"this data root holds real listening (origins {', '.join(other)}) but the listening source is the "
            "demo listener: set SPOTIFY_BRAIN_SOURCE=spotify with your credentials (`spotify-brain authorize` "
            "writes them to .env), or point SPOTIFY_BRAIN_DATA_DIR at another data root. To mix them on purpose, "
            "set allow_mixed_sources in the `ingestions` config (`spotify-brain update --allow-mixed-sources`)."
        )
    raise MixedSourcesError(
        f"this data root holds demo plays (origins {', '.join(other)}) but the listening source is Spotify: "
        "point SPOTIFY_BRAIN_DATA_DIR at a new data root for your own listening (or move this one away), or set "
        "SPOTIFY_BRAIN_SOURCE=demo to keep using the demo. To mix them on purpose, set allow_mixed_sources in "
        "the `ingestions` config (`spotify-brain update --allow-mixed-sources`)."
    )


def has_features(df: pd.DataFrame) -> pd.Series:
    return df[AUDIO_FEATURES].notna().all(axis=1)


def key_in(df: pd.DataFrame, other: pd.DataFrame) -> np.ndarray:
    """Per row of `df`, whether `other` holds its (track_id, played_at): aligned with `df` however
    often a key repeats on either side (a left merge would add a row per repeat)."""
    if df.empty or other.empty:
        return np.zeros(len(df), dtype=bool)
    return pd.MultiIndex.from_frame(conform(df[KEY], KEY)).isin(pd.MultiIndex.from_frame(conform(other[KEY], KEY)))
