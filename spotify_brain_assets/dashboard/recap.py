"""The yearly recap ("Wrapped"): per calendar year of the listener's timezone, what they listened to
most, the mood of the year and how moods moved by month, the busiest day, the longest session, the
artists discovered and the habit hours. Pure, vectorized pandas over `stats.Listening`.
"""

from __future__ import annotations

import pandas as pd

from .stats import Listening, ranked, summarize

TOP = 5
HABIT_HOURS = 3


def _by_year(table: pd.DataFrame, columns: dict[str, str]) -> dict[int, dict]:
    """year → {json name: value} of the one row per year of `table` (indexed by year)."""
    out = table[list(columns)].rename(columns=columns)
    return {int(year): {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for year, row in out.iterrows()}


def _months(plays: pd.DataFrame) -> dict[int, list]:
    """year → [{month, plays, moods: [{mood_cluster_id, plays}]}] for the months with plays."""
    per_mood = plays[plays["mood"] >= 0].groupby(["year", "month", "mood"]).size().rename("plays").reset_index()
    totals = plays.groupby(["year", "month"]).size()
    out: dict[int, list] = {}
    for (year, month), rows in per_mood.groupby(["year", "month"]):  # at most 12 months a year
        out.setdefault(int(year), []).append({
            "month": int(month),
            "plays": int(totals.loc[(year, month)]),
            "moods": [{"mood_cluster_id": int(m), "plays": int(n)} for m, n in zip(rows["mood"], rows["plays"])],
        })
    return out


def _new_artists(listening: Listening, top: int) -> dict[int, dict]:
    """year → artists first heard that year: how many, and the most played of them."""
    c = listening.credits
    first_year = c.groupby("artist")["year"].transform("min")
    new = c[c["year"] == first_year]
    counts = new.groupby("year")["artist"].nunique()
    per_artist = new.groupby(["year", "artist"]).agg(plays=("play", "size"), minutes=("minutes", "sum")).reset_index()
    best = ranked(per_artist, "year", top, "artist").join(listening.artists[["artist_name"]], on="artist")
    return {
        int(year): {
            "count": int(counts.get(year, 0)),
            "top": [{"artist_name": a, "plays": int(n)} for a, n in zip(rows["artist_name"], rows["plays"])],
        }
        for year, rows in best.groupby("year")
    }


def yearly_recap(listening: Listening, labels: dict[int, str], top: int = TOP) -> list[dict]:
    """One entry per calendar year with plays, newest first."""
    p = listening.plays
    if len(p) == 0:
        return []
    summaries = summarize(listening, p, listening.credits, "year", top, labels, n_moods=0)  # every mood: the months show them all

    days = p.groupby(["year", "date"]).agg(plays=("track", "size"), minutes=("minutes", "sum")).reset_index()
    busiest = days.sort_values(["minutes", "plays"], ascending=False, kind="stable").groupby("year").head(1)
    busiest = busiest.set_index("year").assign(date=lambda d: d["date"].dt.strftime("%Y-%m-%d"), minutes=lambda d: d["minutes"].round(1))

    sessions = p.groupby("session_id").agg(
        year=("year", "first"), start=("played_at", "min"), end=("played_at", "max"), plays=("track", "size"), minutes=("minutes", "sum")
    )
    longest = sessions.sort_values(["minutes", "plays"], ascending=False, kind="stable").groupby("year").head(1).set_index("year")
    tz = listening.now.tz
    longest = longest.assign(
        start=longest["start"].dt.tz_convert(tz).map(pd.Timestamp.isoformat),
        end=longest["end"].dt.tz_convert(tz).map(pd.Timestamp.isoformat),
        minutes=longest["minutes"].round(1),
    )
    span = p.groupby("year")["date"].agg(["min", "max"])

    busiest_by_year = _by_year(busiest, {"date": "date", "plays": "plays", "minutes": "minutes"})
    longest_by_year = _by_year(longest, {"start": "start", "end": "end", "plays": "plays", "minutes": "minutes"})
    months = _months(p)
    new_artists = _new_artists(listening, top)
    first_year = int(span.index.min())
    out = []
    for year in sorted(summaries, reverse=True):  # one entry per year of listening
        s = summaries[year]
        clock = pd.Series(s["clock"])
        habits = clock[clock > 0].sort_values(ascending=False, kind="stable").head(HABIT_HOURS)
        mood = s["top_moods"][0] if s["top_moods"] else None
        out.append({
            "year": int(year),
            "in_progress": int(year) == listening.now.year,
            "first_year": int(year) == first_year,
            "first_day": span.loc[year, "min"].strftime("%Y-%m-%d"),
            "last_day": span.loc[year, "max"].strftime("%Y-%m-%d"),
            **s,
            "mood_of_year": None if mood is None else {**mood, "share": round(mood["plays"] / s["plays"], 4)},
            "moods_by_month": months.get(int(year), []),
            "busiest_day": busiest_by_year[int(year)],
            "longest_session": longest_by_year[int(year)],
            "new_artists": new_artists.get(int(year), {"count": 0, "top": []}),
            "habit_hours": [{"hour": int(h), "plays": int(n), "share": round(int(n) / s["plays"], 4)} for h, n in habits.items()],
        })
    return out
