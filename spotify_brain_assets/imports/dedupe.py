"""Counting each play once across the export's files, packages and earlier imports.

Within one package (one export: a zip or a folder) Spotify lists each play once, but older dumps hold
copies of a row with a slightly different `ts` (maloja's importer met them): the same track with the
same `ms_played` ending closer together than that duration cannot be two plays, so one is dropped.
Between packages (two exports that overlap, account data beside extended history, earlier imports)
the same track within the tolerance counts once, matched one-to-one (`plays.merge.match_within`), and
the extended history's second-precision record wins over the account data's minute.
"""

from __future__ import annotations

import pandas as pd

from ..plays.merge import match_plays
from ..plays.schema import KEY


def drop_repeats(plays: pd.DataFrame, tolerance: pd.Timedelta) -> pd.DataFrame:
    """`plays` without the copies of a play inside one package (see the module docstring)."""
    if len(plays) < 2:
        return plays
    who = plays["track_id"].fillna(plays["artist_name"].fillna("") + "\x1f" + plays["track_name"].fillna(""))
    ordered = plays.assign(_who=who).sort_values(["package", "origin", "_who", "ms_played", "played_at"], kind="stable")
    same = pd.Series(True, index=ordered.index)
    for col in ("package", "origin", "_who", "ms_played"):
        same &= ordered[col].eq(ordered[col].shift())
    gap = ordered["played_at"].diff()
    overlapping = gap < pd.to_timedelta(ordered["ms_played"], unit="ms")  # back to back is two plays
    copy = same & overlapping & (gap <= tolerance)
    # the same track ending at the same instant is one play whatever the durations say: keep the longest
    longest = ordered.sort_values("ms_played", ascending=False, kind="stable")
    copy |= longest.duplicated(["package", "origin", "_who", "played_at"]).reindex(ordered.index)
    return plays.drop(index=ordered.index[copy.to_numpy(dtype=bool)])


def combine(groups: list[pd.DataFrame], tolerance: pd.Timedelta) -> pd.DataFrame:
    """Fold groups of plays in order of trust: a later group's play matching an earlier one is dropped.

    Labels must be unique across groups. Each (track_id, played_at) is kept once, the most trusted
    (matching is one-to-one, so a key listed twice in one group and once in another would survive).
    """
    groups = [g for g in groups if len(g)]
    if not groups:
        return pd.DataFrame()
    accepted = groups[0]
    for group in groups[1:]:
        pairs = match_plays(group, accepted, tolerance)
        accepted = pd.concat([accepted, group.drop(index=pairs["left"])])
    return accepted[~accepted.duplicated(KEY)]
