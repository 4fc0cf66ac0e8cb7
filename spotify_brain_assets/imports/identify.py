"""Tying account-data plays (names, no track id) to a track id, only where that is unambiguous.

A (artist, title) pair is identified when every play already known with that pair — in history, in
the extended history being imported, in earlier imports — has one and the same track id. The same
title on a single and on an album has two ids: such plays are reported as ambiguous, never guessed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NOT_FOUND = "no known play of this artist and title has a track id"
UNIDENTIFIED_COLUMNS = ["artist_name", "track_name", "reason", "plays", "first_played", "last_played"]


def _key(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().str.casefold()


def name_index(known: pd.DataFrame) -> pd.DataFrame:
    """(artist key, title key) → how many distinct track ids carry it, and one of them.

    The API lists every artist of a track ("A, B"); the export names the first only: both keys count.
    """
    known = known[["track_id", "track_name", "artist_name"]].dropna()
    known = known[known["track_id"] != ""]
    first_artist = known["artist_name"].str.split(", ", n=1).str[0]
    keys = pd.concat(
        [
            pd.DataFrame({"artist_key": _key(known["artist_name"]), "track_key": _key(known["track_name"]), "track_id": known["track_id"]}),
            pd.DataFrame({"artist_key": _key(first_artist), "track_key": _key(known["track_name"]), "track_id": known["track_id"]}),
        ],
        ignore_index=True,
    ).drop_duplicates()
    grouped = keys.groupby(["artist_key", "track_key"], sort=False)["track_id"]
    return pd.DataFrame({"ids": grouped.nunique(), "track_id": grouped.first()}).reset_index()


def identify(account: pd.DataFrame, known: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(plays with their track id, plays left unidentified with a `reason`); labels are kept."""
    if len(account) == 0:
        return account, account.assign(reason=pd.Series(dtype="string"))
    index = name_index(known)
    keyed = pd.DataFrame({"artist_key": _key(account["artist_name"]), "track_key": _key(account["track_name"])})
    found = keyed.merge(index, on=["artist_key", "track_key"], how="left")
    found.index = account.index
    ids = found["ids"].fillna(0).to_numpy(dtype="int64")
    identified = account[ids == 1].assign(track_id=found.loc[ids == 1, "track_id"].astype("string"))
    rest = account[ids != 1]
    reason = np.where(ids[ids != 1] == 0, NOT_FOUND, "ambiguous: " + ids[ids != 1].astype(str) + " track ids share this artist and title")
    return identified, rest.assign(reason=pd.array(reason, dtype="string"))


def summarize_unidentified(rest: pd.DataFrame) -> pd.DataFrame:
    """One row per (artist, title, reason) with its play count and time span, most played first."""
    if len(rest) == 0:
        return pd.DataFrame(
            {
                "artist_name": pd.Series(dtype="string"),
                "track_name": pd.Series(dtype="string"),
                "reason": pd.Series(dtype="string"),
                "plays": pd.Series(dtype="int64"),
                "first_played": pd.Series(dtype="datetime64[ms, UTC]"),
                "last_played": pd.Series(dtype="datetime64[ms, UTC]"),
            }
        )
    grouped = rest.groupby(["artist_name", "track_name", "reason"], sort=False)["played_at"]
    out = grouped.agg(plays="size", first_played="min", last_played="max").reset_index()
    out = out.sort_values(["plays", "artist_name", "track_name"], ascending=[False, True, True], kind="stable")
    return out[UNIDENTIFIED_COLUMNS].astype({"plays": "int64"}).reset_index(drop=True)
