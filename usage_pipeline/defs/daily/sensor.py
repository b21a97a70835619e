"""The follow-up sensor: rollups and snapshot refreshes from the warehouse's pending-work
queue (running by default)."""

from typing import Any

import dagster as dg

from usage_pipeline.defs.daily.assets import ROLLUP_JOB, SNAPSHOT_JOB, range_request
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.followups import rollup_ranges, snapshot_ranges
from usage_pipeline.warehouse.engine import read_connection

# Follow-up runs one tick requests at most (each covers a range of days).
FOLLOWUPS_PER_TICK = 20


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
