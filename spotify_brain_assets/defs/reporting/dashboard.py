"""`dashboard` (export/dashboard_data.json + export/index.html) and `published_dashboard` (the website)."""

import os
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from ...dashboard import website
from ...dashboard.build import Inputs, build_dashboard, recommendation_rows, scrub_local_paths
from ...dashboard.deploy import DeployError, PushFailed, deploy
from ...dashboard.page import render_page, render_recap_page
from ...dashboard.schema import write_dashboard_json
from ...ml.model_store import ModelRefused, load_model, sidecar_path
from ...plays.store import history_or_empty
from ...listeners.config import ListenerSettings
from ...resources import DataStore, ListeningSourceResource, env_or
from ...storage.files import read_json, read_parquet_or_empty, write_text, writer_lock
from ...storage.paths import DataPaths
from ..factory import listener_asset, listener_of, per_listener, scoped, sibling
from ..common import retried_on_network_errors, table

RECAP_PAGE = "recap.html"

WEBSITE_REPO_ENV = "SPOTIFY_BRAIN_WEBSITE_REPO"
WEBSITE_DIR_ENV = "SPOTIFY_BRAIN_WEBSITE_DIR"
WEBSITE_PAGE_ENV = "SPOTIFY_BRAIN_WEBSITE_PAGE"
WEBSITE_PUSH_ENV = "SPOTIFY_BRAIN_WEBSITE_PUSH"
#: job → (the daemon that triggers it, its sensor or schedule): the next run is known while both run
TRIGGERS = {"update": ("SENSOR", "ingestion_slot_sensor"), "full_retrain": ("SCHEDULER", "full_retrain_daily")}
HEARTBEAT_FRESH_SECONDS = 120


class DashboardConfig(dg.Config):
    recommendations: int = 5  # tracks recommended for the predicted mood; 0 turns them off


class WebsiteDeployment(dg.ConfigurableResource):
    """Where the dashboard is published: a git checkout of the owner's website.

    `files` maps a file of export/ (a plain name) to its path inside the repository. Nothing but
    those files is ever staged or committed there; a target outside the repository, in .git, or
    reached through a symbolic link is refused (see dashboard/deploy.py).
    """

    repo_path: str | None = None
    files: dict[str, str] = {"dashboard_data.json": "spotify-brain/dashboard_data.json"}
    commit: bool = True
    push: bool = False
    remote: str = "origin"
    commit_message: str = "Update Spotify Brain dashboard"


def website_files(target_dir: str, page: bool) -> dict[str, str]:
    """The files of export/ to publish and where they go in the website repository."""
    names = ["dashboard_data.json"] + (["index.html", "recap.html"] if page else [])
    return {name: f"{target_dir}/{name}" for name in names}


def website_deployment_from_env() -> WebsiteDeployment:
    return WebsiteDeployment(
        repo_path=env_or(WEBSITE_REPO_ENV, None),
        files=website_files(os.environ.get(WEBSITE_DIR_ENV) or "spotify-brain", os.environ.get(WEBSITE_PAGE_ENV, "").lower() in ("1", "true", "yes")),
        push=os.environ.get(WEBSITE_PUSH_ENV, "").lower() in ("1", "true", "yes"),
    )


def website_for_listener(listener: ListenerSettings) -> WebsiteDeployment:
    """A household listener's website, from listeners.yaml (none: the dashboard stays in its export/)."""
    site = listener.website
    if site is None:
        return WebsiteDeployment()
    return WebsiteDeployment(repo_path=site.repo_path, files=website_files(site.dir, site.page), push=site.push)


LISTENED = ["track_id", "played_at", "ms_played"]


def _rows(path: Path) -> int:
    return len(read_parquet_or_empty(path, []))


def _model_in_use(path: Path, kind: str) -> dict | None:
    try:
        bundle = load_model(path, kind)
    except ModelRefused:
        return None
    sidecar = read_json(sidecar_path(path))
    return {"version": sidecar["sha256"][:12], "trained_at": bundle["metadata"].get("trained_at")}


def _recommend(source, history: pd.DataFrame, prediction: dict, size: int, log) -> list[dict]:
    """Tracks for the predicted mood; seeds are recent plays of that mood. Never fails the dashboard."""
    if size <= 0 or not prediction.get("available") or not prediction.get("cluster_centroid"):
        return []
    seeds = history[history["mood_cluster_id"] == prediction["mood_cluster_id"]].sort_values("played_at")
    seed_ids = seeds["track_id"].drop_duplicates(keep="last").tail(5).tolist()
    if not seed_ids:
        return []
    try:
        return recommendation_rows(source.recommendations(seed_ids, prediction["cluster_centroid"], size))[:size]
    except Exception as exc:  # a recommendation is a nicety: any failure leaves the list empty
        log.warning(f"no recommended tracks this time: {type(exc).__name__}: {exc}")
        return []


def scheduled_jobs(instance: dg.DagsterInstance, listener: str | None = None) -> frozenset:
    """Jobs whose sensor or schedule Dagster's daemon is running now (`dagster dev`): their next run
    is known. Without a live daemon heartbeat, or with the trigger stopped in the UI, it is not."""
    beats = instance.get_daemon_heartbeats()
    stopped = {state.instigator_name for state in instance.all_instigator_state() if not state.is_running}
    fresh = {daemon for daemon, beat in beats.items() if time.time() - beat.timestamp < HEARTBEAT_FRESH_SECONDS}
    own = {"full_retrain_daily": scoped(listener, "full_retrain_daily")}  # a household listener's schedule is its own
    return frozenset(job for job, (daemon, trigger) in TRIGGERS.items() if daemon in fresh and own.get(trigger, trigger) not in stopped)


def gather_inputs(
    paths: DataPaths, timezone: str, now: pd.Timestamp, last_ingestion: pd.Timestamp | None, scheduled: frozenset = frozenset()
) -> Inputs:
    """What the dashboard shows, from the files under the data root (any of them may not exist yet)."""
    return Inputs(
        history=history_or_empty(paths),
        now=now,
        generated_at=pd.Timestamp.now(tz="UTC"),
        timezone=timezone,
        clusters=read_json(paths.mood_clusters, None),
        predictions=read_json(paths.predictions, None),
        mood_evaluation=read_json(paths.mood_evaluation, None),
        session_evaluation=read_json(paths.session_evaluation, None),
        metrics_history=read_json(paths.metrics_history, None),
        drift=read_json(paths.drift_report, None),
        prediction_scores=read_json(paths.prediction_scores, None),
        models={
            "mood": _model_in_use(paths.mood_classifier, "mood_classifier"),
            "session": _model_in_use(paths.session_classifier, "session_classifier"),
        },
        last_ingestion=last_ingestion,
        pending_features=_rows(paths.pending_features),
        unavailable_features=_rows(paths.unavailable_features),
        gaps=read_json(paths.ingestion_gaps, []),
        listened=read_parquet_or_empty(paths.export_plays, LISTENED),
        scheduled=scheduled,
    )


@listener_asset(
    deps=["history", "predictions", "prediction_scores", "drift_report", "mood_evaluation", "session_evaluation"],
    group_name="reporting",
    kinds={"json", "html"},
)
def dashboard(
    context: dg.AssetExecutionContext,
    config: DashboardConfig,
    store: DataStore,
    listening_source: ListeningSourceResource,
) -> dg.MaterializeResult:
    """The dashboard: `export/dashboard_data.json` (the predecessor's keys plus listening stats, the
    yearly recap, the models in plain words, baselines, freshness, demo flag, timezone; described by
    dashboard.schema.json), a self-contained page `export/index.html` that renders it offline on a
    phone or a desktop, and `export/recap.html`, the yearly recap alone, to share."""
    paths = store.paths
    latest = context.instance.get_latest_materialization_event(sibling(context.asset_key, "ingestions"))
    last_ingestion = pd.Timestamp(latest.timestamp, unit="s", tz="UTC") if latest else None
    with writer_lock(paths.lock):
        inputs = gather_inputs(paths, store.timezone, listening_source.now(), last_ingestion, scheduled_jobs(context.instance, listener_of(context.asset_key)))
        data = build_dashboard(inputs)
        data["next_prediction"]["recommended_tracks"] = website.with_images(
            _recommend(listening_source.source(store.timezone), inputs.history, data["next_prediction"], config.recommendations, context.log),
            inputs.history,
        )
        data, leaked = scrub_local_paths(data, {str(paths.root): "the data root", str(Path.home()): "~"})
        if leaked:
            context.log.warning(f"{leaked} local paths removed from the dashboard's text (a message named a path: please report it)")
        write_dashboard_json(data, paths.dashboard_json)  # validated against the schema first: an invalid document writes nothing
        write_text(render_page(data), paths.dashboard_page)
        write_text(render_recap_page(data), paths.export / RECAP_PAGE)
    nxt, fresh = data["next_prediction"], data["freshness"]
    hours = pd.DataFrame(data["top_hours"] or [], columns=["hour", "probability"])
    return dg.MaterializeResult(
        metadata={
            "demo_data": data["is_demo"],
            "next_mood": nxt["mood_label"] or "none",
            "next_mood_confidence": nxt["confidence"] if nxt["confidence"] is not None else 0.0,
            "recommended_tracks": len(nxt["recommended_tracks"]),
            "recently_played": len(data["recently_played"]),
            "plays_last_7_days": data["stats"]["ranges"]["7d"]["plays"],
            "minutes_last_7_days": data["stats"]["ranges"]["7d"]["minutes"],
            "recap_years": len(data["recap"]["years"]),
            "stale": fresh["stale"],
            "pending_features": fresh["pending_features"],
            "drift_flags": len(data["drift"]["flags"]),
            "local_paths_removed": leaked,  # 0: every message was path-free at its source
            "top_hours": table(hours),
            "path": dg.MetadataValue.path(str(paths.dashboard_json)),
            "page": dg.MetadataValue.path(str(paths.dashboard_page)),
        }
    )


@listener_asset(deps=[dashboard], group_name="reporting", kinds={"git"}, writes=False)
@retried_on_network_errors  # a failed push runs again later; what is committed stays committed
def published_dashboard(context: dg.AssetExecutionContext, store: DataStore, website: WebsiteDeployment) -> dg.MaterializeResult:
    """The dashboard as published in the owner's website repository: the configured files copied
    there and committed when they changed (pushed when asked). Not configured: nothing to do."""
    if not website.repo_path:
        context.log.info(f"website deployment not configured ({WEBSITE_REPO_ENV} unset): the dashboard stays in export/")
        return dg.MaterializeResult(metadata={"configured": False})
    try:
        outcome = deploy(
            store.paths.export,
            Path(website.repo_path).expanduser(),
            website.files,
            commit=website.commit,
            push=website.push,
            message=website.commit_message,
            remote=website.remote,
        )
    except PushFailed:
        raise
    except DeployError as exc:
        raise dg.Failure(description=f"publishing the dashboard failed (export/ is written and intact): {exc}") from None
    for message in outcome.messages:
        context.log.info(message)
    return dg.MaterializeResult(
        metadata={
            "configured": True,
            "files": ", ".join(outcome.copied),
            "committed": (outcome.committed or "no (nothing changed)") if website.commit else "off",
            "pushed": outcome.pushed,
            "repository": dg.MetadataValue.path(website.repo_path),
        }
    )


@dg.definitions
def defs() -> dg.Definitions:
    return per_listener(dashboard, published_dashboard)
