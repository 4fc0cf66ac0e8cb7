"""Reading the plays store and its ledger, including adoption of a predecessor's history."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..storage.files import CorruptFileError, read_json, read_parquet
from ..storage.paths import DataPaths
from .schema import HISTORY_COLUMNS, KEY, PLAY_COLUMNS, SESSIONIZED_COLUMNS, conform, empty

REQUIRED_PLAY_COLUMNS = [c for c in PLAY_COLUMNS if c != "origin"]  # the predecessor had no origin


def with_origin(df: pd.DataFrame, default: str) -> pd.DataFrame:
    if "origin" not in df:
        return df.assign(origin=default)
    return df.assign(origin=df["origin"].fillna(default))


def read_ingestion_file(path: Path) -> pd.DataFrame:
    return conform(with_origin(read_parquet(path, REQUIRED_PLAY_COLUMNS), "predecessor"), PLAY_COLUMNS)


def load_plays(paths: DataPaths) -> tuple[pd.DataFrame, bool]:
    """The sessionized plays store; (store, adopted) where adopted means it came from a predecessor's history.

    A history.parquet without plays.parquet beside it was written by the predecessor (or by a user
    restoring one): it is adopted as is, session ids included.
    """
    if paths.plays.exists():
        return conform(read_parquet(paths.plays, SESSIONIZED_COLUMNS), SESSIONIZED_COLUMNS), False
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


def known_plays(paths: DataPaths) -> pd.DataFrame:
    """Keys and origins of every play already stored: merged ones, and ingested files not merged yet."""
    store, _ = load_plays(paths)
    ledger = read_ledger(paths)
    unmerged = [read_ingestion_file(p) for k, p in paths.ingestion_files().items() if ledger.get(k) != fingerprint(p)]
    columns = KEY + ["origin"]
    return pd.concat([store[columns]] + [u[columns] for u in unmerged], ignore_index=True).drop_duplicates(KEY)
