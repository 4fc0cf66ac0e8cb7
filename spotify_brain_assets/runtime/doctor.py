"""`spotify-brain doctor`: everything a run depends on, checked, with what to do about each problem."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
from filelock import FileLock, Timeout

from ..plays.ingest import CACHE_COLUMNS, PENDING_COLUMNS, UNAVAILABLE_COLUMNS
from ..plays.schema import SESSIONIZED_COLUMNS, MixedSourcesError, check_source_kind
from ..plays.store import REQUIRED_PLAY_COLUMNS
from ..storage.files import CorruptFileError, read_json, read_parquet, remove_stale_temporaries, stale_temporaries
from ..storage.paths import DATA_DIR_ENV, DataPaths, data_root_from_env

OK, WARN, FAIL = "ok", "WARN", "FAIL"


@dataclass(frozen=True)
class Finding:
    level: str
    what: str
    todo: str = ""


def _parquet_columns(paths: DataPaths) -> dict[Path, list[str]]:
    """Each parquet file of the data root and the columns it must have."""
    known = {
        paths.plays: SESSIONIZED_COLUMNS,
        paths.history: REQUIRED_PLAY_COLUMNS + ["session_id"],
        paths.history_previous: REQUIRED_PLAY_COLUMNS + ["session_id"],
        paths.pending_features: PENDING_COLUMNS,
        paths.unavailable_features: UNAVAILABLE_COLUMNS,
        paths.features_cache: CACHE_COLUMNS,
    }
    files = {path: cols for path, cols in known.items() if path.exists()}
    files.update({path: REQUIRED_PLAY_COLUMNS for path in paths.ingestion_files().values()})
    files.update({path: [] for folder in (paths.processed, paths.metrics) if folder.is_dir() for path in folder.glob("*.parquet")})
    return files


def lock_is_free(paths: DataPaths) -> bool:
    """Whether no run holds the writer lock now (one try, no waiting; storage/files.py `writer_lock`)."""
    if not paths.lock.exists():
        return True
    try:
        with FileLock(paths.lock, timeout=0):
            return True
    except Timeout:
        return False


def check_data_root(paths: DataPaths, source_origin: str | None, repair: bool) -> list[Finding]:
    if not paths.root.is_dir():
        return [Finding(OK, f"data root {paths.root} does not exist yet", "the first run creates it")]
    findings = []
    unreadable = []
    origins = []
    files = _parquet_columns(paths)
    for path, columns in files.items():
        try:
            df = read_parquet(path, columns)
        except CorruptFileError as exc:
            unreadable.append(Finding(FAIL, str(exc), _restore_hint(paths, path)))
            continue
        if path in (paths.plays, paths.history, *paths.ingestion_files().values()):
            origins.append(df["origin"] if "origin" in df else pd.Series(["predecessor"]))  # it had no origin column
    jsons = [p for folder in (paths.metrics, paths.models, paths.processed, paths.export) if folder.is_dir() for p in folder.glob("*.json")]
    for path in jsons + ([paths.plays_ledger] if paths.plays_ledger.exists() else []):
        try:
            read_json(path)
        except CorruptFileError as exc:
            unreadable.append(Finding(FAIL, str(exc), "a full_retrain rewrites it (`spotify-brain full-retrain`)"))
    findings += unreadable or [Finding(OK, f"data root {paths.root}: {len(files) + len(jsons)} files readable, with their columns")]

    if source_origin is not None and origins:
        try:
            check_source_kind(pd.concat(origins, ignore_index=True), source_origin)
            findings.append(Finding(OK, f"stored plays match the listening source ({source_origin})"))
        except MixedSourcesError as exc:
            findings.append(Finding(FAIL, str(exc)))

    free = lock_is_free(paths)
    findings.append(Finding(OK, "writer lock: " + ("free" if free else "held by a run writing now")))
    stale = stale_temporaries(paths.root)
    if stale and repair and free:
        findings.append(Finding(OK, f"removed {len(remove_stale_temporaries(paths.root))} temporary file(s) left by killed runs"))
    elif stale:
        findings.append(Finding(WARN, f"{len(stale)} temporary file(s) left by killed runs", "`spotify-brain doctor --repair` (or the next run) removes them"))
    held = sorted(paths.quarantine.glob("*.json")) if paths.quarantine.is_dir() else []
    if held:
        findings.append(Finding(
            WARN, f"{len(held)} unreadable file(s) kept in {paths.quarantine.name}/: " + ", ".join(p.stem for p in held[:5]),
            "each .json beside it says why; README 'When the services misbehave' tells how to restore one",
        ))
    return findings


def _restore_hint(paths: DataPaths, path: Path) -> str:
    if path == paths.history and paths.history_previous.exists():
        return f"move it aside and copy {paths.history_previous.name} to {paths.history.name}; the next run adds the newer plays again"
    if path == paths.history:
        return "move it aside; the next run rebuilds history from plays.parquet"
    if path.parent == paths.ingestions:
        return "the next run moves it to quarantine/ (bytes kept) and ingests without it"
    return "move it aside (keep it) and run `spotify-brain full-retrain`, which rebuilds it"


def check_instance(instance, repair: bool) -> list[Finding]:
    from .runs import dead_runs, reap, slot_holders

    if instance.is_ephemeral:
        return [Finding(WARN, "no DAGSTER_HOME: runs are not recorded", "set DAGSTER_HOME to the repository root (README)")]
    findings = [Finding(OK, f"Dagster instance in {instance.root_directory}")]
    dead = dead_runs(instance)
    if dead and repair:
        reap(instance, lambda _: None)
        findings.append(Finding(OK, f"{len(dead)} dead run(s) marked failed, their slots freed: {', '.join(r.run_id for r in dead)}"))
    elif dead:
        findings.append(Finding(
            FAIL, f"{len(dead)} run(s) died without finishing and still hold their place: {', '.join(r.run_id for r in dead)}",
            "`spotify-brain doctor --repair` (or the next `spotify-brain` run, or `dagster dev`'s dead_run_sensor) frees them",
        ))
    holders = slot_holders(instance)
    if holders:
        findings.append(Finding(OK, f"writer slot held by run {', '.join(holders)}"))
    import dagster as dg

    last = instance.get_run_records(dg.RunsFilter(job_name="update", statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1)
    if last:
        ago = (time.time() - last[0].end_time) / 3600 if last[0].end_time else float("nan")
        findings.append(Finding(OK if ago <= 2 else WARN, f"last successful update {ago:.1f} h ago", "" if ago <= 2 else "is `dagster dev` running (its sensor runs update every 30 minutes)?"))
    return findings


def check_settings() -> tuple[list[Finding], str | None]:
    """The listening source and its credentials, the timezone; (findings, the source's origin)."""
    from ..defs.ingestion.credentials import EXPIRES_AFTER_DAYS, WARN_AFTER_DAYS, token_age
    from ..resources import listening_source_from_env, store_from_env
    from ..sources.spotify_resource import AUTHORIZED_AT_ENV, SpotifyResource

    findings = []
    try:
        store_from_env()
    except ValueError as exc:
        findings.append(Finding(FAIL, str(exc)))
    try:
        source = listening_source_from_env()
    except ValueError as exc:
        return findings + [Finding(FAIL, str(exc), "see README: Connecting your Spotify account")], None
    if not isinstance(source, SpotifyResource):
        return findings + [Finding(OK, "listening source: the demo listener (no Spotify credentials set)")], "demo"
    findings.append(Finding(OK, "listening source: Spotify (SPOTIFY_CLIENT_ID, SPOTIFY_CLIENT_SECRET, SPOTIFY_REFRESH_TOKEN set)"))
    authorized_at = os.environ.get(AUTHORIZED_AT_ENV)
    age = token_age(authorized_at, pd.Timestamp.now(tz="UTC"))
    renew = "run `spotify-brain authorize`"
    if age is None:
        findings.append(Finding(WARN, f"refresh token age unknown ({AUTHORIZED_AT_ENV} not set or unreadable)", renew))
    else:
        days = age / pd.Timedelta(days=1)
        level = FAIL if days > EXPIRES_AFTER_DAYS else WARN if days > WARN_AFTER_DAYS else OK
        findings.append(Finding(level, f"refresh token authorized {days:.0f} days ago (Spotify expires it after {EXPIRES_AFTER_DAYS})", renew if level != OK else ""))
    return findings, "spotify"


def run_doctor(get_instance: Callable, repair: bool = False, out: Callable[[str], None] = print) -> int:
    """Print every finding; 1 when something fails, else 0."""
    settings, origin = check_settings()
    paths = DataPaths.at(data_root_from_env())
    findings = settings + check_data_root(paths, origin, repair)
    try:
        findings += check_instance(get_instance(), repair)
    except Exception as exc:  # an instance that cannot even open is the finding
        findings.append(Finding(FAIL, f"the Dagster instance cannot be opened ({exc})", "check DAGSTER_HOME and its dagster.yaml"))
    out(f"spotify-brain doctor ({DATA_DIR_ENV}={paths.root})")
    for finding in findings:
        out(f"  {finding.level:<4}  {finding.what}" + (f"\n        → {finding.todo}" if finding.todo else ""))
    failed = sum(f.level == FAIL for f in findings)
    out("all good" if not failed else f"{failed} problem(s) need attention; --repair fixes the ones marked as such")
    return 1 if failed else 0
