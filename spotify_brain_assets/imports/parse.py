"""The export's JSON records → one row per music play, vectorized (a file holds ~16k plays).

Extended history (`Streaming_History_Audio_*.json`, `endsong_*.json`): `ts` is the UTC end of the
play, the same moment the API reports as `played_at`; the track id comes from `spotify_track_uri`.
Account data (`StreamingHistory_music_*.json`, `StreamingHistory*.json`): minute-precision UTC
`endTime`, names only, no id. Podcast, audiobook and video rows, plays shorter than 30 s and
incognito plays are skipped and counted, as the API never lists them either. A file that is not what
its name says raises `ExportFileError` naming it, so nothing is imported from it half-way.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd

from .discover import ACCOUNT, EXTENDED, ExportFile, ExportFileError

MIN_PLAY_MS = 30_000
TRACK_URI_RE = r"^spotify:track:([0-9A-Za-z]{22})$"
#: `offline_timestamp` is seconds in newer exports, milliseconds in older ones; 1e11 s is year 5138
MS_THRESHOLD = 1e11
SPOTIFY_LAUNCH = pd.Timestamp("2006-04-01", tz="UTC")  # earlier offline timestamps are placeholders (0, 1)

EXTENDED_FIELDS = [
    "ts", "ms_played", "master_metadata_track_name", "master_metadata_album_artist_name", "spotify_track_uri",
    "spotify_episode_uri", "episode_name", "audiobook_uri", "audiobook_chapter_uri", "reason_start",
    "reason_end", "shuffle", "skipped", "offline", "offline_timestamp", "incognito_mode",
]
ACCOUNT_FIELDS = ["endTime", "artistName", "trackName", "msPlayed", "podcastName", "episodeName"]
REQUIRED = {EXTENDED: ["ts", "ms_played", "spotify_track_uri"], ACCOUNT: ["endTime", "msPlayed"]}

#: what a parsed play carries: the play itself, the export's extra columns, and where it came from
PARSED_COLUMNS = [
    "track_id", "played_at", "track_name", "artist_name", "ms_played", "skipped", "shuffle",
    "reason_start", "reason_end", "offline", "offline_at", "origin", "source_file", "package",
]
EXTRA_COLUMNS = ["ms_played", "skipped", "shuffle", "reason_start", "reason_end", "offline", "offline_at", "source_file"]
ORIGIN = {EXTENDED: "export", ACCOUNT: "export-account"}
_BOOLS = {True: True, False: False, "true": True, "false": False, "True": True, "False": False}


def load_records(file: ExportFile, raw: bytes | bytearray) -> list[dict]:
    """The file's JSON array of objects, or `ExportFileError` saying what it is instead."""
    try:
        records = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportFileError(f"{file.name}: not valid JSON ({exc}); was the download or extraction cut short?") from exc
    if not isinstance(records, list):
        raise ExportFileError(f"{file.name}: expected a JSON array of plays, found a {type(records).__name__}")
    kinds = set(map(type, records))
    if kinds - {dict}:
        raise ExportFileError(f"{file.name}: expected a JSON array of objects, found {sorted(k.__name__ for k in kinds - {dict})} items")
    if records:
        missing = [f for f in REQUIRED[file.kind] if f not in records[0]]
        if missing:
            raise ExportFileError(f"{file.name}: its plays lack {missing}; is it really {_kind_name(file.kind)}?")
    return records


def _kind_name(kind: str) -> str:
    return "extended streaming history" if kind == EXTENDED else "account-data streaming history"


def _bad_row(file: ExportFile, df: pd.DataFrame, bad: pd.Series, field: str, problem: str) -> ExportFileError:
    first = int(np.flatnonzero(bad.to_numpy())[0])
    value = df[field].iloc[first]
    return ExportFileError(f"{file.name}: {int(bad.sum())} plays have {problem} (the first, play {first}, has {field}={value!r})")


def _booleans(values: pd.Series) -> pd.Series:
    """true/false, 1.0/0.0 (some old dumps) or null → nullable boolean."""
    return values.map(_BOOLS).astype("boolean")


def _milliseconds(file: ExportFile, df: pd.DataFrame, field: str) -> pd.Series:
    ms = pd.to_numeric(df[field], errors="coerce")
    bad = ms.isna() | (ms < 0)
    if bad.any():
        raise _bad_row(file, df, bad, field, "no readable play duration")
    return ms.astype("int64")


def offline_times(values: pd.Series) -> pd.Series:
    """`offline_timestamp` in seconds or milliseconds (0, null or placeholders → NaT), as UTC."""
    number = pd.to_numeric(values, errors="coerce").astype("float64")
    millis = np.round(np.where(number >= MS_THRESHOLD, number, number * 1000.0))
    times = pd.to_datetime(millis, unit="ms", utc=True, errors="coerce").as_unit("ms")
    return pd.Series(times, index=values.index).where(lambda t: t >= SPOTIFY_LAUNCH)


def _result(df: pd.DataFrame, file: ExportFile) -> pd.DataFrame:
    df = df.assign(origin=ORIGIN[file.kind], source_file=file.name, package=file.package)
    for col in ("track_id", "track_name", "artist_name", "reason_start", "reason_end", "origin", "source_file", "package"):
        df[col] = df[col].astype("string")
    return df[PARSED_COLUMNS].reset_index(drop=True)


def parse_extended(records: list[dict], file: ExportFile, min_play_ms: int = MIN_PLAY_MS) -> tuple[pd.DataFrame, Counter]:
    """Music plays of an extended-history file, and how many rows were skipped for which reason."""
    df = pd.DataFrame.from_records(records, columns=EXTENDED_FIELDS) if records else pd.DataFrame(columns=EXTENDED_FIELDS)
    ended = pd.to_datetime(df["ts"], utc=True, format="ISO8601", errors="coerce")
    if ended.isna().any():
        raise _bad_row(file, df, ended.isna(), "ts", "no readable end time")
    ms = _milliseconds(file, df, "ms_played")
    track_id = df["spotify_track_uri"].astype("string").str.extract(TRACK_URI_RE, expand=False)
    episode = df["spotify_episode_uri"].notna() | df["episode_name"].notna()
    audiobook = df["audiobook_uri"].notna() | df["audiobook_chapter_uri"].notna()
    incognito = _booleans(df["incognito_mode"]).fillna(False).to_numpy(dtype=bool)
    music = track_id.notna().to_numpy()
    short = (ms < min_play_ms).to_numpy()
    reason = np.select(
        [~music & episode.to_numpy(), ~music & audiobook.to_numpy(), ~music, incognito, short],
        ["podcast episode", "audiobook", "no track id (video, local file or removed track)", "incognito", f"shorter than {min_play_ms // 1000} s"],
        default="",
    )
    skipped = Counter(reason[reason != ""].tolist())
    keep = reason == ""
    out = pd.DataFrame(
        {
            "track_id": track_id,
            "played_at": ended.dt.as_unit("ms"),
            "track_name": df["master_metadata_track_name"].astype("string").fillna(""),
            "artist_name": df["master_metadata_album_artist_name"].astype("string").fillna(""),
            "ms_played": ms,
            "skipped": _booleans(df["skipped"]),
            "shuffle": _booleans(df["shuffle"]),
            "reason_start": df["reason_start"],
            "reason_end": df["reason_end"],
            "offline": _booleans(df["offline"]),
            "offline_at": offline_times(df["offline_timestamp"]),
        }
    )
    return _result(out[keep], file), skipped


def parse_account(records: list[dict], file: ExportFile, min_play_ms: int = MIN_PLAY_MS) -> tuple[pd.DataFrame, Counter]:
    """Music plays of an account-data file (track_id still unknown), and the rows skipped by reason."""
    df = pd.DataFrame.from_records(records, columns=ACCOUNT_FIELDS) if records else pd.DataFrame(columns=ACCOUNT_FIELDS)
    ended = pd.to_datetime(df["endTime"], utc=True, format="%Y-%m-%d %H:%M", errors="coerce")
    if ended.isna().any():
        raise _bad_row(file, df, ended.isna(), "endTime", "no end time of the form YYYY-MM-DD HH:MM")
    ms = _milliseconds(file, df, "msPlayed")
    music = (df["artistName"].notna() & df["trackName"].notna()).to_numpy()
    podcast = (df["podcastName"].notna() | df["episodeName"].notna()).to_numpy()
    short = (ms < min_play_ms).to_numpy()
    reason = np.select(
        [~music & podcast, ~music, short],
        ["podcast episode", "no artist or track name", f"shorter than {min_play_ms // 1000} s"],
        default="",
    )
    skipped = Counter(reason[reason != ""].tolist())
    keep = reason == ""
    missing_bool = pd.Series(pd.NA, index=df.index, dtype="boolean")
    out = pd.DataFrame(
        {
            "track_id": pd.Series(pd.NA, index=df.index, dtype="string"),
            "played_at": ended.dt.as_unit("ms"),
            "track_name": df["trackName"].astype("string"),
            "artist_name": df["artistName"].astype("string"),
            "ms_played": ms,
            "skipped": missing_bool,
            "shuffle": missing_bool,
            "reason_start": pd.Series(pd.NA, index=df.index, dtype="string"),
            "reason_end": pd.Series(pd.NA, index=df.index, dtype="string"),
            "offline": missing_bool,
            "offline_at": pd.Series(pd.NaT, index=df.index, dtype="datetime64[ms, UTC]"),
        }
    )
    return _result(out[keep], file), skipped


def parse_file(file: ExportFile, raw: bytes | bytearray, min_play_ms: int = MIN_PLAY_MS) -> tuple[pd.DataFrame, Counter]:
    """The plays of one file, from its bytes (read within the import's limits, `ReadLimits.read`)."""
    records = load_records(file, raw)
    parser = parse_extended if file.kind == EXTENDED else parse_account
    return parser(records, file, min_play_ms)


def empty_parsed() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "track_id": pd.Series(dtype="string"),
            "played_at": pd.Series(dtype="datetime64[ms, UTC]"),
            "track_name": pd.Series(dtype="string"),
            "artist_name": pd.Series(dtype="string"),
            "ms_played": pd.Series(dtype="int64"),
            "skipped": pd.Series(dtype="boolean"),
            "shuffle": pd.Series(dtype="boolean"),
            "reason_start": pd.Series(dtype="string"),
            "reason_end": pd.Series(dtype="string"),
            "offline": pd.Series(dtype="boolean"),
            "offline_at": pd.Series(dtype="datetime64[ms, UTC]"),
            "origin": pd.Series(dtype="string"),
            "source_file": pd.Series(dtype="string"),
            "package": pd.Series(dtype="string"),
        }
    )
