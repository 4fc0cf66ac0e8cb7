"""`spotify_export`: years of listening from Spotify's personal data export, and the sensor noticing it."""

import hashlib
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import dagster as dg
import pandas as pd

from ...imports.discover import MIB, ExportFileError, ReadLimits, discover
from ...imports.features import Progress, fetch_features
from ...imports.identify import summarize_unidentified
from ...imports.importer import (
    complete_plays,
    conform_unavailable,
    features_known,
    plan_import,
    read_export,
    tracks_to_fetch,
    unavailable_rows,
)
from ...imports.output import conform_export, read_export_plays, write_export_plays
from ...plays.ingest import CACHE_COLUMNS, FEATURES_BATCH, UNAVAILABLE_COLUMNS, conform_cache
from ...plays.merge import DEFAULT_TOLERANCE_SECONDS, reconcile
from ...plays.schema import PLAY_COLUMNS, conform, key_in, required
from ...plays.store import load_plays
from ...resources import DataStore, ListeningSourceResource
from ...sources.base import SourceUnavailable
from ...sources.http import RateLimited, ServiceFailing
from ...storage.files import read_json, read_parquet, read_parquet_or_empty, write_json, write_parquet, writer_lock
from ..factory import Listener, listener_asset, per_listener
from ..common import path_metadata, retried_on_network_errors, table, table_metadata

PROGRESS_LOG_SECONDS = 30.0
RESUME_AFTER_MINUTES = 15.0


class FeaturesUnavailable(RuntimeError):
    """The source gave up on ReccoBeats for this run (rate limit, outage): an empty answer means nothing."""


class ExportImportConfig(dg.Config):
    path: str = ""  # the export: a folder, Spotify's zip, or one JSON file; "" = imports/ under the data root
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS  # the same track ending this close to a known play is that play
    min_play_seconds: int = 30  # shorter plays are skipped: the API never lists them either
    batch_size: int = FEATURES_BATCH  # ids per ReccoBeats request (40 at most)
    checkpoint_seconds: float = 10.0  # fetched features are saved at least this often, and whenever the import stops
    max_fetch_minutes: float = 60.0  # then the import pauses (progress saved) so that live polling is not held up
    retry_unavailable: bool = False  # ask ReccoBeats again for tracks it did not know in earlier runs
    # what an import may decompress (imports/discover.py ReadLimits: Spotify's files are 10-13 MB, 10-15:1)
    max_file_mib: float = 256  # per file (zip member or JSON file), uncompressed
    max_total_mib: float = 2048  # all files together, uncompressed
    max_compression_ratio: float = 100  # uncompressed to compressed size of a zip member over 1 MiB

    def limits(self) -> ReadLimits:
        return ReadLimits(int(self.max_file_mib * MIB), int(self.max_total_mib * MIB), self.max_compression_ratio)


def _duration(seconds: float | None) -> str:
    return "unknown" if seconds is None else str(timedelta(seconds=round(seconds)))


def _unavailable_record(paths) -> pd.DataFrame:
    return conform_unavailable(read_parquet_or_empty(paths.unavailable_features, required(UNAVAILABLE_COLUMNS)))


class StrictFeatures:
    """The source's `audio_features`, raising where an empty answer would not mean "unknown track".

    A source that gave up on ReccoBeats for this run (rate limits, an outage) answers [] and says so
    in `features_down`: for an import that is a pause, not thousands of tracks without features. The
    demo listener knows only its own catalog: a real export asked of it fails with a clear message.
    """

    DEMO_PROBE = 10  # a first request of this many ids with none known: not the demo's catalog

    def __init__(self, source):
        self.source = source
        self.answered = False

    def __call__(self, ids: list[str]) -> list[dict]:
        items = self.source.audio_features(ids)
        down = getattr(self.source, "features_down", None)
        if down:
            raise FeaturesUnavailable(down)
        if not items and not self.answered and self.source.origin == "demo" and len(ids) >= self.DEMO_PROBE:
            raise dg.Failure(
                description=(
                    "The listening source is the built-in demo listener, which has audio features only for its own "
                    "catalog, and it knows none of this export's first tracks. Configure Spotify (README: real "
                    "credentials) so that ReccoBeats is asked, then materialize spotify_export again. Nothing was recorded."
                )
            )
        self.answered = self.answered or bool(items)
        return items


@listener_asset(
    group_name="ingestion",
    kinds={"parquet"},
    code_version="1",  # bump when a release changes what an import of the same files writes
    output_required=False,  # nothing to import: no materialization, and plays/history are skipped
)
@retried_on_network_errors  # a safety net: the import pauses on these errors itself
def spotify_export(
    context: dg.AssetExecutionContext,
    config: ExportImportConfig,
    store: DataStore,
    listening_source: ListeningSourceResource,
) -> Iterator[dg.MaterializeResult | dg.AssetObservation]:
    """Years of listening from Spotify's personal data export ("Download your data" in your account's privacy settings).

    Put the export as Spotify delivers it — `my_spotify_data.zip`, or its extracted JSON files — into
    `imports/` under the data root (or set `path`), then materialize this asset; the `import_export`
    job also refreshes plays and history, and the `spotify_export_sensor` starts it when new files
    appear. Extended streaming history (`Streaming_History_Audio_*.json`, `endsong_*.json`) and account
    data (`StreamingHistory_music_*.json`, `StreamingHistory*.json`) are read; podcasts, audiobooks,
    videos, plays under 30 s and incognito plays are skipped; account-data plays are kept only where
    artist and title name one known track. Each play counts once across files, exports and the plays
    already polled from the API (whose record wins). Audio features come from ReccoBeats in batches,
    saved as they arrive: an interrupted import continues where it stopped. Result:
    `processed/export_plays.parquet` (with the export's skipped, shuffle, reason and ms_played columns).
    With no export in the folder there is nothing to import: the step is skipped (no materialization;
    an observation on this asset says where it looked), and so are plays and history after it.
    """
    paths = store.paths
    root = Path(config.path).expanduser() if config.path else paths.imports
    tolerance = pd.Timedelta(seconds=config.tolerance_seconds)
    now = listening_source.now()
    log = context.log
    with writer_lock(paths.lock):
        try:
            parsed = read_export(root, config.min_play_seconds * 1000, config.limits())
        except ExportFileError as exc:
            raise dg.Failure(description=f"{exc}. Nothing was imported: replace or remove the file, then materialize again.") from exc
        found = parsed.discovery
        for name, why in found.ignored:
            log.info(f"ignored {name}: {why}")
        if not found.files:
            log.info(f"nothing to import: no Spotify export in {root}; put my_spotify_data.zip (or its JSON files) there")
            yield dg.AssetObservation(
                asset_key=context.asset_key,
                metadata={"status": "nothing to import", "looked_in": str(root), "ignored_files": len(found.ignored)},
            )
            return
        log.info(f"parsed {len(found.files)} files: {len(parsed.plays)} music plays kept, {sum(parsed.skipped.values())} rows skipped")

        store_plays, _ = load_plays(paths)
        previous = read_export_plays(paths.export_plays) if paths.export_plays.exists() else conform_export(pd.DataFrame(columns=PLAY_COLUMNS + ["ms_played"]))
        plan = plan_import(parsed.plays, previous, store_plays, tolerance)
        cache = conform_cache(read_parquet_or_empty(paths.features_cache, CACHE_COLUMNS))
        recorded = _unavailable_record(paths)
        features = features_known(cache, previous)
        lacking = pd.Index([]) if config.retry_unavailable else pd.Index(recorded["track_id"].unique())
        todo = tracks_to_fetch(plan.plays, features, lacking)
        batches = -(-len(todo) // config.batch_size)
        log.info(
            f"{len(plan.plays)} distinct plays ({plan.stats['not_imported_yet']} not imported before), "
            f"{plan.plays['track_id'].nunique()} tracks: {len(todo)} need audio features ({batches} requests)"
        )

        def checkpoint(rows: pd.DataFrame, unknown: list[str]) -> None:
            nonlocal cache, recorded
            if len(rows):
                cache = pd.concat([cache, conform_cache(rows)], ignore_index=True).drop_duplicates("track_id", keep="last")
                write_parquet(cache.reset_index(drop=True), paths.features_cache)
            if unknown:
                rows = unavailable_rows(plan.plays, pd.Index(unknown), recorded, now)
                recorded = conform_unavailable(pd.concat([recorded, rows], ignore_index=True))
                write_parquet(recorded, paths.unavailable_features)

        last_log = [time.monotonic()]

        def progress(p: Progress) -> None:
            if p.batches_done == p.batches_total or time.monotonic() - last_log[0] >= PROGRESS_LOG_SECONDS:
                last_log[0] = time.monotonic()
                log.info(
                    f"audio features: request {p.batches_done}/{p.batches_total}, {p.found} tracks found, "
                    f"{p.unknown} unknown to ReccoBeats; {_duration(p.elapsed_seconds)} elapsed, "
                    f"about {_duration(p.eta_seconds)} left"
                )

        outcome = fetch_features(
            todo,
            StrictFeatures(listening_source.source(store.timezone)),
            checkpoint,
            now,
            batch_size=config.batch_size,
            checkpoint_seconds=config.checkpoint_seconds,
            budget_seconds=config.max_fetch_minutes * 60,
            pause_on=(FeaturesUnavailable, SourceUnavailable, RateLimited, ServiceFailing),
            progress=progress,
        )
        if outcome.paused:
            log.warning(
                f"import paused ({outcome.paused}) with {len(outcome.remaining)} tracks still to ask ReccoBeats; "
                f"progress is saved, and the next materialization (the sensor starts one in {RESUME_AFTER_MINUTES:g} min) continues"
            )
        features = features_known(cache, previous)
        done = complete_plays(plan, features, pd.Index(recorded["track_id"].unique()), recorded, now)
        if len(done.unavailable):
            recorded = conform_unavailable(pd.concat([recorded, done.unavailable], ignore_index=True))
            write_parquet(recorded, paths.unavailable_features)
        written = write_export_plays(done.plays, paths.export_plays, config.tolerance_seconds)
        lacking_now = unavailable_rows(plan.plays, pd.Index(recorded["track_id"].unique()), recorded.iloc[:0], now)
        if len(lacking_now):
            log.warning(
                f"{len(lacking_now)} plays of {lacking_now['track_id'].nunique()} tracks ReccoBeats does not know are "
                f"recorded in {paths.unavailable_features.name}, not in history"
            )
        unidentified = summarize_unidentified(plan.unidentified)
        stale = paths.export_unidentified.exists() and not read_parquet(paths.export_unidentified).equals(unidentified)
        if stale or (len(unidentified) and not paths.export_unidentified.exists()):
            write_parquet(unidentified, paths.export_unidentified)
        # the state goes last: a crash before it makes the sensor run the (idempotent) import again
        write_json(
            {
                "status": "paused" if outcome.paused else "complete",
                "reason": outcome.paused,
                "path": str(root),
                "files": found.versions(),
                "tracks_waiting": len(outcome.remaining),
                "plays_waiting": len(done.waiting),
                "updated_at": datetime.now(timezone.utc).isoformat(),
            },
            paths.export_state,
        )

    new = done.plays[~key_in(done.plays, previous)]
    kept, replaces = reconcile(store_plays, conform(new, PLAY_COLUMNS), tolerance) if len(store_plays) and len(new) else (new.index, [])
    skipped = pd.DataFrame(sorted(parsed.skipped.items(), key=lambda kv: -kv[1]), columns=["reason", "rows"])
    yield dg.MaterializeResult(
        metadata={
            **table_metadata(conform_export(done.plays)),
            "status": f"paused: {outcome.paused}" if outcome.paused else "complete",
            "imported_from": str(root),
            "files": len(found.files),
            "ignored_files": len(found.ignored),
            "files_read": table(parsed.files),
            "ignored": table(pd.DataFrame(found.ignored, columns=["file", "why"])),
            "plays_in_files": plan.stats["plays_in_files"],
            "rows_skipped": int(sum(parsed.skipped.values())),
            "mib_read": round(parsed.bytes_read / MIB, 1),
            "skipped_by_reason": table(skipped),
            "copies_within_an_export": plan.stats["copies_within_an_export"],
            "duplicates_across_exports": plan.stats["duplicates_across_exports"],
            "account_plays_identified": plan.stats["account_plays_identified"],
            "account_plays_unidentified": plan.stats["account_plays_unidentified"],
            "unidentified_preview": table(unidentified, 10),
            "tracks": int(plan.plays["track_id"].nunique()),
            "tracks_needing_features": len(todo),
            "feature_requests": outcome.batches,
            "features_found": outcome.found,
            "tracks_unknown_to_reccobeats": outcome.unknown,
            "tracks_waiting": len(outcome.remaining),
            "plays_waiting_for_features": len(done.waiting),
            "plays_without_features": len(lacking_now),  # recorded in unavailable_features.parquet
            "export_plays": len(done.plays),
            "new_plays": len(new),
            "already_in_history": int(len(new) - len(kept)),
            "replacing_less_precise_plays": int(len(replaces)),
            "file_changed": written,
            "tolerance_seconds": config.tolerance_seconds,
            **path_metadata(paths.export_plays),
        }
    )


def _digest(versions: dict[str, str]) -> str:
    return hashlib.sha1(json.dumps(versions, sort_keys=True).encode()).hexdigest()[:16]


def export_sensor(context: dg.SensorEvaluationContext, store: DataStore) -> dg.SensorResult | dg.SkipReason:
    """Starts `import_export` when export files appear or change in imports/, and resumes a paused import.

    New files must look the same on two ticks in a row (a large zip may still be copying). A paused
    import (rate limits, its time budget) is resumed 15 minutes after it paused.
    """
    paths = store.paths
    try:
        versions = discover(paths.imports).versions()
    except ExportFileError as exc:
        return dg.SkipReason(f"{exc} (still being copied? checking again next tick)")
    state = read_json(paths.export_state, {})
    imported = state.get("files") if state.get("path") == str(paths.imports) else None
    if versions and versions != imported:
        digest = _digest(versions)
        if context.cursor != digest:
            return dg.SensorResult(skip_reason=f"{len(versions)} export files found; importing once they stop changing", cursor=digest)
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"import:{digest}")], cursor=digest)
    if state.get("status") == "paused":
        paused_at = pd.Timestamp(state["updated_at"])
        if pd.Timestamp.now(tz="UTC") - paused_at >= pd.Timedelta(minutes=RESUME_AFTER_MINUTES):
            return dg.RunRequest(run_key=f"resume:{state['updated_at']}")
        return dg.SkipReason(f"import paused ({state.get('reason')}); resuming {RESUME_AFTER_MINUTES:g} min after {paused_at}")
    return dg.SkipReason("no new export files in imports/")


def import_jobs(listener: Listener) -> dg.Definitions:
    """The listener's `import_export` job (the import and what it refreshes; the daily full_retrain
    then learns from the longer history) and the sensor that starts it."""
    job = dg.define_asset_job(
        listener.job("import_export"),
        selection=dg.AssetSelection.assets(*(listener.key(a) for a in ("spotify_export", "plays", "history"))),
        tags=listener.run_tags,
        description="Import Spotify's data export from imports/ and merge its plays into plays and history.",
    )
    sensor = dg.sensor(
        name=listener.job("spotify_export_sensor"), job=job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING
    )(listener.bind(export_sensor))
    return dg.Definitions(jobs=[job], sensors=[sensor])


@dg.definitions
def defs() -> dg.Definitions:
    return per_listener(spotify_export, extra=import_jobs)
