"""The `ingestions` asset: one partition per ingestion slot, one file per partition."""

from datetime import timedelta

import dagster as dg
import pandas as pd

from ...plays.gaps import add_gap, estimate_plays, find_gap, gap_record
from ...plays.ingest import CACHE_COLUMNS, PENDING_COLUMNS, UNAVAILABLE_COLUMNS, RetryPolicy, conform_cache, cursor_after, ingest
from ...plays.schema import KEY, check_source_kind, required
from ...plays.store import known_plays, read_ingestion_files
from ...resources import DataStore, ListeningSourceResource
from ...sources.base import RECENTLY_PLAYED_WINDOW, SourceUnavailable
from ...storage.files import read_json, read_parquet_or_empty, remove_stale_temporaries, write_json, write_parquet, writer_lock
from ..common import path_metadata, retried_on_network_errors, table, table_metadata
from ..factory import listener_asset, per_listener

FILES_READABLE = "ingestion_files_readable"
NO_GAP = "no_plays_lost_to_window"


def files_readable_check(quarantined: list[dict]) -> dg.AssetCheckResult:
    """Fails (ERROR, never blocking) when this run moved unreadable ingestion files to quarantine/."""
    return dg.AssetCheckResult(
        check_name=FILES_READABLE,
        passed=not quarantined,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(f"{q['original_path']} was unreadable ({q['reason']}) and moved to {q['quarantined_path']}" for q in quarantined)
        + (". Its bytes are kept; see README, 'When the services misbehave', to restore it." if quarantined else ""),
        metadata={"quarantined_files": len(quarantined), "quarantined": quarantine_table(quarantined)},
    )


def quarantine_table(quarantined: list[dict]) -> dg.MetadataValue:
    return table(pd.DataFrame(quarantined, columns=["original_path", "quarantined_path", "reason"]))


def gap_metadata(gap: dict | None) -> dict:
    """The estimate of plays lost to the window (0: none lost, plotted run by run) and the span when there is one."""
    return {"gap_estimated_plays": gap["estimated_plays"], "gap": f"{gap['from']} → {gap['to']}"} if gap else {"gap_estimated_plays": 0}


def gap_check(gap: dict | None) -> dg.AssetCheckResult:
    """Warns when plays fell out of Spotify's 50-play window before this run could fetch them."""
    return dg.AssetCheckResult(
        check_name=NO_GAP,
        passed=gap is None,
        severity=dg.AssetCheckSeverity.WARN,
        description=None if gap is None else (
            f"Plays between {gap['from']} and {gap['to']} ({gap['hours']:g} h) fell out of Spotify's 50-play window "
            f"before a run fetched them: about {gap['estimated_plays']} plays, estimated from your usual listening at "
            "those hours. Spotify's data export holds them: see README, 'Importing years of history from Spotify's data export'."
        ),
        metadata=gap_metadata(gap),
    )


class IngestionConfig(dg.Config):
    overlap_minutes: int = 120  # re-ask this far behind the newest known play: late plays appear
    feature_retry_minutes: float = 30.0  # first backoff for plays whose features are missing
    feature_retry_max_hours: float = 24.0
    feature_give_up_days: float = 7.0  # then they are recorded in unavailable_features.parquet
    allow_mixed_sources: bool = False  # let demo plays join a real history (or the reverse): never by accident


@listener_asset(
    partitioned=True,
    group_name="ingestion",
    kinds={"parquet"},
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=2), warn_window=timedelta(hours=1)),
    check_specs=[
        dg.AssetCheckSpec(FILES_READABLE, asset="ingestions", description="Every ingestion file read; unreadable ones are moved to quarantine/"),
        dg.AssetCheckSpec(NO_GAP, asset="ingestions", description="No plays fell out of Spotify's 50-play window unseen"),
    ],
)
@retried_on_network_errors
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
    When Spotify or ReccoBeats stays down past the clients' own retries, the step runs again later
    (up to three times, backing off); a spent quota skips the slot, and other errors fail it at once.
    An unreadable ingestion file is moved to `quarantine/` (its bytes kept) and ingestion goes on;
    plays that fell out of Spotify's 50-play window unseen are recorded in `metrics/ingestion_gaps.json`.
    """
    key = context.partition_key
    paths = store.paths
    source = listening_source.source(store.timezone)
    now = listening_source.now()
    with writer_lock(paths.lock):
        removed = remove_stale_temporaries(paths.root)
        target = paths.ingestion_file(key)
        # an unreadable file of this very partition is quarantined too: the run writes the partition
        # anew, and the plays Spotify still lists come back into it
        existing_files, quarantined = read_ingestion_files(paths, {key: target} if target.exists() else {})
        existing = existing_files.get(key)
        known, unreadable = known_plays(paths)
        quarantined += unreadable
        for q in quarantined:
            context.log.error(f"{q['original_path']} is unreadable ({q['reason']}): moved to {q['quarantined_path']}, ingestion goes on")
        check_source_kind(known["origin"], source.origin, config.allow_mixed_sources)
        pending = read_parquet_or_empty(paths.pending_features, required(PENDING_COLUMNS))
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
            return dg.MaterializeResult(
                metadata={"skipped": str(exc), "quarantined_files": len(quarantined)},
                check_results=[files_readable_check(quarantined), gap_check(None)],
            )

        newest_stored = pd.concat([known["played_at"], pending["played_at"]]).max()
        span = find_gap(pd.Series([i["played_at"] for i in items], dtype="string"), newest_stored, RECENTLY_PLAYED_WINDOW)
        gap = gap_record(*span, estimate_plays(known["played_at"], *span, store.tz), now, key) if span else None

        # order matters for crash safety: each step is safe to repeat if a later one never happens
        if gap:  # first: a re-run that finds the same gap again records it once
            write_json(add_gap(read_json(paths.ingestion_gaps, []), gap), paths.ingestion_gaps)
            context.log.warning(gap_check(gap).description)
        if len(result.cache_additions):
            write_parquet(pd.concat([cache, result.cache_additions]).drop_duplicates("track_id", keep="last"), paths.features_cache)
        if len(result.plays) or existing is not None:
            write_parquet(result.plays, target, {"spotify_brain.partition": key})
        if len(result.unavailable):
            previous = read_parquet_or_empty(paths.unavailable_features, required(UNAVAILABLE_COLUMNS))
            record = pd.concat([previous, result.unavailable], ignore_index=True).drop_duplicates(KEY, keep="first")
            write_parquet(record, paths.unavailable_features)
        write_parquet(result.pending, paths.pending_features)

    stats = result.stats
    if fresh_root and backfill:
        context.log.info(f"fresh data root: stored {len(backfill)} plays of demo backfill (origin 'demo-backfill')")
    return dg.MaterializeResult(
        check_results=[files_readable_check(quarantined), gap_check(gap)],
        metadata={
            **stats,
            **(table_metadata(result.plays) if target.exists() else {}),
            **path_metadata(target),
            "cursor_after": str(after) if after is not None else "none (fresh data root)",
            "origin": source.origin,
            "demo_data": source.origin == "demo",
            "backfill_plays": len(backfill or []),
            **({"newest_play": str(result.plays["played_at"].max())} if len(result.plays) else {}),
            "pending_preview": table(result.pending[["track_id", "track_name", "played_at", "attempts"]], 10),
            **gap_metadata(gap),
            "quarantined_files": len(quarantined),
            "quarantined": quarantine_table(quarantined),
            "stale_temporaries_removed": len(removed),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return per_listener(ingestions)
