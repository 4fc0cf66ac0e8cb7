"""Data-quality checks on history. Blocking: a bad history would poison everything downstream."""

from typing import Iterator

import dagster as dg
import pandas as pd

from ...imports.output import replaced_keys
from ...plays.schema import KEY, OPTIONAL_COLUMNS
from ...plays.sessions import DEFAULT_GAP_MINUTES, gap_rule_violations
from ...plays.store import history_or_empty
from ...resources import DataStore
from ...storage.files import parquet_metadata, read_parquet
from ..factory import listener_multi_check, per_listener
from .history import GAP_MINUTES

#: each check on history and what it guarantees (the UI shows this as the check's description)
HISTORY_CHECKS = {
    "no_duplicates": "No play is stored twice: (track_id, played_at) is unique.",
    "no_nulls": "No column of history.parquet has a missing value.",
    "sorted_by_played_at": "Plays are in played_at order.",
    "sessions_follow_gap_rule": "A new session (the next id) starts exactly where the pause since the previous play "
    "exceeds the gap (30 minutes unless configured).",
    "no_play_lost": "Every play of the previous history is still there (an imported play replaced by the API's "
    "record of the same play counts as replaced, not lost).",
}


@listener_multi_check(
    specs=[dg.AssetCheckSpec(name, asset="history", blocking=True, description=text) for name, text in HISTORY_CHECKS.items()]
)
def history_checks(store: DataStore) -> Iterator[dg.AssetCheckResult]:
    """Blocking checks on history: a failure stops everything downstream of it in the run."""
    paths = store.paths
    df = history_or_empty(paths)
    dupes = int(df.duplicated(KEY).sum())
    yield dg.AssetCheckResult(check_name="no_duplicates", passed=dupes == 0, metadata={"duplicates": dupes})
    raw = read_parquet(paths.history) if paths.history.exists() else df
    nulls = raw.drop(columns=list(OPTIONAL_COLUMNS), errors="ignore").isna().sum()
    yield dg.AssetCheckResult(
        check_name="no_nulls",
        passed=int(nulls.sum()) == 0,
        metadata={"nulls": int(nulls.sum()), "columns_with_nulls": ", ".join(nulls[nulls > 0].index) or "none"},
    )
    yield dg.AssetCheckResult(check_name="sorted_by_played_at", passed=bool(df["played_at"].is_monotonic_increasing))
    gap = int(parquet_metadata(paths.history).get(GAP_MINUTES, DEFAULT_GAP_MINUTES)) if paths.history.exists() else DEFAULT_GAP_MINUTES
    violations = gap_rule_violations(df, gap)
    yield dg.AssetCheckResult(
        check_name="sessions_follow_gap_rule", passed=violations == 0, metadata={"violations": violations, "gap_minutes": gap}
    )
    lost = replaced = 0
    if paths.history_previous.exists():
        before = read_parquet(paths.history_previous, KEY)[KEY]
        before["played_at"] = pd.to_datetime(before["played_at"], utc=True).dt.as_unit("ms")
        kept = before.merge(df[KEY], on=KEY, how="left", indicator=True)
        gone = kept[kept["_merge"] == "left_only"][KEY]
        # an imported play superseded by the API's record of the same play was replaced, not lost
        superseded = gone.merge(replaced_keys(paths), on=KEY, how="left", indicator="_why")["_why"].eq("both")
        replaced = int(superseded.sum())
        lost = len(gone) - replaced
    yield dg.AssetCheckResult(
        check_name="no_play_lost", passed=lost == 0, metadata={"plays_lost": lost, "plays_replaced": replaced}
    )


@dg.definitions
def defs() -> dg.Definitions:
    return per_listener(history_checks)
