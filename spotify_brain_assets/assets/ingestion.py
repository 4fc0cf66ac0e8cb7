"""The `ingestions` asset: one partition per ingestion slot, one file per partition."""

from datetime import timedelta

import dagster as dg
import pandas as pd

from ..plays.ingest import CACHE_COLUMNS, PENDING_COLUMNS, UNAVAILABLE_COLUMNS, RetryPolicy, conform_cache, cursor_after, ingest
from ..plays.schema import KEY, check_source_kind
from ..plays.store import known_plays, read_ingestion_file
from ..resources import DataStore, ListeningSourceResource
from ..sources.base import SourceUnavailable
from ..storage.files import read_parquet_or_empty, write_parquet, writer_lock
from .common import INGESTION_PARTITIONS, WRITER_POOL, md_table


class IngestionConfig(dg.Config):
    overlap_minutes: int = 120  # re-ask this far behind the newest known play: late plays appear
    feature_retry_minutes: float = 30.0  # first backoff for plays whose features are missing
    feature_retry_max_hours: float = 24.0
    feature_give_up_days: float = 7.0  # then they are recorded in unavailable_features.parquet
    allow_mixed_sources: bool = False  # let demo plays join a real history (or the reverse): never by accident


@dg.asset(
    partitions_def=INGESTION_PARTITIONS,
    group_name="ingestion",
    kinds={"parquet"},
    pool=WRITER_POOL,
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=2), warn_window=timedelta(hours=1)),
)
def ingestions(
    context: dg.AssetExecutionContext,
    config: IngestionConfig,
    store: DataStore,
    listening_source: ListeningSourceResource,
) -> dg.MaterializeResult:
    """Plays that are new since the last ingestion, with audio features and track metadata.

    One partition per ingestion slot (UTC `YYYYMMDD_HHMMSS`), written to
    `ingestions/ingestion_<key>.parquet`. Re-materializing a partition keeps the plays its file holds.
    Plays still waiting for audio features stay in `pending_features.parquet` and are retried.
    """
    key = context.partition_key
    paths = store.paths
    source = listening_source.source(store.timezone)
    now = listening_source.now()
    with writer_lock(paths.lock):
        target = paths.ingestion_file(key)
        existing = read_ingestion_file(target) if target.exists() else None
        known = known_plays(paths)
        check_source_kind(known["origin"], source.origin, config.allow_mixed_sources)
        pending = read_parquet_or_empty(paths.pending_features, PENDING_COLUMNS)
        cache = conform_cache(read_parquet_or_empty(paths.features_cache, CACHE_COLUMNS))
        fresh_root = len(known) == 0 and len(pending) == 0 and not paths.ingestion_files()
        after = cursor_after(known["played_at"].max() if len(known) else None, timedelta(minutes=config.overlap_minutes))
        try:
            items = source.recently_played(after.to_pydatetime() if after is not None else None)
            backfill = source.backfill(now.to_pydatetime()) if fresh_root else None
            result = ingest(
                items,
                source.origin,
                known,
                existing,
                pending,
                cache,
                source.audio_features,
                now,
                RetryPolicy(config.feature_retry_minutes, config.feature_retry_max_hours, config.feature_give_up_days),
                backfill_items=backfill,
            )
        except SourceUnavailable as exc:
            context.log.warning(f"ingestion skipped, nothing stored: {exc}")
            return dg.MaterializeResult(metadata={"skipped": str(exc), "plays_in_file": 0})

        # order matters for crash safety: each step is safe to repeat if a later one never happens
        if len(result.cache_additions):
            write_parquet(pd.concat([cache, result.cache_additions]).drop_duplicates("track_id", keep="last"), paths.features_cache)
        if len(result.plays) or existing is not None:
            write_parquet(result.plays, target, {"spotify_brain.partition": key})
        if len(result.unavailable):
            previous = read_parquet_or_empty(paths.unavailable_features, UNAVAILABLE_COLUMNS)
            record = pd.concat([previous, result.unavailable], ignore_index=True).drop_duplicates(KEY, keep="first")
            write_parquet(record, paths.unavailable_features)
        write_parquet(result.pending, paths.pending_features)

    stats = result.stats
    if fresh_root and backfill:
        context.log.info(f"fresh data root: stored {len(backfill)} plays of demo backfill (origin 'demo-backfill')")
    return dg.MaterializeResult(
        metadata={
            **stats,
            "path": dg.MetadataValue.path(str(target)),
            "cursor_after": str(after) if after is not None else "none (fresh data root)",
            "origin": source.origin,
            "demo_data": source.origin == "demo",
            "backfill_plays": len(backfill or []),
            "newest_play": str(result.plays["played_at"].max()) if len(result.plays) else "none",
            "pending_preview": md_table(result.pending[["track_id", "track_name", "played_at", "attempts"]], 10),
        }
    )
