"""The household page: the listeners of one deployment who opted in (`share: true`), side by side.

`export/household_data.json` and `export/household.html` show who listened when today (minutes per
local hour of the household's timezone), the household's top artists and moods of the last days
(plays summed over the listeners, with how many of them share each) and a link to each listener's
dashboard. A listener who does not share is dropped before anything is computed: no name, play or
count of theirs reaches either file. Pure, vectorized pandas; one loop over the listeners.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from ..listeners.config import NAME_RE
from ..plays.schema import is_demo
from ..storage.files import write_json, write_text
from .build import _iso, _labels
from .page import render_household_page
from .stats import ARTIST_SEPARATOR, play_minutes

SCHEMA_VERSION = 1
HOUSEHOLD_JSON = "household_data.json"
HOUSEHOLD_PAGE = "household.html"
#: each listener's dashboard, from export/ of the household's data root: in the listener's own data
#: root, `<data root>/listeners/<name>/` (the README's "Several listeners")
LISTENER_PAGE = "../listeners/{name}/export/index.html"
TOP = 10
TOP_DAYS = 7
#: the suffix `ml.clusters.unique_labels` adds to a listener's second cluster of one kind of mood
_DUPLICATE_SUFFIX = re.compile(r" \(\d+\)$")
NEEDED = ["played_at", "artist_name", "mood_cluster_id", "origin"]


@dataclass(frozen=True)
class HouseholdMember:
    """One listener of listeners.yaml: `history` is its history.parquet, `clusters` its
    mood_clusters.json (None before the first retrain). Only `share=True` members are shown."""

    name: str
    history: pd.DataFrame
    share: bool = False
    display_name: str | None = None
    clusters: dict | None = None


def sharing(members: list[HouseholdMember]) -> list[HouseholdMember]:
    """The members who opted in, checked; the others are not looked at."""
    shown = [m for m in members if m.share is True]
    names = [m.name for m in shown]
    for m in shown:
        if not isinstance(m.name, str) or not NAME_RE.match(m.name):
            # a name becomes a path of the export: nothing that could climb out of it
            raise ValueError(f"listener name {m.name!r} is not a slug (a lowercase letter, then letters, digits and '_')")
        missing = [c for c in NEEDED if c not in m.history.columns]
        if missing:
            raise ValueError(f"listener {m.name!r}: its history lacks the columns {missing}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"listener names must be unique; repeated: {', '.join(duplicates)}")
    return shown


def _plays(members: list[HouseholdMember], now: pd.Timestamp) -> pd.DataFrame:
    """Every play up to `now` of every member: listener (index into members), start, end, minutes,
    artist_name, mood_label (None where the listener's clusters do not name it)."""
    frames = []
    for i, m in enumerate(members):  # a loop over listeners: each has its own gaps and its own moods
        history = m.history[NEEDED + (["duration_ms"] if "duration_ms" in m.history.columns else [])]
        history = history.assign(played_at=pd.to_datetime(history["played_at"], utc=True))
        history = history[history["played_at"] <= now].reset_index(drop=True)  # a frozen demo clock may lag what was stored
        minutes = play_minutes(history)["minutes"]
        labels = pd.Series(_labels(m.clusters), dtype="string").str.replace(_DUPLICATE_SUFFIX, "", regex=True)
        frames.append(pd.DataFrame({
            "listener": i,
            "end": history["played_at"],
            "minutes": minutes,
            "artist_name": history["artist_name"].astype("string"),
            "mood_label": history["mood_cluster_id"].astype("int64").map(labels).astype("string"),
        }))
    plays = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {"listener": pd.Series(dtype="int64"), "end": pd.Series(dtype="datetime64[ms, UTC]"), "minutes": pd.Series(dtype="float64"),
         "artist_name": pd.Series(dtype="string"), "mood_label": pd.Series(dtype="string")})
    plays["end"] = plays["end"].dt.as_unit("ms")
    plays["start"] = plays["end"] - pd.to_timedelta(plays["minutes"], unit="min")
    return plays


def day_edges(now: pd.Timestamp, tz: ZoneInfo) -> pd.DatetimeIndex:
    """The hour boundaries of `now`'s calendar day in `tz`, midnight to midnight (23, 24 or 25 hours)."""
    day = now.tz_convert(tz).tz_localize(None).normalize()
    start, end = (d.tz_localize(tz, ambiguous=True, nonexistent="shift_forward") for d in (day, day + pd.Timedelta(days=1)))
    return pd.date_range(start, end, freq="h", inclusive="left").append(pd.DatetimeIndex([end]))


def today_by_hour(day: pd.DataFrame, n_listeners: int, edges: pd.DatetimeIndex) -> pd.DataFrame:
    """Minutes listened per listener (rows) and local hour of the day of `edges` (columns 0–23), each
    play of `day` split over the hours it spanned (the part before midnight is not counted). A 25-hour
    day's repeated hour holds both; a 23-hour day's skipped hour stays 0."""
    lo, hi = edges[:-1].as_unit("ms").asi8, edges[1:].as_unit("ms").asi8
    start, end = day["start"].dt.as_unit("ms").astype("int64").to_numpy(), day["end"].dt.as_unit("ms").astype("int64").to_numpy()
    overlap = np.clip(np.minimum(end[:, None], hi[None, :]) - np.maximum(start[:, None], lo[None, :]), 0, None) / 60_000.0
    per_bin = pd.DataFrame(overlap, columns=edges[:-1].hour).groupby(day["listener"].to_numpy()).sum()
    return per_bin.T.groupby(level=0).sum().T.reindex(index=range(n_listeners), columns=range(24), fill_value=0.0)


def _credits(plays: pd.DataFrame) -> pd.DataFrame:
    """One row per credited artist of a play (history joins a track's artists with ", ")."""
    code, strings = pd.factorize(plays["artist_name"].fillna(""))
    split = pd.Series(strings, dtype="object").str.split(ARTIST_SEPARATOR, regex=False).explode()
    split = split[split.str.len() > 0]
    mapping = pd.DataFrame({"code": split.index.to_numpy(), "artist_name": split.to_numpy()})
    return pd.DataFrame({"code": code, "listener": plays["listener"].to_numpy(), "minutes": plays["minutes"].to_numpy()}).merge(mapping, on="code")


def _top(table: pd.DataFrame, key: str, n: int) -> list[dict]:
    """Plays, minutes and listeners per `key`, the `n` first: most plays, most listeners, most minutes, then by name."""
    if table.empty:
        return []
    out = table.groupby(key).agg(plays=("listener", "size"), minutes=("minutes", "sum"), listeners=("listener", "nunique")).reset_index()
    out = out.sort_values(["plays", "listeners", "minutes", key], ascending=[False, False, False, True], kind="stable").head(n)
    out["minutes"] = out["minutes"].round(1)
    return [{key: str(r[0]), "plays": int(r[1]), "minutes": float(r[2]), "listeners": int(r[3])}
            for r in out[[key, "plays", "minutes", "listeners"]].itertuples(index=False)]  # at most n rows


def build_household(members: list[HouseholdMember], now: pd.Timestamp, timezone: str, top: int = TOP, days: int = TOP_DAYS) -> dict:
    """household_data.json: the sharing listeners' day and the household's top artists and moods."""
    try:
        tz = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"household timezone {timezone!r} is not an IANA timezone (such as Europe/Stockholm)") from exc
    now = pd.Timestamp(now).tz_convert("UTC")
    shown = sharing(members)
    plays = _plays(shown, now)
    edges = day_edges(now, tz)
    today = plays[plays["end"] > edges[0]]
    hours = today_by_hour(today, len(shown), edges)
    today_plays = today.groupby("listener").size().reindex(range(len(shown)), fill_value=0)
    last_play = plays.groupby("listener")["end"].max()

    since = now - pd.Timedelta(days=days)
    recent = plays[plays["end"] > since]
    moods = recent.dropna(subset=["mood_label"])
    top_moods = _top(moods, "mood_label", top)
    for mood in top_moods:
        mood["share"] = round(mood["plays"] / len(moods), 4)

    listeners = [
        {
            "name": m.name,
            "display_name": m.display_name or m.name,
            "dashboard": LISTENER_PAGE.format(name=m.name),
            "is_demo": is_demo(m.history["origin"]),
            "today": {
                "plays": int(today_plays[i]),
                "minutes": round(float(hours.loc[i].sum()), 1),
                "hours": [round(float(v), 1) for v in hours.loc[i]],
                "last_play": _iso(last_play.get(i), tz),
            },
        }
        for i, m in enumerate(shown)
    ]
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": _iso(now, tz),
        "timezone": timezone,
        "date": edges[0].date().isoformat(),
        "is_demo": any(entry["is_demo"] for entry in listeners),
        "listeners": listeners,
        "period": {"days": days, "start": _iso(since, tz), "end": _iso(now, tz), "plays": int(len(recent)),
                   "minutes": round(float(recent["minutes"].sum()), 1), "listeners": int(recent["listener"].nunique())},
        "top_artists": _top(_credits(recent), "artist_name", top),
        "top_moods": top_moods,
    }


def write_household(export_dir: Path, members: list[HouseholdMember], now: pd.Timestamp, timezone: str) -> dict:
    """Writes export_dir/household_data.json and export_dir/household.html (each atomically);
    returns figures for the asset's metadata."""
    data = build_household(members, now, timezone)
    write_json(data, Path(export_dir) / HOUSEHOLD_JSON)
    write_text(render_household_page(data), Path(export_dir) / HOUSEHOLD_PAGE)
    listeners = data["listeners"]
    return {
        "listeners": len(listeners),
        "listened_today": sum(1 for entry in listeners if entry["today"]["plays"] > 0),
        "plays_today": sum(entry["today"]["plays"] for entry in listeners),
        "minutes_today": round(sum(entry["today"]["minutes"] for entry in listeners), 1),
        "top_artist": data["top_artists"][0]["artist_name"] if data["top_artists"] else "none",
        "demo_data": data["is_demo"],
    }
