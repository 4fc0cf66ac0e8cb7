"""Merging ingested plays into the sessionized store.

Plays of one source are matched exactly on (track_id, played_at). Imported plays (Spotify's data
export) record the same listening as the API with end times that differ by up to about a minute, so
wherever an imported play meets another source's play, the same track within a tolerance counts once
and the more trusted record wins (`ORIGIN_RANK`): the API's, then the extended export's, then the
minute-precision account data's. A winner arriving later replaces the stored loser.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import KEY, SESSIONIZED_COLUMNS, conform, has_features
from .sessions import DEFAULT_GAP_MINUTES, renumber_tail

#: export `ts` and API `played_at` of one play differ by up to about a minute (external-apis.md §5.2)
DEFAULT_TOLERANCE_SECONDS = 60
#: which record of one play wins; origins not listed (the API's, the demo's, the predecessor's) rank 2
ORIGIN_RANK = {"export-account": 0, "export": 1}
API_RANK = 2
#: extra uncertainty of an origin's end times on top of the tolerance (account data has minutes only)
ORIGIN_SLACK = {"export-account": pd.Timedelta(minutes=1)}


def origin_rank(origin: pd.Series) -> np.ndarray:
    return origin.astype("string").map(ORIGIN_RANK).fillna(API_RANK).to_numpy(dtype="int64")


def _imprecise(origin: pd.Series) -> np.ndarray:
    return origin.astype("string").isin(list(ORIGIN_SLACK)).to_numpy(dtype=bool)


def _match_frame(df: pd.DataFrame, position: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "track_id": df["track_id"].astype("string").reset_index(drop=True),
            "played_at": pd.to_datetime(df["played_at"], utc=True).dt.as_unit("ms").reset_index(drop=True),
            position: np.arange(len(df)),
        }
    )


def _in_order(lhs: pd.DataFrame, rhs: pd.DataFrame, tolerance: pd.Timedelta) -> pd.DataFrame:
    """Pairs (_l, _r) from runs of one track (consecutive plays of both sides within `tolerance`)
    holding as many left as right plays: the k-th left with the k-th right, where within tolerance."""
    both = pd.concat(
        [
            pd.DataFrame({"track_id": lhs["track_id"], "played_at": lhs["played_at"], "_side": 0, "_pos": lhs["_l"]}),
            pd.DataFrame({"track_id": rhs["track_id"], "played_at": rhs["played_at"], "_side": 1, "_pos": rhs["_r"]}),
        ],
        ignore_index=True,
    ).sort_values(["track_id", "played_at", "_side"], kind="stable")
    new_track = both["track_id"].ne(both["track_id"].shift()).fillna(True).to_numpy(dtype=bool)
    both["_run"] = np.cumsum(new_track | both["played_at"].diff().gt(tolerance).to_numpy(dtype=bool))
    lefts = both.groupby("_run")["_side"].transform("size") - both.groupby("_run")["_side"].transform("sum")
    even = (lefts * 2 == both.groupby("_run")["_side"].transform("size")).to_numpy()
    both = both[even]
    both["_rank"] = both.groupby(["_run", "_side"]).cumcount()
    left, right = both[both["_side"] == 0], both[both["_side"] == 1]
    pairs = left.merge(right, on=["_run", "_rank"], suffixes=("", "_right"))
    close = (pairs["played_at"] - pairs["played_at_right"]).abs() <= tolerance
    return pd.DataFrame({"_l": pairs.loc[close, "_pos"].to_numpy(), "_r": pairs.loc[close, "_pos_right"].to_numpy()})


def match_within(left: pd.DataFrame, right: pd.DataFrame, tolerance: pd.Timedelta) -> pd.DataFrame:
    """One-to-one pairs of plays of the same track whose end times lie within `tolerance`, closest first.

    Returns the index labels of the matched rows (columns `left`, `right`). Each play is matched at
    most once, so two real plays of one track a few seconds apart are never both absorbed by a single
    play of the other side. First, where plays of a track lie closer together than `tolerance` (a
    song on repeat), a run holding as many plays on each side is paired in time order: both sides
    list the same plays in the same order, which the nearest neighbour can misalign by one. The rest
    is matched in rounds, each pairing every right row with its closest claimant (a handful of
    rounds, however long the history).
    """
    empty = pd.DataFrame({"left": left.index[:0], "right": right.index[:0]})
    if len(left) == 0 or len(right) == 0:
        return empty
    lhs = _match_frame(left, "_l")
    rhs = _match_frame(right, "_r")
    shared = pd.Index(lhs["track_id"].unique()).intersection(pd.Index(rhs["track_id"].unique()))
    lhs, rhs = lhs[lhs["track_id"].isin(shared)], rhs[rhs["track_id"].isin(shared)]
    rounds = [_in_order(lhs, rhs, tolerance)]
    lhs = lhs[~lhs["_l"].isin(rounds[0]["_l"])]
    rhs = rhs[~rhs["_r"].isin(rounds[0]["_r"])]
    rhs = rhs.assign(_r_at=rhs["played_at"]).sort_values("played_at", kind="stable")
    lhs = lhs.sort_values("played_at", kind="stable")
    while len(lhs) and len(rhs):
        near = pd.merge_asof(lhs, rhs, on="played_at", by="track_id", direction="nearest", tolerance=tolerance)
        near = near[near["_r"].notna()]
        if near.empty:
            break
        near = near.assign(_r=near["_r"].astype("int64"), _delta=(near["played_at"] - near["_r_at"]).abs())
        won = near.sort_values(["_delta", "_l"], kind="stable").drop_duplicates("_r")
        rounds.append(won[["_l", "_r"]])
        lhs = lhs[~lhs["_l"].isin(won["_l"])]
        rhs = rhs[~rhs["_r"].isin(won["_r"])]
    pairs = pd.concat(rounds, ignore_index=True)
    if pairs.empty:
        return empty
    return pd.DataFrame({"left": left.index[pairs["_l"].to_numpy()], "right": right.index[pairs["_r"].to_numpy()]})


def match_plays(incoming: pd.DataFrame, stored: pd.DataFrame, tolerance: pd.Timedelta) -> pd.DataFrame:
    """`match_within`, widening the tolerance where either side's end times have minute precision."""
    slack = max(ORIGIN_SLACK.values(), default=pd.Timedelta(0))
    inc_loose, st_loose = _imprecise(incoming["origin"]), _imprecise(stored["origin"])
    pairs = [match_within(incoming[~inc_loose], stored[~st_loose], tolerance)]
    rest_in = incoming[~incoming.index.isin(pairs[0]["left"])]
    rest_st = stored[~stored.index.isin(pairs[0]["right"])]
    # whatever is left, with one imprecise side at least: match with the slack added
    loose_in = _imprecise(rest_in["origin"])
    pairs.append(match_within(rest_in[loose_in], rest_st, tolerance + slack))
    rest_in = rest_in[~rest_in.index.isin(pairs[1]["left"])]
    rest_st = rest_st[~rest_st.index.isin(pairs[1]["right"])]
    pairs.append(match_within(rest_in, rest_st[_imprecise(rest_st["origin"])], tolerance + slack))
    return pd.concat(pairs, ignore_index=True)


def _keys(df: pd.DataFrame, stored: bool, start: int) -> pd.DataFrame:
    """(track_id, played_at, origin) of rows on a fresh integer index, remembering each row's label."""
    out = df[["track_id", "played_at", "origin"]].assign(_label=df.index, _stored=stored)
    out.index = pd.RangeIndex(start, start + len(out))
    return out


def reconcile(store: pd.DataFrame, incoming: pd.DataFrame, tolerance: pd.Timedelta) -> tuple[pd.Index, pd.Index]:
    """Which incoming rows are new plays, and which stored rows they replace: (kept labels, replaced labels).

    Only pairs involving an imported play are matched within `tolerance` (two API plays of one track a
    few seconds apart are two plays). Incoming rows are taken strongest origin first, so a weaker one
    also yields to a stronger one arriving in the same batch. Ties keep the stored row. Both frames
    need unique index labels.
    """
    keys = _keys(store, stored=True, start=0)
    ranks_in = origin_rank(incoming["origin"])
    kept, replaced = [], []
    for rank in sorted(set(ranks_in.tolist()), reverse=True):
        batch = incoming[ranks_in == rank]
        eligible = keys[origin_rank(keys["origin"]) < API_RANK] if rank == API_RANK else keys
        pairs = match_plays(batch, eligible, tolerance)
        wins = rank > origin_rank(keys.loc[pairs["right"], "origin"])
        losers = keys.loc[pairs.loc[wins, "right"]]
        replaced.append(losers.loc[losers["_stored"].to_numpy(dtype=bool), "_label"].to_numpy())
        fresh = batch.drop(index=pairs.loc[~wins, "left"])
        kept.append(fresh.index.to_numpy())
        start = int(keys.index.max()) + 1 if len(keys) else 0
        keys = pd.concat([keys.drop(index=losers.index), _keys(fresh, stored=False, start=start)])
    return (
        pd.Index(np.concatenate(kept)) if kept else incoming.index[:0],
        pd.Index(np.concatenate(replaced)) if replaced else store.index[:0],
    )


def merge_plays(
    store: pd.DataFrame,
    incoming: pd.DataFrame,
    gap_minutes: int = DEFAULT_GAP_MINUTES,
    tolerance: pd.Timedelta | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add complete, unseen plays from `incoming` to `store`; returns (merged store, added rows).

    The store stays sorted and free of duplicates; session ids are recomputed only from the session
    the earliest change joins, so ids of sessions that ended before it never change. With a
    `tolerance`, imported plays are reconciled with other sources' (see the module docstring): stored
    rows that lose are absent from the merged store (compare with `store` to see which).
    """
    candidates = incoming[has_features(incoming)].drop_duplicates(KEY)
    if len(store):
        seen = store[KEY].assign(_seen=True)
        candidates = candidates.merge(seen, on=KEY, how="left")
        candidates = candidates[candidates["_seen"].isna()].drop(columns="_seen")
    removed_at = pd.Series([], dtype="datetime64[ms, UTC]")
    if tolerance is not None and len(candidates) and len(store):
        store = store.reset_index(drop=True)
        candidates = candidates.reset_index(drop=True)
        kept, replaced = reconcile(store, candidates, tolerance)
        candidates = candidates.loc[kept]
        removed_at = store.loc[replaced, "played_at"]
        store = store.drop(index=replaced)
    added = conform(candidates.sort_values("played_at"), [c for c in SESSIONIZED_COLUMNS if c != "session_id"])
    if len(added) == 0 and len(removed_at) == 0:
        return conform(store, SESSIONIZED_COLUMNS), added
    first_change = min(t for t in (added["played_at"].min(), removed_at.min()) if pd.notna(t))
    merged = pd.concat([store, added], ignore_index=True).sort_values("played_at", kind="stable")
    merged = renumber_tail(merged.reset_index(drop=True), first_change, gap_minutes)
    return conform(merged, SESSIONIZED_COLUMNS), added
