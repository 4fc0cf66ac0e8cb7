"""The import's files and how `plays` merges them: `processed/export_plays.parquet` and friends.

`export_plays.parquet` holds every imported play that has audio features: the columns of an
ingestion file (origin "export", or "export-account" for account data) plus the export's own columns
(ms_played, skipped, shuffle, reason_start, reason_end, offline, offline_at, source_file). History
keeps the predecessor's columns; the extra ones stay here, joinable on (track_id, played_at).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..plays.merge import DEFAULT_TOLERANCE_SECONDS
from ..plays.schema import KEY, PLAY_COLUMNS, conform, key_in, required
from ..storage.files import parquet_metadata, read_parquet, write_parquet
from ..storage.paths import DataPaths
from .parse import EXTRA_COLUMNS

EXPORT_COLUMNS = PLAY_COLUMNS + EXTRA_COLUMNS
#: the key under which `plays_ledger.json` records the version of export_plays.parquet it merged
EXPORT_LEDGER_KEY = "spotify_export"
TOLERANCE_METADATA = "spotify_brain.tolerance_seconds"
REPLACED_COLUMNS = PLAY_COLUMNS + ["replaced_at", "reason"]
_EXTRA_DTYPES = {
    "ms_played": "int64", "skipped": "boolean", "shuffle": "boolean", "reason_start": "string",
    "reason_end": "string", "offline": "boolean", "source_file": "string",
}


def conform_export(df: pd.DataFrame) -> pd.DataFrame:
    """EXPORT_COLUMNS with canonical dtypes, sorted by played_at then track_id (stable file content)."""
    out = conform(df, PLAY_COLUMNS)
    # the export has no artwork; it is fetched only for what the dashboard shows, never per play
    out["image_url"] = out["image_url"].fillna("")
    extras = df.reindex(columns=list(_EXTRA_DTYPES) + ["offline_at"]).reset_index(drop=True)
    for col, dtype in _EXTRA_DTYPES.items():
        out[col] = extras[col].astype(dtype)
    out["offline_at"] = pd.to_datetime(extras["offline_at"], utc=True).dt.as_unit("ms")
    out = out[EXPORT_COLUMNS].sort_values(["played_at", "track_id"], kind="stable")
    return out.reset_index(drop=True)


def read_export_plays(path: Path) -> pd.DataFrame:
    return conform_export(read_parquet(path, required(EXPORT_COLUMNS)))


def write_export_plays(df: pd.DataFrame, path: Path, tolerance_seconds: float) -> bool:
    """Write the imported plays unless the file already holds exactly them; True when written."""
    out = conform_export(df)
    if path.exists() and read_export_plays(path).equals(out):
        return False
    write_parquet(out, path, {TOLERANCE_METADATA: str(tolerance_seconds)})
    return True


def export_tolerance(paths: DataPaths) -> pd.Timedelta:
    """The tolerance the last import used, for reconciling its plays with the API's later on."""
    seconds = DEFAULT_TOLERANCE_SECONDS
    if paths.export_plays.exists():
        seconds = float(parquet_metadata(paths.export_plays).get(TOLERANCE_METADATA, seconds))
    return pd.Timedelta(seconds=seconds)


def unmerged_export(paths: DataPaths, ledger: dict[str, str]) -> tuple[pd.DataFrame | None, str | None]:
    """The imported plays `plays` has not merged in this version yet, and the version to record."""
    if not paths.export_plays.exists():
        return None, None
    stat = paths.export_plays.stat()
    version = f"{stat.st_size}:{stat.st_mtime_ns}"
    if ledger.get(EXPORT_LEDGER_KEY) == version:
        return None, None
    return conform(read_parquet(paths.export_plays, required(PLAY_COLUMNS)), PLAY_COLUMNS), version


def record_replaced(paths: DataPaths, before: pd.DataFrame, after: pd.DataFrame, now: pd.Timestamp) -> int:
    """Append the plays a merge replaced (an imported play superseded by the API's record of it)."""
    gone = ~key_in(before, after)
    if not gone.any():
        return 0
    rows = conform(before[gone], PLAY_COLUMNS).assign(
        replaced_at=now, reason="the same play from a more precise source (API or extended history)"
    )
    if paths.replaced_plays.exists():
        rows = pd.concat([read_parquet(paths.replaced_plays, required(REPLACED_COLUMNS)), rows], ignore_index=True)
    rows["replaced_at"] = pd.to_datetime(rows["replaced_at"], utc=True).dt.as_unit("ms")
    rows["reason"] = rows["reason"].astype("string")
    write_parquet(rows.drop_duplicates(KEY, keep="first")[REPLACED_COLUMNS].reset_index(drop=True), paths.replaced_plays)
    return int(gone.sum())


def replaced_keys(paths: DataPaths) -> pd.DataFrame:
    """Keys of plays deliberately replaced: the `no_play_lost` check does not count them as lost."""
    if not paths.replaced_plays.exists():
        return pd.DataFrame({"track_id": pd.Series(dtype="string"), "played_at": pd.Series(dtype="datetime64[ms, UTC]")})
    return conform(read_parquet(paths.replaced_plays, KEY), KEY)
