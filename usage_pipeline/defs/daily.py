"""Daily-partitioned rollups and snapshots (instance zone), their checks, jobs and schedule."""

from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

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

    def rollup_asset(rollup: rollups.DailyRollup) -> dg.AssetsDefinition:
        key = dg.AssetKey(rollup.name)
        reconciled = key == ACCOUNT_ACTIVITY_DAILY
        deps = [dg.AssetDep(INBOX_FILE, partition_mapping=dg.AllPartitionMapping())]
        deps += [dg.AssetKey(name) for name in rollup.reads]
        specs = (
            [
                dg.AssetCheckSpec(
                    RECONCILIATION_CHECK,
                    asset=key,
                    description="Count totals of the day agree: loaded user_activity rows = user"
                    " rollup = account rollup (user_activity source), and loaded account_usage"
                    " counts = account rollup (account_usage source).",
                )
            ]
            if reconciled
            else []
        )

        @dg.asset(
            key=key,
            group_name=rollup.group,
            partitions_def=days,
            deps=deps,
            check_specs=specs,
            description=rollup.description,
        )
        def _rollup(
            context: dg.AssetExecutionContext, pipeline: PipelineResource
        ) -> dg.MaterializeResult:
            day = _day(context)
            with pipeline.engine().begin() as conn:
                rows = rollup.rebuild(conn, day)
                totals = rollups.day_totals(conn, day) if reconciled else None
            metadata = {"day": context.partition_key, "rows": rows}
            if totals is None:
                return dg.MaterializeResult(metadata=metadata)
            check = dg.AssetCheckResult(
                check_name=RECONCILIATION_CHECK,
                passed=totals.reconciled,
                metadata={
                    "loaded_rows": totals.contribution_rows,
                    "loaded_count": totals.contribution_count,
                    "user_activity_daily_count": totals.user_count,
                    "account_activity_daily_count": totals.account_count,
                    "account_usage_loaded_count": totals.account_usage_loaded,
                    "account_usage_rolled_count": totals.account_usage_rolled,
                },
            )
            return dg.MaterializeResult(metadata=metadata, check_results=[check])

        return _rollup

    rollup_assets = [rollup_asset(rollup) for rollup in rollups.DAILY_ROLLUPS]

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
        selection=dg.AssetSelection.assets(*(dg.AssetKey(r.name) for r in rollups.DAILY_ROLLUPS)),
    )
    snapshot_job = dg.define_asset_job(
        SNAPSHOT_JOB,
        selection=dg.AssetSelection.assets(ACCOUNT_SNAPSHOT, USER_SNAPSHOT),
    )

    @dg.schedule(
        name="snapshot_schedule",
        job=snapshot_job,
        cron_schedule="30 0 * * *",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="00:30 instance time: snapshots for the day that just completed.",
    )
    def snapshot_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        tick = context.scheduled_execution_time.astimezone(ZoneInfo(timezone))
        day = (tick.date() - timedelta(days=1)).isoformat()
        return dg.RunRequest(run_key=f"snapshot:{day}", partition_key=day)

    return DailyDefinitions(
        assets=[*rollup_assets, account_usage_snapshot, user_usage_snapshot],
        jobs=[rollup_job, snapshot_job],
        schedules=[snapshot_schedule],
    )
