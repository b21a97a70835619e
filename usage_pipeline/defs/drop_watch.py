"""The missing-drop check: tonight's ``user_activity`` file must arrive by deadline + grace."""

from datetime import datetime
from typing import Any

import dagster as dg

from usage_pipeline.config import PipelineConfig
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.defs.tags import run_as_of
from usage_pipeline.drops import drop_status, due_day
from usage_pipeline.warehouse.engine import read_connection

DROP_ARRIVALS = dg.AssetKey("user_activity_drop_arrivals")
MISSING_DROP_CHECK = "missing_drop"
DROP_WATCH_JOB = "drop_watch_job"


@dg.asset(
    key=DROP_ARRIVALS,
    group_name="ingestion",
    check_specs=[
        dg.AssetCheckSpec(
            MISSING_DROP_CHECK,
            asset=DROP_ARRIVALS,
            description="A user_activity file covering day D was loaded by drop_deadline +"
            " drop_grace (instance time).",
        )
    ],
    description="Whether the latest due night's user_activity drop arrived and loaded.",
)
def user_activity_drop_arrivals(
    context: dg.AssetExecutionContext, pipeline: PipelineResource
) -> dg.MaterializeResult:
    settings = pipeline.settings()
    day = due_day(
        run_as_of(context.run.tags), settings.tz, settings.drop_deadline, settings.drop_grace
    )
    with read_connection(pipeline.engine()) as conn:
        status = drop_status(conn, day, settings.tz)
    if not status.arrived:
        context.log.error(status.sentence())
    check = dg.AssetCheckResult(
        check_name=MISSING_DROP_CHECK,
        passed=status.arrived,
        severity=dg.AssetCheckSeverity.ERROR,
        description=status.sentence(),
        metadata={
            "day": day.isoformat(),
            "loaded_files": dg.MetadataValue.json(status.loaded),
            "rejected_files": dg.MetadataValue.json(status.rejected),
        },
    )
    return dg.MaterializeResult(
        metadata={"day": day.isoformat(), "arrived": status.arrived}, check_results=[check]
    )


def build_drop_watch(
    config: PipelineConfig,
) -> tuple[Any, dg.ScheduleDefinition]:
    """The drop-watch job and its daily schedule at drop_deadline + drop_grace."""
    job = dg.define_asset_job(DROP_WATCH_JOB, selection=dg.AssetSelection.assets(DROP_ARRIVALS))
    due = datetime.combine(datetime(2000, 1, 1).date(), config.drop_deadline) + config.drop_grace
    schedule = dg.ScheduleDefinition(
        name="missing_drop_schedule",
        job=job,
        cron_schedule=f"{due.minute} {due.hour} * * *",
        execution_timezone=config.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Fails the missing_drop check loudly when tonight's user_activity file"
        " has not been loaded by drop_deadline + drop_grace.",
    )
    return job, schedule
