"""The inbox sensor: batches of new file versions, one run each (running by default)."""

import dagster as dg

from usage_pipeline.defs.ingestion.assets import INGEST_JOB, batch_run_config
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.instance import inbox_identity, other_inbox
from usage_pipeline.sensing import InboxCursor, new_versions, plan_batches
from usage_pipeline.state import load_cli_cursor

# Batches one tick requests at most; later versions wait for the next tick (30 s).
BATCHES_PER_TICK = 10


@dg.sensor(
    name="inbox_sensor",
    job_name=INGEST_JOB,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Lists the inbox (folder or S3) without reading any file, and requests one"
    " run per batch of new file versions (batch.max_files, batch.max_bytes); the run key is"
    " the identities the batch holds, so re-ticks never duplicate work.",
)
def inbox_sensor(
    context: dg.SensorEvaluationContext, pipeline: PipelineResource
) -> dg.SensorResult | dg.SkipReason:
    settings = pipeline.settings()
    refusal = other_inbox(context.instance, inbox_identity(settings.inbox))
    if refusal:
        return dg.SkipReason(refusal)
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
