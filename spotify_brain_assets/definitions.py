"""The code location: `dagster dev` (workspace.yaml) and `-m spotify_brain_assets` both load `defs`."""

import dagster as dg

from .assets import checks, credentials, dashboard, history, ingestion, moods, online, reports, sessions, spotify_export
from .automation import dead_run_sensor, full_retrain_job, full_retrain_schedule, ingestion_slot_sensor, update_job
from .resources import listening_source_from_env, store_from_env
from .runtime.env import load_env_file
from .runtime.executor import executor_from_env

#: every module holding assets or asset checks; a new layer adds its module here
ASSET_MODULES = [ingestion, history, checks, credentials, moods, sessions, reports, online, dashboard, spotify_export]


def build_definitions() -> dg.Definitions:
    load_env_file()  # the resources below read the environment: `.env` must be in it first
    return dg.Definitions(
        assets=dg.load_assets_from_modules(ASSET_MODULES),
        asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
        jobs=[update_job, full_retrain_job],
        sensors=[ingestion_slot_sensor, dead_run_sensor, spotify_export.spotify_export_sensor],
        schedules=[full_retrain_schedule],
        resources={
            "store": store_from_env(),
            "listening_source": listening_source_from_env(),
            "website": dashboard.website_deployment_from_env(),
        },
        executor=executor_from_env(),  # in-process; Celery workers when SPOTIFY_BRAIN_CELERY_CONFIG is set
    )


defs = build_definitions()
