"""The two jobs, the slot sensor that drives `update`, and the daily `full_retrain` schedule."""

from datetime import datetime, timezone

import dagster as dg
import pandas as pd

from .assets.common import INGESTION_PARTITIONS, WRITER_RUN_TAGS
from .assets.history import plays
from .assets.ingestion import ingestions
from .runtime.runs import reap, slot_run

SLOT = pd.Timedelta(minutes=30)

#: the incremental slice: a new ingestion partition and everything refreshed from it
UPDATE_SELECTION = dg.AssetSelection.assets(
    ingestions, plays, "history", "predictions", "prediction_scores", "drift_report", "dashboard", "published_dashboard"
)
#: everything downstream of the ingested files, history included
FULL_RETRAIN_SELECTION = dg.AssetSelection.assets(plays).downstream()

update_job = dg.define_asset_job(
    "update",
    selection=UPDATE_SELECTION,
    tags=WRITER_RUN_TAGS,
    description="Ingest the newest plays into a new `ingestions` partition and refresh what depends on them.",
)
full_retrain_job = dg.define_asset_job(
    "full_retrain",
    selection=FULL_RETRAIN_SELECTION,
    tags=WRITER_RUN_TAGS,
    description="Rebuild history and everything downstream of it: clusters, datasets, models, reports.",
)


def slot_key(moment: datetime) -> str:
    """The ingestion partition key of the :00/:30 UTC slot holding `moment`."""
    return pd.Timestamp(moment).tz_convert("UTC").floor(SLOT).strftime("%Y%m%d_%H%M%S")


@dg.sensor(job=update_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def ingestion_slot_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Adds the partition of each :00 and :30 UTC slot and requests its `update` run.

    A schedule cannot add dynamic partitions, hence a sensor. Slots missed while Dagster was down are
    not replayed one by one: the next run asks Spotify for everything since the newest stored play
    (with an overlap), and the gap shows in the partition list and in the freshness policy.
    """
    key = slot_key(datetime.now(timezone.utc))
    if context.cursor == key:
        return dg.SkipReason(f"slot {key} already requested")
    done = slot_run(context.instance, key)
    if done is not None:  # `spotify-brain update` ran it: the CLI and the sensor agree on done slots
        return dg.SensorResult(skip_reason=f"slot {key} already done by run {done.run_id}", cursor=key)
    if context.cursor:
        missed = int((pd.Timestamp(key.replace("_", "T")) - pd.Timestamp(context.cursor.replace("_", "T"))) / SLOT) - 1
        if missed > 0:
            context.log.warning(f"{missed} ingestion slot(s) missed since {context.cursor}; this run catches up")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=key, partition_key=key)],
        dynamic_partitions_requests=[INGESTION_PARTITIONS.build_add_request([key])],
        cursor=key,
    )


full_retrain_schedule = dg.ScheduleDefinition(
    name="full_retrain_daily",
    job=full_retrain_job,
    cron_schedule="15 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refit clusters, rebuild datasets and retrain both classifiers every day at 00:15 UTC.",
)


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def dead_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Marks runs whose process died (SIGKILL, out of memory, a power cut) failed and frees their slots.

    Dagster's run monitoring cannot ask the default run launcher whether a run's process lives, nor
    knows about runs executed by `spotify-brain` or `dagster asset materialize`; without this, a
    dead run would keep the `spotify_brain_writer` slot and every later run would wait for it.
    """
    reaped = reap(context.instance, context.log.warning)
    return dg.SkipReason(f"{len(reaped)} dead run(s) reaped" if reaped else "no dead runs")
