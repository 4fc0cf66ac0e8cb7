"""Merging ingested plays into the sessionized store."""

from __future__ import annotations

import pandas as pd

from .schema import KEY, SESSIONIZED_COLUMNS, conform, has_features
from .sessions import DEFAULT_GAP_MINUTES, renumber_tail


def merge_plays(
    store: pd.DataFrame, incoming: pd.DataFrame, gap_minutes: int = DEFAULT_GAP_MINUTES
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add complete, unseen plays from `incoming` to `store`; returns (merged store, added rows).

    The store stays sorted and free of duplicates; session ids are recomputed only from the session
    the earliest added play joins, so ids of sessions that ended before it never change.
    """
    candidates = incoming[has_features(incoming)].drop_duplicates(KEY)
    if len(store):
        seen = store[KEY].assign(_seen=True)
        candidates = candidates.merge(seen, on=KEY, how="left")
        candidates = candidates[candidates["_seen"].isna()].drop(columns="_seen")
    added = conform(candidates.sort_values("played_at"), [c for c in SESSIONIZED_COLUMNS if c != "session_id"])
    if len(added) == 0:
        return conform(store, SESSIONIZED_COLUMNS), added
    merged = pd.concat([store, added], ignore_index=True).sort_values("played_at", kind="stable")
    merged = renumber_tail(merged.reset_index(drop=True), added["played_at"].min(), gap_minutes)
    return conform(merged, SESSIONIZED_COLUMNS), added
