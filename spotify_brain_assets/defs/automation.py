"""The jobs of each listener, the one slot sensor that drives every `update`, the daily retrain schedule."""

from datetime import datetime, timezone

import dagster as dg
import pandas as pd

from ..runtime.runs import reap, slot_run
from .factory import Listener, household, several

SLOT = pd.Timedelta(minutes=30)
#: the incremental slice: a new ingestion partition and everything refreshed from it
UPDATE_ASSETS = ("ingestions", "plays", "history", "predictions", "prediction_scores", "drift_report", "dashboard", "published_dashboard")
HOUSEHOLD_JOB = "household"


def update_job(listener: Listener) :
    return dg.define_asset_job(
        listener.job("update"),
        selection=dg.AssetSelection.assets(*(listener.key(a) for a in UPDATE_ASSETS)),
        tags=listener.run_tags,
        description="Ingest the newest plays into a new `ingestions` partition and refresh what depends on them.",
    )


def full_retrain_job(listener: Listener) :
    """Everything downstream of the listener's ingested files, history included (not the household page)."""
    return dg.define_asset_job(
        listener.job("full_retrain"),
        selection=dg.AssetSelection.assets(listener.key("plays")).downstream() - dg.AssetSelection.groups(HOUSEHOLD_JOB),
        tags=listener.run_tags,
        description="Rebuild history and everything downstream of it: clusters, datasets, models, reports.",
    )


def slot_key(moment: datetime) -> str:
    """The ingestion partition key of the :00/:30 UTC slot holding `moment`."""
    return pd.Timestamp(moment).tz_convert("UTC").floor(SLOT).strftime("%Y%m%d_%H%M%S")


def slot_requests(instance: dg.DagsterInstance, listeners: list[Listener], key: str) -> tuple[list[dg.RunRequest], list, list[str]]:
    """Each listener's `update` run of slot `key` and its partition, unless a run did (or does) it already."""
    runs, partitions, done = [], [], []
    for listener in listeners:
        ran = slot_run(instance, key, listener.job("update"))
        if ran is not None:  # `spotify-brain update` ran it: the CLI and the sensor agree on done slots
            done.append(f"{listener.job('update') + ' ' if listener.name else ''}by run {ran.run_id}")
            continue
        runs.append(dg.RunRequest(run_key=listener.run_key(key), partition_key=key, job_name=listener.job("update")))
        partitions.append(listener.partitions.build_add_request([key]))
    return runs, partitions, done


def slot_sensor(listeners: list[Listener], jobs: list) -> dg.SensorDefinition:
    household_page = several(listeners)

    @dg.sensor(name="ingestion_slot_sensor", jobs=jobs, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
    def ingestion_slot_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        """Adds each listener's partition of every :00 and :30 UTC slot and requests its `update` run.

        A schedule cannot add dynamic partitions, hence a sensor. Slots missed while Dagster was down
        are not replayed one by one: the next run asks Spotify for everything since the newest stored
        play (with an overlap), and the gap shows in the partition list and in the freshness policy.
        In a household the page is refreshed too, from what the listeners' runs have stored so far.
        """
        key = slot_key(datetime.now(timezone.utc))
        if context.cursor == key:
            return dg.SkipReason(f"slot {key} already requested")
        runs, partitions, done = slot_requests(context.instance, listeners, key)
        if not runs:
            return dg.SensorResult(skip_reason=f"slot {key} already done {'; '.join(done)}", cursor=key)
        if context.cursor:
            missed = int((pd.Timestamp(key.replace("_", "T")) - pd.Timestamp(context.cursor.replace("_", "T"))) / SLOT) - 1
            if missed > 0:
                context.log.warning(f"{missed} ingestion slot(s) missed since {context.cursor}; this run catches up")
        if household_page:
            runs.append(dg.RunRequest(run_key=f"household:{key}", job_name=HOUSEHOLD_JOB))
        return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=partitions, cursor=key)

    return ingestion_slot_sensor


def retrain_schedule(listener: Listener, job) -> dg.ScheduleDefinition:
    """A schedule targets one job, so each listener has its own (`alice__full_retrain_daily`)."""
    return dg.ScheduleDefinition(
        name=listener.job("full_retrain_daily"),
        job=job,
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
    dead run would keep its writer pool slot and every later run would wait for it.
    """
    reaped = reap(context.instance, context.log.warning)
    return dg.SkipReason(f"{len(reaped)} dead run(s) reaped" if reaped else "no dead runs")


@dg.definitions
def defs() -> dg.Definitions:
    listeners = household()
    updates = [update_job(listener) for listener in listeners]
    retrains = [full_retrain_job(listener) for listener in listeners]
    household_jobs = []
    if several(listeners):
        household_jobs = [dg.define_asset_job(HOUSEHOLD_JOB, selection=dg.AssetSelection.groups(HOUSEHOLD_JOB), description="Refresh the household page.")]
    return dg.Definitions(
        jobs=[*updates, *retrains, *household_jobs],
        sensors=[slot_sensor(listeners, updates + household_jobs), dead_run_sensor],
        schedules=[retrain_schedule(listener, job) for listener, job in zip(listeners, retrains)],
    )
