"""The code location: `dagster dev` (workspace.yaml) and `-m spotify_brain_assets` both load `defs`."""


import dagster as dg

from .assets.checks import history_checks
from .assets.history import history, plays
from .assets.ingestion import ingestions
from .automation import full_retrain_job, full_retrain_schedule, ingestion_slot_sensor, update_job
from .resources import listening_source_from_env, store_from_env


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[ingestions, plays, history],
        asset_checks=[history_checks],
        jobs=[update_job, full_retrain_job],
        sensors=[ingestion_slot_sensor],
        schedules=[full_retrain_schedule],
        resources={"store": store_from_env(), "listening_source": listening_source_from_env()},
        executor=dg.in_process_executor,
    )


defs = build_definitions()
