"""One import as pure steps: read the export, plan the plays it holds, attach audio features.

`read_export` parses every file before anything else happens, so a malformed file stops the import
with nothing written. `plan_import` counts each play once (see `dedupe`) and ties account-data plays
to track ids (see `identify`); `complete_plays` splits the plan into plays with features (imported),
plays of tracks ReccoBeats does not know (recorded as unavailable) and plays still waiting.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..plays.ingest import UNAVAILABLE_COLUMNS, attach_features
from ..plays.schema import AUDIO_FEATURES, PLAY_COLUMNS, conform, key_in
from .dedupe import combine, drop_repeats
from .discover import Discovery, ReadLimits, discover
from .identify import identify
from .output import conform_export
from .parse import MIN_PLAY_MS, empty_parsed, parse_file

PREVIOUS_PACKAGE = "(earlier imports)"
UNKNOWN_REASON = "unknown to ReccoBeats (export import)"


@dataclass
class ParsedExport:
    discovery: Discovery
    plays: pd.DataFrame  # every music play in the files, copies included
    skipped: Counter  # rows skipped, by reason
    files: pd.DataFrame  # per file: name, kind, plays, skipped
    bytes_read: int = 0  # uncompressed


def read_export(path: Path, min_play_ms: int = MIN_PLAY_MS, limits: ReadLimits = ReadLimits()) -> ParsedExport:
    """Parse every export file under `path`; raises ExportFileError naming the first bad file,
    or the first past a cap of `limits` (checked on the declared sizes before anything is read)."""
    discovery = discover(path)
    limits.check(discovery.files)
    frames, skipped, per_file, read = [], Counter(), [], 0
    for file in discovery.files:
        raw = limits.read(file, read)
        read += len(raw)
        plays, skips = parse_file(file, raw, min_play_ms)
        del raw  # freed before the next file is read
        frames.append(plays)
        skipped += skips
        per_file.append({"file": file.name, "kind": file.kind, "plays": len(plays), "skipped": sum(skips.values())})
    plays = pd.concat(frames, ignore_index=True) if frames else empty_parsed()
    return ParsedExport(discovery, plays, skipped, pd.DataFrame(per_file, columns=["file", "kind", "plays", "skipped"]), read)


@dataclass
class ImportPlan:
    plays: pd.DataFrame  # the export's plays once each, earlier imports included, with track ids
    unidentified: pd.DataFrame  # account-data plays without one track id, with the reason
    stats: dict = field(default_factory=dict)


def plan_import(parsed: pd.DataFrame, previous: pd.DataFrame, known: pd.DataFrame, tolerance: pd.Timedelta) -> ImportPlan:
    """Every play the export holds, once, joined with the plays earlier imports stored.

    `previous` is export_plays.parquet (features included), `known` the plays in the store (names and
    ids for identifying account data). Order of trust: earlier extended plays, the new extended
    history, then account data, earlier before new.
    """
    parsed = parsed.reset_index(drop=True)
    previous = previous.assign(package=PREVIOUS_PACKAGE)
    previous.index = pd.RangeIndex(len(parsed), len(parsed) + len(previous))
    is_account = parsed["origin"].eq("export-account").to_numpy(dtype=bool)
    extended = drop_repeats(parsed[~is_account], tolerance)
    account = drop_repeats(parsed[is_account], tolerance)
    names = pd.concat([known[["track_id", "track_name", "artist_name"]], extended[["track_id", "track_name", "artist_name"]], previous[["track_id", "track_name", "artist_name"]]])
    identified, unidentified = identify(account, names)
    prev_account = previous["origin"].eq("export-account").to_numpy(dtype=bool)
    groups = (
        [previous[~prev_account]]
        + [g for _, g in extended.groupby("package", sort=True)]
        + [previous[prev_account]]
        + [g for _, g in identified.groupby("package", sort=True)]
    )
    plays = combine(groups, tolerance)
    if plays.empty:
        plays = parsed.iloc[:0]
    new = plays[plays["package"] != PREVIOUS_PACKAGE]
    stats = {
        "plays_in_files": len(parsed),
        "copies_within_an_export": len(parsed) - len(extended) - len(account),
        "account_plays_identified": len(identified),
        "account_plays_unidentified": len(unidentified),
        "duplicates_across_exports": len(extended) + len(identified) - len(new),
        "export_plays": len(plays),
        "not_imported_yet": len(new),
    }
    return ImportPlan(plays, unidentified, stats)


def features_known(cache: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """Audio features by track id from the cache and from earlier imports (one row per track)."""
    both = pd.concat([cache[["track_id"] + AUDIO_FEATURES], previous[["track_id"] + AUDIO_FEATURES]], ignore_index=True)
    both = both[both[AUDIO_FEATURES].notna().all(axis=1)]
    return both.drop_duplicates("track_id", keep="first").reset_index(drop=True)


def tracks_to_fetch(plays: pd.DataFrame, features: pd.DataFrame, unavailable_tracks: pd.Index) -> list[str]:
    """Tracks of the plan with no known features that ReccoBeats has not already said it lacks."""
    tracks = pd.Index(plays["track_id"].dropna().unique())
    return sorted(tracks.difference(pd.Index(features["track_id"])).difference(unavailable_tracks))


@dataclass
class Completion:
    plays: pd.DataFrame  # export_plays.parquet's new content
    unavailable: pd.DataFrame  # plays of tracks ReccoBeats lacks, not yet in the record
    waiting: pd.DataFrame  # plays whose tracks were not asked yet (a paused import)


def unavailable_rows(plays: pd.DataFrame, tracks: pd.Index, recorded: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """Rows for the unavailable record: plays of `tracks` (ReccoBeats lacks them) not recorded yet."""
    lacking = plays[plays["track_id"].isin(tracks).to_numpy(dtype=bool)]
    lacking = lacking[~key_in(lacking, recorded)]
    return conform_unavailable(conform(lacking, PLAY_COLUMNS).assign(first_seen_at=now, attempts=1, recorded_at=now, reason=UNKNOWN_REASON))


def conform_unavailable(record: pd.DataFrame) -> pd.DataFrame:
    """The unavailable record's columns with the dtypes ingestion writes them with."""
    out = conform(record, PLAY_COLUMNS)
    rest = record.reindex(columns=["first_seen_at", "recorded_at", "attempts", "reason"]).reset_index(drop=True)
    for col in ("first_seen_at", "recorded_at"):
        out[col] = pd.to_datetime(rest[col], utc=True).dt.as_unit("ms")
    out["attempts"] = rest["attempts"].astype("int64")
    out["reason"] = rest["reason"].astype("string")
    return out[UNAVAILABLE_COLUMNS]


def complete_plays(
    plan: ImportPlan,
    features: pd.DataFrame,
    unknown_tracks: pd.Index,
    recorded: pd.DataFrame,
    now: pd.Timestamp,
) -> Completion:
    """Split the plan by what is known of each track's features.

    `unknown_tracks` are tracks ReccoBeats does not know (asked in this or an earlier run),
    `recorded` the unavailable record already on disk (its plays are not recorded twice).
    """
    complete, missing = attach_features(plan.plays, features)
    lacking = missing["track_id"].isin(unknown_tracks).to_numpy(dtype=bool)
    return Completion(conform_export(complete), unavailable_rows(missing, unknown_tracks, recorded, now), missing[~lacking])
