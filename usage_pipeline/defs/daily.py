"""Daily-partitioned rollups and snapshots (instance zone), their checks, jobs and schedule."""

from dataclasses import dataclass
from datetime import date

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from usage_pipeline import rollups, snapshots
from usage_pipeline.defs.ingestion import INBOX_FILE
from usage_pipeline.defs.partitions import daily_partitions
from usage_pipeline.defs.resources import PipelineResource

USER_ACTIVITY_DAILY = dg.AssetKey("user_activity_daily")
ACCOUNT_ACTIVITY_DAILY = dg.AssetKey("account_activity_daily")
ACCOUNT_SNAPSHOT = dg.AssetKey("account_usage_snapshot")
USER_SNAPSHOT = dg.AssetKey("user_usage_snapshot")
RECONCILIATION_CHECK = "rollup_reconciliation"
ROLLUP_JOB = "rollup_job"
SNAPSHOT_JOB = "snapshot_job"
# A snapshot reads the 60 days ending on its date (30d window + the previous 30d).
SNAPSHOT_LOOKBACK_DAYS = 59


@dataclass(frozen=True)
class DailyDefinitions:
    assets: list[dg.AssetsDefinition]
    jobs: list[UnresolvedAssetJobDefinition]
    schedules: list[dg.ScheduleDefinition]


def _day(context: dg.AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


def build_daily_definitions(timezone: str) -> DailyDefinitions:
    """Rollup and snapshot assets partitioned by day in ``timezone``."""
    days = daily_partitions(timezone)

    @dg.asset(
        key=USER_ACTIVITY_DAILY,
        group_name="rollups",
        partitions_def=days,
        deps=[dg.AssetDep(INBOX_FILE, partition_mapping=dg.AllPartitionMapping())],
        description="Counts per (activity_date, account, user, module, activity), summed over"
        " every loaded file; rebuilt for one day (delete then insert).",
    )
    def user_activity_daily(
        context: dg.AssetExecutionContext, pipeline: PipelineResource
    ) -> dg.MaterializeResult:
        with pipeline.engine().begin() as conn:
            rows = rollups.rebuild_user_activity_day(conn, _day(context))
        return dg.MaterializeResult(metadata={"day": context.partition_key, "rows": rows})

    @dg.asset(
        key=ACCOUNT_ACTIVITY_DAILY,
        group_name="rollups",
        partitions_def=days,
        deps=[USER_ACTIVITY_DAILY],
        check_specs=[
            dg.AssetCheckSpec(
                RECONCILIATION_CHECK,
                asset=ACCOUNT_ACTIVITY_DAILY,
                description="Count totals of the day agree: loaded rows = user rollup ="
                " account rollup (user_activity source).",
            )
        ],
        description="Counts and active users per (activity_date, account, module, activity,"
        " source); rebuilt for one day (delete then insert).",
    )
    def account_activity_daily(
        context: dg.AssetExecutionContext, pipeline: PipelineResource
    ) -> dg.MaterializeResult:
        day = _day(context)
        with pipeline.engine().begin() as conn:
            rows = rollups.rebuild_account_activity_day(conn, day)
            totals = rollups.day_totals(conn, day)
        check = dg.AssetCheckResult(
            check_name=RECONCILIATION_CHECK,
            passed=totals.reconciled,
            metadata={
                "loaded_rows": totals.contribution_rows,
                "loaded_count": totals.contribution_count,
                "user_activity_daily_count": totals.user_count,
                "account_activity_daily_count": totals.account_count,
            },
        )
        return dg.MaterializeResult(
            metadata={"day": context.partition_key, "rows": rows}, check_results=[check]
        )

    snapshot_deps = [
        dg.AssetDep(
            ACCOUNT_ACTIVITY_DAILY,
            partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-SNAPSHOT_LOOKBACK_DAYS),
        )
    ]

    @dg.asset(
        key=ACCOUNT_SNAPSHOT,
        group_name="snapshots",
        partitions_def=days,
        deps=snapshot_deps,
        description="Per-account usage as of the partition day (1/7/30-day windows).",
    )
    def account_usage_snapshot(
        context: dg.AssetExecutionContext, pipeline: PipelineResource
    ) -> dg.MaterializeResult:
        with pipeline.engine().begin() as conn:
            rows = snapshots.build_account_snapshot(conn, _day(context))
        return dg.MaterializeResult(metadata={"snapshot_date": context.partition_key, "rows": rows})

    @dg.asset(
        key=USER_SNAPSHOT,
        group_name="snapshots",
        partitions_def=days,
        deps=snapshot_deps,
        description="Per-user usage as of the partition day (7/30-day windows).",
    )
    def user_usage_snapshot(
        context: dg.AssetExecutionContext, pipeline: PipelineResource
    ) -> dg.MaterializeResult:
        with pipeline.engine().begin() as conn:
            rows = snapshots.build_user_snapshot(conn, _day(context))
        return dg.MaterializeResult(metadata={"snapshot_date": context.partition_key, "rows": rows})

    rollup_job = dg.define_asset_job(
        ROLLUP_JOB,
        selection=dg.AssetSelection.assets(USER_ACTIVITY_DAILY, ACCOUNT_ACTIVITY_DAILY),
    )
    snapshot_job = dg.define_asset_job(
        SNAPSHOT_JOB,
        selection=dg.AssetSelection.assets(ACCOUNT_SNAPSHOT, USER_SNAPSHOT),
    )
    snapshot_schedule = dg.build_schedule_from_partitioned_job(
        snapshot_job,
        name="snapshot_schedule",
        hour_of_day=0,
        minute_of_hour=30,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="00:30 instance time: snapshots for the day that just completed.",
    )
    return DailyDefinitions(
        assets=[
            user_activity_daily,
            account_activity_daily,
            account_usage_snapshot,
            user_usage_snapshot,
        ],
        jobs=[rollup_job, snapshot_job],
        schedules=[snapshot_schedule],
    )
