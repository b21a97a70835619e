"""Sensors: the inbox sensor (batches of new file versions) and the follow-up sensor
(rollups and snapshot refreshes from the pending-work queue). Both run by default."""

from typing import Any

import dagster as dg

from usage_pipeline.defs.daily import ROLLUP_JOB, SNAPSHOT_JOB, range_request
from usage_pipeline.defs.ingestion import batch_run_config, ingest_files_job
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.followups import rollup_ranges, snapshot_ranges
from usage_pipeline.sensing import InboxCursor, new_versions, plan_batches
from usage_pipeline.state import load_cli_cursor
from usage_pipeline.warehouse.engine import read_connection

# Batches one tick requests at most; later versions wait for the next tick (30 s).
BATCHES_PER_TICK = 10
# Follow-up runs one tick requests at most (each covers a range of days).
FOLLOWUPS_PER_TICK = 20


@dg.sensor(
    name="inbox_sensor",
    job=ingest_files_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Lists the inbox (folder or S3) without reading any file, and requests one"
    " run per batch of new file versions (batch.max_files, batch.max_bytes); the run key is"
    " the identities the batch holds, so re-ticks never duplicate work.",
)
def inbox_sensor(
    context: dg.SensorEvaluationContext, pipeline: PipelineResource
) -> dg.SensorResult:
    settings = pipeline.settings()
    source = pipeline.source()
    if context.cursor:
        cursor = InboxCursor.parse(context.cursor)
    else:  # a new sensor starts where the CLI's runs left off, not from the first file
        cursor = load_cli_cursor(pipeline.engine(), source.uri)
    batches = plan_batches(
        new_versions(source, cursor),
        settings.batch_max_files,
        settings.batch_max_bytes,
        limit=BATCHES_PER_TICK,
    )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=batch.run_key, run_config=batch_run_config(batch.keys))
            for batch in batches
        ],
        cursor=cursor.advanced([o for batch in batches for o in batch.objects]).dump(),
    )


def build_followup_sensor(rollup_job: Any, snapshot_job: Any) -> dg.SensorDefinition:
    """Rollups for every day a load changed, then refreshes of the snapshots that read them,
    planned from the warehouse's pending-work queue (no cursor: what is pending is what is
    new, whichever process loaded it)."""

    @dg.sensor(
        name="followup_sensor",
        jobs=[rollup_job, snapshot_job],
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests one rollup run per stretch of consecutive days with pending"
        " loads, and one snapshot run per stretch of built snapshot dates that read a"
        " re-rolled day.",
    )
    def followup_sensor(
        context: dg.SensorEvaluationContext, pipeline: PipelineResource
    ) -> dg.SensorResult | dg.SkipReason:
        with read_connection(pipeline.engine()) as conn:
            rollups = rollup_ranges(conn)
            refreshes = snapshot_ranges(conn)
        requests = [range_request("rollup", r, ROLLUP_JOB) for r in rollups] + [
            range_request("snapshot", r, SNAPSHOT_JOB) for r in refreshes
        ]
        if not requests:
            return dg.SkipReason("Nothing pending.")
        return dg.SensorResult(run_requests=requests[:FOLLOWUPS_PER_TICK])

    return followup_sensor
