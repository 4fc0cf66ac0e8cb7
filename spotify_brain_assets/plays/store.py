"""Reading the plays store and its ledger, including adoption of a predecessor's history."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..storage.files import CorruptFileError, quarantine, read_json, read_parquet
from ..storage.paths import DataPaths
from .schema import HISTORY_COLUMNS, KEY, PLAY_COLUMNS, SESSIONIZED_COLUMNS, conform, empty, required

REQUIRED_PLAY_COLUMNS = [c for c in required(PLAY_COLUMNS) if c != "origin"]  # the predecessor had no origin


def with_origin(df: pd.DataFrame, default: str) -> pd.DataFrame:
    if "origin" not in df:
        return df.assign(origin=default)
    return df.assign(origin=df["origin"].fillna(default))


def read_ingestion_file(path: Path) -> pd.DataFrame:
    df = with_origin(read_parquet(path, REQUIRED_PLAY_COLUMNS), "predecessor")
    try:
        return conform(df, PLAY_COLUMNS)
    except (TypeError, ValueError) as exc:
        raise CorruptFileError(f"{path} has columns of the wrong type ({exc})") from exc


def read_ingestion_files(paths: DataPaths, files: dict[str, Path]) -> tuple[dict[str, pd.DataFrame], list[dict]]:
    """The plays of each readable file by key, and the quarantine records of the unreadable ones.

    One bad file (truncated, foreign) must not stop ingestion: Spotify keeps only 50 plays, so a run
    that fails for long enough loses listening. It is moved to `quarantine/` with its bytes intact.
    """
    frames, quarantined = {}, []
    for key, path in files.items():
        try:
            frames[key] = read_ingestion_file(path)
        except CorruptFileError as exc:
            quarantined.append(quarantine(path, paths.root, paths.quarantine, str(exc)))
    return frames, quarantined


def load_plays(paths: DataPaths) -> tuple[pd.DataFrame, bool]:
    """The sessionized plays store; (store, adopted) where adopted means it came from a predecessor's history.

    A history.parquet without plays.parquet beside it was written by the predecessor (or by a user
    restoring one): it is adopted as is, session ids included.
    """
    if paths.plays.exists():
        return conform(read_parquet(paths.plays, required(SESSIONIZED_COLUMNS)), SESSIONIZED_COLUMNS), False
    if paths.history.exists():
        adopted = read_parquet(paths.history, REQUIRED_PLAY_COLUMNS + ["session_id"])
        if adopted[REQUIRED_PLAY_COLUMNS + ["session_id"]].isna().any().any():
            raise CorruptFileError(f"{paths.history} has missing values; it cannot be adopted as a history")
        return conform(with_origin(adopted, "predecessor"), SESSIONIZED_COLUMNS), True
    return empty(SESSIONIZED_COLUMNS), False


def load_history(paths: DataPaths) -> pd.DataFrame | None:
    if not paths.history.exists():
        return None
    df = read_parquet(paths.history, REQUIRED_PLAY_COLUMNS + ["session_id"])
    if "mood_cluster_id" not in df:
        df = df.assign(mood_cluster_id=-1)
    return conform(with_origin(df, "predecessor").fillna({"mood_cluster_id": -1}), HISTORY_COLUMNS)


def history_or_empty(paths: DataPaths) -> pd.DataFrame:
    """history.parquet, or an empty frame of its columns before the first materialization."""
    df = load_history(paths)
    return df if df is not None else empty(HISTORY_COLUMNS)


def fingerprint(path: Path) -> str:
    stat = os.stat(path)
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def read_ledger(paths: DataPaths) -> dict[str, str]:
    if not paths.plays_ledger.exists():
        return {}
    doc = read_json(paths.plays_ledger)
    if not isinstance(doc, dict) or not isinstance(doc.get("merged"), dict):
        raise CorruptFileError(f"{paths.plays_ledger} is not a plays ledger")
    return doc["merged"]


def unmerged_files(paths: DataPaths, ledger: dict[str, str]) -> dict[str, Path]:
    """Ingestion files whose current version `plays` has not merged yet."""
    return {key: path for key, path in paths.ingestion_files().items() if ledger.get(key) != fingerprint(path)}


def known_plays(paths: DataPaths) -> tuple[pd.DataFrame, list[dict]]:
    """Keys and origins of every play already stored (merged ones, and ingested files not merged yet),
    and the quarantine records of files that could not be read."""
    store, _ = load_plays(paths)
    unmerged, quarantined = read_ingestion_files(paths, unmerged_files(paths, read_ledger(paths)))
    columns = KEY + ["origin"]
    known = pd.concat([store[columns]] + [u[columns] for u in unmerged.values()], ignore_index=True).drop_duplicates(KEY)
    return known, quarantined
