"""One ingestion run as pure logic: new plays, their audio features, and the plays still waiting.

The asset around it reads and writes files; everything here takes and returns DataFrames, with the
listening source passed in, so it is tested without Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .parse import feature_rows, item_rows
from .schema import AUDIO_FEATURES, KEY, PLAY_COLUMNS, conform, empty, has_features, tempo_norm

FEATURES_BATCH = 40
PENDING_COLUMNS = PLAY_COLUMNS + ["first_seen_at", "attempts", "next_attempt_at"]
UNAVAILABLE_COLUMNS = PLAY_COLUMNS + ["first_seen_at", "attempts", "recorded_at", "reason"]
CACHE_COLUMNS = ["track_id"] + AUDIO_FEATURES + ["fetched_at"]


@dataclass(frozen=True)
class RetryPolicy:
    """How plays without audio features are retried before they are recorded as unavailable."""

    first_backoff_minutes: float = 30.0
    max_backoff_hours: float = 24.0
    give_up_days: float = 7.0

    def next_attempt(self, now: pd.Timestamp, attempts: pd.Series) -> pd.Series:
        minutes = np.minimum(
            self.first_backoff_minutes * np.power(2.0, (attempts - 1).clip(lower=0)),
            self.max_backoff_hours * 60,
        )
        return now + pd.to_timedelta(minutes, unit="min")


@dataclass
class IngestionResult:
    plays: pd.DataFrame  # complete plays for the partition's file (earlier contents included)
    pending: pd.DataFrame  # plays still waiting for features
    unavailable: pd.DataFrame  # plays given up on in this run (to append to the record)
    cache_additions: pd.DataFrame
    stats: dict = field(default_factory=dict)


def anti_join(df: pd.DataFrame, known: pd.DataFrame) -> pd.DataFrame:
    """Rows of `df` whose (track_id, played_at) is not in `known`."""
    if len(known) == 0 or len(df) == 0:
        return df
    marker = known[KEY].drop_duplicates().assign(_known=True)
    merged = df.merge(marker, on=KEY, how="left")
    return merged[merged["_known"].isna()].drop(columns="_known").reset_index(drop=True)


def lookup_features(
    track_ids: Sequence[str],
    cache: pd.DataFrame,
    fetch: Callable[[list[str]], list[dict]],
    now: pd.Timestamp,
    batch_size: int = FEATURES_BATCH,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Features for `track_ids` from the cache, fetching the rest in batches; (found, additions, batches)."""
    wanted = pd.Index(pd.unique(pd.Series(track_ids, dtype="string")))
    cached = cache[cache["track_id"].isin(wanted)]
    missing = wanted.difference(pd.Index(cached["track_id"]))
    fetched = [feature_rows(fetch(list(missing[i : i + batch_size]))) for i in range(0, len(missing), batch_size)]
    additions = pd.concat(fetched, ignore_index=True) if fetched else feature_rows([])
    additions = additions[additions["track_id"].isin(missing)].assign(fetched_at=now)
    additions = additions.reindex(columns=CACHE_COLUMNS)
    found = pd.concat([cached[["track_id"] + AUDIO_FEATURES], additions[["track_id"] + AUDIO_FEATURES]])
    return found.reset_index(drop=True), additions.reset_index(drop=True), len(fetched)


def attach_features(plays: pd.DataFrame, features: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split plays into (complete with features and tempo_norm, still missing features)."""
    merged = plays.drop(columns=[c for c in AUDIO_FEATURES + ["tempo_norm"] if c in plays]).merge(
        features.astype({"track_id": "string"}), on="track_id", how="left"
    )
    merged["tempo_norm"] = tempo_norm(merged["tempo"])
    ok = has_features(merged)
    return merged[ok].reset_index(drop=True), merged[~ok].reset_index(drop=True)


def ingest(
    items: list[dict],
    origin: str,
    known: pd.DataFrame,
    existing_file: pd.DataFrame | None,
    pending: pd.DataFrame,
    cache: pd.DataFrame,
    fetch_features: Callable[[list[str]], list[dict]],
    now: pd.Timestamp,
    policy: RetryPolicy = RetryPolicy(),
    backfill_items: list[dict] | None = None,
) -> IngestionResult:
    """Compute what one ingestion run stores.

    `known` holds the keys already merged into plays; `existing_file` is this partition's file when it
    is re-materialized (its plays are kept); `pending` the plays still waiting for features.
    """
    existing_file = empty(PLAY_COLUMNS) if existing_file is None else conform(existing_file, PLAY_COLUMNS)
    pending = _conform_extra(pending, PENDING_COLUMNS)
    fetched = item_rows(items, origin)
    if backfill_items:
        backfill = item_rows(backfill_items, f"{origin}-backfill")
        fetched = pd.concat([fetched, anti_join(backfill, fetched)], ignore_index=True).sort_values("played_at")
    fetched_count = len(fetched)
    fresh = anti_join(anti_join(anti_join(fetched, known), existing_file), pending)

    due = pending[pending["next_attempt_at"] <= now]
    candidates = pd.concat(
        [fresh.reindex(columns=PLAY_COLUMNS), due.reindex(columns=PLAY_COLUMNS)], ignore_index=True
    )
    features, additions, batches = lookup_features(candidates["track_id"], cache, fetch_features, now)
    complete, missing = attach_features(candidates, features)

    # bookkeeping for plays still without features: new ones start their clock, due ones back off
    waiting = pending.drop(due.index)
    retried = missing.merge(due[KEY + ["first_seen_at", "attempts"]], on=KEY, how="left")
    retried["first_seen_at"] = pd.to_datetime(retried["first_seen_at"], utc=True).fillna(now)
    retried["attempts"] = retried["attempts"].fillna(0).astype("int64") + 1
    retried["next_attempt_at"] = policy.next_attempt(now, retried["attempts"])
    expired = (now - retried["first_seen_at"]) >= pd.Timedelta(days=policy.give_up_days)
    unavailable = retried[expired].assign(recorded_at=now, reason="no audio features at ReccoBeats")
    still = pd.concat([waiting, retried[~expired]], ignore_index=True)

    plays = pd.concat([existing_file, conform(complete, PLAY_COLUMNS)], ignore_index=True)
    plays = conform(plays.drop_duplicates(KEY).sort_values("played_at"), PLAY_COLUMNS)
    pending_out = _conform_extra(still, PENDING_COLUMNS)
    unavailable_out = _conform_extra(unavailable, UNAVAILABLE_COLUMNS)
    stats = {
        "fetched_items": fetched_count,
        "new_plays": len(fresh),
        "retried_pending": len(due),
        "plays_with_features": len(complete),
        "plays_in_file": len(plays),
        "pending_features": len(pending_out),
        "newly_unavailable": len(unavailable_out),
        "feature_batches": batches,
        "features_from_cache": int(len(features) - len(additions)),
    }
    return IngestionResult(plays, pending_out, unavailable_out, conform_cache(additions), stats)


def _conform_extra(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    base = conform(df, [c for c in columns if c in PLAY_COLUMNS])
    for col in columns:
        if col in PLAY_COLUMNS:
            continue
        if col.endswith("_at"):
            base[col] = pd.to_datetime(df[col].to_numpy() if len(df) else [], utc=True).as_unit("ms")
        elif col == "attempts":
            base[col] = pd.Series(df[col].to_numpy() if len(df) else [], dtype="int64")
        else:
            base[col] = pd.Series(df[col].to_numpy() if len(df) else [], dtype="string")
    return base[columns]


def conform_cache(df: pd.DataFrame) -> pd.DataFrame:
    out = df.reindex(columns=CACHE_COLUMNS).copy()
    out["track_id"] = out["track_id"].astype("string")
    for col in AUDIO_FEATURES:
        out[col] = out[col].astype("float64")
    out["fetched_at"] = pd.to_datetime(out["fetched_at"], utc=True).dt.as_unit("ms")
    return out.reset_index(drop=True)


def cursor_after(known_latest: pd.Timestamp | None, overlap: pd.Timedelta) -> pd.Timestamp | None:
    """Where to ask recently-played from: the latest known play minus an overlap for late plays."""
    return None if known_latest is None or pd.isna(known_latest) else known_latest - overlap
