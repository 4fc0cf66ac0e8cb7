"""Listening stats over history: time listened, plays, top artists, tracks and moods, the listening
clock and the calendar, for the ranges a listener switches between. Pure, vectorized pandas.

Everything is in the listener's timezone. The same summaries serve the yearly recap (`recap.py`),
grouped by year instead of by range.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ..plays.schema import HISTORY_COLUMNS, empty

#: a gap longer than this between two plays means the listener paused or stopped
GAP_CAP = pd.Timedelta(minutes=10)
#: the length assumed for a play with nothing better to go on (a typical pop track)
TYPICAL_TRACK_MS = 210_000
#: the ranges of the page's range switch: key → (label, length; None is all time)
RANGES: dict[str, tuple[str, pd.Timedelta | None]] = {
    "7d": ("Last 7 days", pd.Timedelta(days=7)),
    "4w": ("Last 4 weeks", pd.Timedelta(days=28)),
    "12m": ("Last 12 months", pd.Timedelta(days=365)),
    "all": ("All time", None),
}
TOP = 10
CALENDAR_DAYS = 365
ARTIST_SEPARATOR = ", "  # history joins a track's credited artists with it


def play_minutes(history: pd.DataFrame, listened: pd.DataFrame | None = None, cap: pd.Timedelta = GAP_CAP) -> pd.DataFrame:
    """Minutes listened per play (aligned to `history`) and whether the figure is an estimate.

    `played_at` marks the end of a play, so the time since the previous play bounds how long it can
    have lasted. Best first: the export's `ms_played` (from `listened`: track_id, played_at,
    ms_played); the track's length, cut short by that gap when the next track came sooner (a skip);
    the gap itself when under `cap`; else the median of the plays measured so, or a typical length.
    """
    n = len(history)
    if n == 0:
        return pd.DataFrame({"minutes": pd.Series(dtype="float64"), "estimated": pd.Series(dtype=bool)})
    at = history["played_at"].dt.as_unit("ms").astype("int64").to_numpy()  # ms since the epoch
    order = np.argsort(at, kind="stable")
    gap_sorted = np.empty(n, dtype="float64")
    gap_sorted[0] = np.nan
    gap_sorted[1:] = np.diff(at[order])
    gap = np.empty(n, dtype="float64")
    gap[order] = gap_sorted
    length = (history["duration_ms"] if "duration_ms" in history else pd.Series(np.nan, index=history.index))
    length = pd.to_numeric(length).astype("float64").to_numpy()
    ms = np.where(np.isnan(length), np.nan, np.fmin(length, gap))  # fmin: a missing gap keeps the length
    if listened is not None and len(listened):
        export = listened[["track_id", "played_at", "ms_played"]].drop_duplicates(["track_id", "played_at"])
        measured = history[["track_id", "played_at"]].merge(export, on=["track_id", "played_at"], how="left")["ms_played"]
        ms = np.where(measured.notna().to_numpy(), pd.to_numeric(measured).astype("float64").to_numpy(), ms)
    estimated = np.isnan(ms)
    within = estimated & (gap <= cap / pd.Timedelta(milliseconds=1))
    ms = np.where(within, gap, ms)
    known = ms[~np.isnan(ms)]
    fallback = float(np.median(known)) if len(known) else float(TYPICAL_TRACK_MS)
    ms = np.where(np.isnan(ms), fallback, ms)
    return pd.DataFrame({"minutes": ms / 60_000.0, "estimated": estimated}, index=history.index)


@dataclass
class Listening:
    """History prepared once for every summary. The big frames hold numbers only (names are looked
    up for the few rows shown), so years of plays group fast."""

    plays: pd.DataFrame  # played_at, date, hour, year, month, minutes, estimated, track, mood, session_id
    credits: pd.DataFrame  # one row per credited artist of a play: play (row of `plays`), artist, minutes, year
    tracks: pd.DataFrame  # by track code: track_id, track_name, artist_name, image_url (the newest artwork)
    artists: pd.DataFrame  # by artist code: artist_name, image_url (the newest artwork of their plays)
    now: pd.Timestamp  # in the listener's timezone


def _newest_art(codes: np.ndarray, image: np.ndarray, images: pd.Index, size: int) -> pd.Series:
    """The newest artwork per code (codes in play order; `image` indexes `images`, -1 for none)."""
    has = image >= 0
    newest = pd.Series(image[has]).groupby(codes[has]).last().reindex(range(size))
    if not len(images):
        return pd.Series(pd.NA, index=range(size), dtype="string")
    return pd.Series(images.take(newest.fillna(0).astype("int64")), dtype="string").where(newest.notna().to_numpy())


def prepare(history: pd.DataFrame, now: pd.Timestamp, tz: ZoneInfo, listened: pd.DataFrame | None = None) -> Listening:
    now = pd.Timestamp(now).tz_convert(tz)
    past = history.reset_index(drop=True) if len(history) else empty(HISTORY_COLUMNS)
    if len(past) and (past["played_at"] > now).any():  # a frozen demo clock may lag what was stored
        past = past[past["played_at"] <= now].reset_index(drop=True)
    minutes = play_minutes(past, listened)
    local = past["played_at"].dt.tz_convert(tz)
    track, track_ids = pd.factorize(past["track_id"])
    plays = pd.DataFrame(
        {
            "played_at": past["played_at"],
            "date": local.dt.tz_localize(None).dt.normalize(),  # the wall-clock day, 23 or 25 hours long or not
            "hour": local.dt.hour.astype("int64"),
            "year": local.dt.year.astype("int64"),
            "month": local.dt.month.astype("int64"),
            "minutes": minutes["minutes"],
            "estimated": minutes["estimated"],
            "track": track,
            "mood": past["mood_cluster_id"].astype("int64"),
            "session_id": past["session_id"].astype("int64"),
        }
    )
    # strings are handled once per distinct value, never per play and range
    image, images = pd.factorize(past["image_url"].replace("", pd.NA))  # -1: no artwork
    newest_play = pd.Series(np.arange(len(past))).groupby(track).last().to_numpy()
    tracks = past[["track_name", "artist_name"]].iloc[newest_play].reset_index(drop=True).astype("string")
    tracks.insert(0, "track_id", pd.Series(track_ids, dtype="string"))
    tracks["image_url"] = _newest_art(track, image, images, len(tracks))
    string, strings = pd.factorize(past["artist_name"].fillna(""))
    split = pd.Series(strings, dtype="object").str.split(ARTIST_SEPARATOR, regex=False).explode()
    split = split[split.str.len() > 0]
    artist, names = pd.factorize(split)
    mapping = pd.DataFrame({"string": split.index.to_numpy(), "artist": artist})
    credits = pd.DataFrame({"play": np.arange(len(plays)), "string": string}).merge(mapping, on="string")
    credits = credits.drop(columns="string").sort_values("play", kind="stable").reset_index(drop=True)
    credits = credits.join(plays[["minutes", "year"]], on="play")
    artists = pd.DataFrame({"artist_name": pd.Series(names, dtype="string")})
    artists["image_url"] = _newest_art(credits["artist"].to_numpy(), image[credits["play"].to_numpy()], images, len(artists))
    return Listening(plays, credits, tracks, artists, now)


def ranked(table: pd.DataFrame, group: str, n: int, code: str) -> pd.DataFrame:
    """The `n` first rows per group: most plays, then most minutes, then first heard (a stable order)."""
    table = table.sort_values([group, "plays", "minutes", code], ascending=[True, False, False, True], kind="stable")
    return table.groupby(group, sort=False).head(n)


def _records(table: pd.DataFrame, group: str, columns: dict[str, str]) -> dict:
    """group value → list of {json name: value} rows, in table order."""
    out: dict = {}
    table = table.assign(minutes=table["minutes"].round(1))
    for row in table[[group] + list(columns)].itertuples(index=False):  # at most n rows per group
        out.setdefault(row[0], []).append({columns[c]: _plain(v) for c, v in zip(columns, row[1:])})
    return out


def _plain(value):
    if value is pd.NA or value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def summarize(
    listening: Listening, plays: pd.DataFrame, credits: pd.DataFrame, group: str, n: int, labels: dict[int, str], n_moods: int | None = None
) -> dict:
    """Per value of `group` (a column of `plays` and `credits`): totals, the top `n` artists and
    tracks, the top `n_moods` moods (default `n`; 0 for all), and plays per local hour."""
    if len(plays) == 0:
        return {}
    totals = plays.groupby(group).agg(
        plays=("track", "size"), minutes=("minutes", "sum"), estimated=("estimated", "sum"), tracks=("track", "nunique")
    )
    totals["artists"] = credits.groupby(group)["artist"].nunique().reindex(totals.index, fill_value=0)
    tracks = plays.groupby([group, "track"]).agg(plays=("track", "size"), minutes=("minutes", "sum")).reset_index()
    artists = credits.groupby([group, "artist"]).agg(plays=("play", "size"), minutes=("minutes", "sum")).reset_index()
    moods = plays[plays["mood"] >= 0].groupby([group, "mood"]).agg(plays=("track", "size"), minutes=("minutes", "sum")).reset_index()
    clock = plays.groupby([group, "hour"]).size().unstack(fill_value=0).reindex(columns=range(24), fill_value=0)

    # names are looked up for the rows shown only
    top_tracks = _records(ranked(tracks, group, n, "track").join(listening.tracks, on="track"), group, {
        "track_id": "track_id", "track_name": "track_name", "artist_name": "artist_name",
        "plays": "plays", "minutes": "minutes", "image_url": "image_url"})
    top_artists = _records(ranked(artists, group, n, "artist").join(listening.artists, on="artist"), group, {
        "artist_name": "artist_name", "plays": "plays", "minutes": "minutes", "image_url": "image_url"})
    moods = ranked(moods, group, (n if n_moods is None else n_moods) or len(moods), "mood")
    moods["label"] = [labels.get(m, f"Mood {m}") for m in moods["mood"]]  # the few rows shown
    top_moods = _records(moods, group, {"mood": "mood_cluster_id", "label": "mood_label", "plays": "plays", "minutes": "minutes"})
    return {
        key: {
            "minutes": round(float(row.minutes), 1),
            "estimated_share": round(float(row.estimated) / row.plays, 4),
            "plays": int(row.plays),
            "tracks": int(row.tracks),
            "artists": int(row.artists),
            "top_artists": top_artists.get(key, []),
            "top_tracks": top_tracks.get(key, []),
            "top_moods": top_moods.get(key, []),
            "clock": [int(v) for v in clock.loc[key]],
        }
        for key, row in totals.iterrows()  # one row per range or year
    }


def _empty_summary() -> dict:
    return {"minutes": 0.0, "estimated_share": 0.0, "plays": 0, "tracks": 0, "artists": 0,
            "top_artists": [], "top_tracks": [], "top_moods": [], "clock": [0] * 24}


def calendar(listening: Listening, days: int = CALENDAR_DAYS) -> dict:
    """Plays and minutes per local calendar day of the last `days` days, today included."""
    today = listening.now.tz_localize(None).normalize()
    start = today - pd.Timedelta(days=days - 1)
    p = listening.plays
    recent = p[p["date"] >= start]
    index = pd.date_range(start, today, freq="D")
    per_day = recent.groupby("date").agg(plays=("track", "size"), minutes=("minutes", "sum")).reindex(index, fill_value=0)
    return {
        "start": start.date().isoformat(),
        "end": today.date().isoformat(),
        "plays": per_day["plays"].astype("int64").tolist(),
        "minutes": per_day["minutes"].round().astype("int64").tolist(),
    }


def listening_stats(listening: Listening, labels: dict[int, str], top: int = TOP) -> dict:
    """Every range of the page's switch, precomputed, and the calendar of the last 12 months."""
    p, c, now = listening.plays, listening.credits, listening.now
    starts = [None if length is None else now - length for _, length in RANGES.values()]
    keep = [np.ones(len(p), dtype=bool) if start is None else (p["played_at"] > start).to_numpy() for start in starts]
    # one frame holding each play once per range it falls in (ranges by number): one groupby serves all
    ranged = pd.concat([p[m].assign(range=i) for i, m in enumerate(keep)], ignore_index=True)
    play_of = c["play"].to_numpy()
    ranged_credits = pd.concat([c[m[play_of]].assign(range=i) for i, m in enumerate(keep)], ignore_index=True)
    summaries = summarize(listening, ranged, ranged_credits, "range", top, labels)
    first = p["played_at"].min() if len(p) else None
    ranges = {}
    for i, (key, (label, _)) in enumerate(RANGES.items()):
        start = starts[i] if starts[i] is not None else first
        ranges[key] = {
            "label": label,
            "start": None if start is None else pd.Timestamp(start).tz_convert(now.tz).isoformat(),
            "end": now.isoformat(),
            **summaries.get(i, _empty_summary()),
        }
    return {"ranges": ranges, "calendar": calendar(listening)}
