"""The code location: `dagster dev` (workspace.yaml) and `-m spotify_brain_assets` both load `defs`."""

import dagster as dg

from .assets import checks, credentials, dashboard, history, ingestion, moods, reports, sessions, spotify_export
from .automation import full_retrain_job, full_retrain_schedule, ingestion_slot_sensor, update_job
from .resources import listening_source_from_env, store_from_env

#: every module holding assets or asset checks; a new layer adds its module here
ASSET_MODULES = [ingestion, history, checks, credentials, moods, sessions, reports, dashboard, spotify_export]


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=dg.load_assets_from_modules(ASSET_MODULES),
        asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
        jobs=[update_job, full_retrain_job],
        sensors=[ingestion_slot_sensor, spotify_export.spotify_export_sensor],
        schedules=[full_retrain_schedule],
        resources={
            "store": store_from_env(),
            "listening_source": listening_source_from_env(),
            "website": dashboard.website_deployment_from_env(),
        },
        executor=dg.in_process_executor,
    )


defs = build_definitions()
