"""Sensors: the inbox sensor (new file versions) and the follow-up sensor (rollups,
snapshot refreshes). Both are RUNNING by default."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from usage_pipeline.defs.daily import ROLLUP_JOB, SNAPSHOT_JOB
from usage_pipeline.defs.followups import FollowupCursor, plan_rollups, plan_snapshot_refreshes
from usage_pipeline.defs.ingestion import ingest_file_job
from usage_pipeline.defs.partitions import INBOX_FILES
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.sensing import InboxCursor, sense


@dg.sensor(
    name="inbox_sensor",
    job=ingest_file_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Lists the inbox (folder or S3) and requests one run per new file version;"
    " the run key is the file identity, so re-ticks never duplicate work.",
)
def inbox_sensor(
    context: dg.SensorEvaluationContext, pipeline: PipelineResource
) -> dg.SensorResult:
    cursor = InboxCursor.parse(context.cursor)
    sensed, advanced = sense(pipeline.source(), pipeline.engine(), cursor)
    keys = sorted({s.partition_key for s in sensed})
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=s.run_key, partition_key=s.partition_key) for s in sensed
        ],
        dynamic_partitions_requests=[INBOX_FILES.build_add_request(keys)] if keys else [],
        cursor=advanced.dump(),
    )


def build_followup_sensor(
    rollup_job: UnresolvedAssetJobDefinition, snapshot_job: UnresolvedAssetJobDefinition
) -> dg.SensorDefinition:
    """Rollups for every day a file touched, then refreshes of snapshots that read those days."""

    @dg.sensor(
        name="followup_sensor",
        jobs=[rollup_job, snapshot_job],
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Turns each inbox_file materialisation's days_touched into rollup runs,"
        " and each re-rolled day into refreshes of the snapshots that already read it.",
    )
    def followup_sensor(
        context: dg.SensorEvaluationContext, pipeline: PipelineResource
    ) -> dg.SensorResult:
        cursor = FollowupCursor.parse(context.cursor)
        rollup_runs, cursor = plan_rollups(context.instance, cursor)
        snapshot_runs, cursor = plan_snapshot_refreshes(context.instance, pipeline.engine(), cursor)
        requests = [
            dg.RunRequest(run_key=r.run_key, partition_key=r.partition_key, job_name=ROLLUP_JOB)
            for r in rollup_runs
        ] + [
            dg.RunRequest(run_key=r.run_key, partition_key=r.partition_key, job_name=SNAPSHOT_JOB)
            for r in snapshot_runs
        ]
        return dg.SensorResult(run_requests=requests, cursor=cursor.dump())

    return followup_sensor
