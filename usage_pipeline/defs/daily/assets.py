"""Daily-partitioned rollups and snapshots (instance zone), their checks, jobs and schedule.

Every daily asset runs over a range of days in one run (a single-run backfill policy): a
late file touching ten days is one rollup run, not ten. Each day is rebuilt in its own
transaction, locked against any other rebuild of the same day.
"""

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg

from usage_pipeline import rollups, snapshots
from usage_pipeline.alerts import reconciliation_alert, send
from usage_pipeline.days import day_spans
from usage_pipeline.defs.daily.partitions import ONE_RUN_PER_RANGE, daily_partitions
from usage_pipeline.defs.ingestion.assets import INBOX_FILE
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.defs.tags import range_tags
from usage_pipeline.warehouse.engine import read_connection
from usage_pipeline.work_queue import DayRange

ACCOUNT_ACTIVITY_DAILY = dg.AssetKey("account_activity_daily")
RECONCILIATION_CHECK = "rollup_reconciliation"
ROLLUP_JOB = "rollup_job"
SNAPSHOT_JOB = "snapshot_job"


@dataclass(frozen=True)
class DailyDefinitions:
    assets: list[dg.AssetsDefinition]
    jobs: list[Any]  # what define_asset_job returns (its class is not public)
    schedules: list[dg.ScheduleDefinition]


def _days(context: dg.AssetExecutionContext) -> list[date]:
    """The days of the run's partition range (its time window in the instance zone)."""
    window = context.partition_time_window
    first = window.start.date()
    return [first + timedelta(days=n) for n in range((window.end.date() - first).days)]


def _rebuild_each_day(engine: Any, days: list[date], rebuild: Callable[[Any, date], int]) -> int:
    """``rebuild(conn, day)`` for each day, each in its own transaction; rows written."""
    rows = 0
    for day in days:
        with engine.begin() as conn:
            rows += rebuild(conn, day)
    return rows


def range_request(
    kind_prefix: str, day_range: DayRange, job_name: str | None = None
) -> dg.RunRequest:
    """One run over the range's days for the assets it names (run key: range + newest
    pending row, so a re-tick does not repeat it and new work asks again)."""
    selection = [dg.AssetKey(kind) for kind in day_range.kinds]
    run_key = day_range.key(kind_prefix)
    if day_range.start == day_range.end:
        return dg.RunRequest(
            run_key=run_key,
            job_name=job_name,
            partition_key=day_range.start.isoformat(),
            asset_selection=selection,
        )
    return dg.RunRequest(
        run_key=run_key,
        job_name=job_name,
        tags=range_tags(day_range.start, day_range.end),
        asset_selection=selection,
    )


def _reconciliation(  # type: ignore[no-untyped-def]
    conn, days: list[date]
) -> tuple[dg.AssetCheckResult, list[rollups.DayTotals]]:
    """The check over ``days`` and the days whose totals disagree."""
    totals = [rollups.day_totals(conn, day) for day in days]
    failing = [t for t in totals if not t.reconciled]
    return dg.AssetCheckResult(
        check_name=RECONCILIATION_CHECK,
        passed=not failing,
        description=(
            f"Totals disagree on {day_spans([t.day for t in failing])}."
            if failing
            else f"Totals agree on {day_spans(days)}."
        ),
        metadata={
            "days_checked": len(days),
            "loaded_count": sum(t.contribution_count for t in totals),
            "user_activity_daily_count": sum(t.user_count for t in totals),
            "account_activity_daily_count": sum(t.account_count for t in totals),
            "account_usage_loaded_count": sum(t.account_usage_loaded for t in totals),
            "account_usage_rolled_count": sum(t.account_usage_rolled for t in totals),
            "failing_days": dg.MetadataValue.json([t.day.isoformat() for t in failing]),
        },
    ), failing


def _rollup_asset(rollup: rollups.DailyRollup, days_def: dg.PartitionsDefinition):
    key = dg.AssetKey(rollup.name)
    reconciled = key == ACCOUNT_ACTIVITY_DAILY
    specs = (
        [
            dg.AssetCheckSpec(
                RECONCILIATION_CHECK,
                asset=key,
                description="Count totals of each day agree: loaded user_activity rows = user"
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
        partitions_def=days_def,
        backfill_policy=ONE_RUN_PER_RANGE,
        deps=[INBOX_FILE, *(dg.AssetKey(name) for name in rollup.reads)],
        check_specs=specs,
        description=rollup.description,
    )
    def _rollup(
        context: dg.AssetExecutionContext, pipeline: PipelineResource
    ) -> dg.MaterializeResult:
        days = _days(context)
        engine = pipeline.engine()
        rows = _rebuild_each_day(
            engine, days, lambda conn, day: rollups.rebuild_rollup_day(conn, rollup, day)
        )
        metadata = {"days": day_spans(days), "rows": rows}
        if not reconciled:
            return dg.MaterializeResult(metadata=metadata)
        with read_connection(engine) as conn:
            check, failing = _reconciliation(conn, days)
        send(engine, pipeline.settings(), reconciliation_alert(failing), context.log)
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

    return _rollup


def _snapshot_asset(table: str, days_def: dg.PartitionsDefinition, description: str):
    @dg.asset(
        key=dg.AssetKey(table),
        group_name="snapshots",
        partitions_def=days_def,
        backfill_policy=ONE_RUN_PER_RANGE,
        deps=[
            dg.AssetDep(
                ACCOUNT_ACTIVITY_DAILY,
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-snapshots.SNAPSHOT_LOOKBACK_DAYS
                ),
            )
        ],
        description=description,
    )
    def _snapshot(
        context: dg.AssetExecutionContext, pipeline: PipelineResource
    ) -> dg.MaterializeResult:
        days = _days(context)

        def build(conn: Any, day: date) -> int:
            return snapshots.build_snapshot_day(conn, table, day)

        rows = _rebuild_each_day(pipeline.engine(), days, build)
        return dg.MaterializeResult(metadata={"snapshot_dates": day_spans(days), "rows": rows})

    return _snapshot


SNAPSHOT_DESCRIPTIONS = {
    "account_usage_snapshot": "Per-account usage as of each day (1/7/30-day windows).",
    "user_usage_snapshot": "Per-user usage as of each day (7/30-day windows).",
    "account_hierarchy_snapshot": "Per-account usage over the account and all its"
    " descendants in the account hierarchy, as of each day (users distinct across it).",
    "account_top_users": "Each account's five most active users in the 30 days ending on"
    " each day (ties: user_id alphabetical).",
}


def build_daily_definitions(timezone: str, run_tags: dict[str, str]) -> DailyDefinitions:
    """Rollup and snapshot assets partitioned by day in ``timezone``."""
    days_def = daily_partitions(timezone)
    with warnings.catch_warnings():  # backfill_policy is marked beta in dagster 1.13
        warnings.simplefilter("ignore", dg.BetaWarning)
        rollup_assets = [_rollup_asset(rollup, days_def) for rollup in rollups.DAILY_ROLLUPS]
        snapshot_assets = [
            _snapshot_asset(table, days_def, SNAPSHOT_DESCRIPTIONS[table])
            for table in snapshots.SNAPSHOT_BUILDERS
        ]
    rollup_job = dg.define_asset_job(ROLLUP_JOB, selection=rollup_assets, run_tags=run_tags)
    snapshot_job = dg.define_asset_job(SNAPSHOT_JOB, selection=snapshot_assets, run_tags=run_tags)

    @dg.schedule(
        name="snapshot_schedule",
        job=snapshot_job,
        cron_schedule="30 0 * * *",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="00:30 instance time: snapshots for the day that just completed, and for"
        " every night missed since the last snapshot (up to 60 days back), in one run.",
    )
    def snapshot_schedule(
        context: dg.ScheduleEvaluationContext, pipeline: PipelineResource
    ) -> dg.RunRequest | dg.SkipReason:
        tick = context.scheduled_execution_time.astimezone(ZoneInfo(timezone))
        completed = tick.date() - timedelta(days=1)
        with read_connection(pipeline.engine()) as conn:
            missing = snapshots.missing_snapshot_days(conn, completed)
        if not missing:
            return dg.SkipReason(f"Every snapshot up to {completed} is built.")
        first = min(min(days) for days in missing.values())
        return range_request("snapshot", DayRange(first, completed, tuple(sorted(missing))))

    return DailyDefinitions(
        assets=[*rollup_assets, *snapshot_assets],
        jobs=[rollup_job, snapshot_job],
        schedules=[snapshot_schedule],
    )
