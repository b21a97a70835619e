"""The ``billing_periods`` asset: period states (open/draft/final/on_hold), refreshed hourly
and at the end of every ``usage-pipeline run``."""

from collections import Counter
from typing import Any

import dagster as dg

from usage_pipeline.billing import ON_HOLD, PeriodState, refresh_billing_periods
from usage_pipeline.config import PipelineConfig
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.defs.tags import run_as_of

BILLING_PERIODS = dg.AssetKey("billing_periods")
HOLD_CHECK = "on_hold_past_close"
BILLING_JOB = "billing_periods_job"


def periods_markdown(states: list[PeriodState], config: PipelineConfig) -> str:
    """The period table as markdown, closes_at in the instance zone."""
    lines = [
        f"| period | status | closes_at ({config.timezone}) | events |",
        "|---|---|---|---:|",
    ]
    for state in states:
        closes = state.closes_at.astimezone(config.tz).isoformat(timespec="minutes")
        events = "" if state.events is None else str(state.events)
        lines.append(f"| {state.period} | {state.status} | {closes} | {events} |")
    return "\n".join(lines)


@dg.asset(
    key=BILLING_PERIODS,
    group_name="billing",
    deps=[dg.AssetKey("usage_events")],
    check_specs=[
        dg.AssetCheckSpec(
            HOLD_CHECK,
            asset=BILLING_PERIODS,
            description="No period is kept on hold past the time it would have become final"
            " (a reminder to release it from usage_events.on_hold).",
        )
    ],
    description=(
        "Billing periods (calendar months, instance zone): open while running, draft for"
        " grace_hours after the end, then final; periods listed in usage_events.on_hold stay"
        " on_hold. One row per period with usage events, the current period and every"
        " on_hold period. Refreshed hourly by billing_periods_schedule, at the end of every"
        " `usage-pipeline run` (end_of_run_job, whether or not anything loaded) and by"
        " usage-events loads."
    ),
)
def billing_periods(
    context: dg.AssetExecutionContext, pipeline: PipelineResource
) -> dg.MaterializeResult:
    settings = pipeline.settings()
    now = run_as_of(context.run.tags)
    with pipeline.engine().begin() as conn:
        states = refresh_billing_periods(conn, settings, now)
    overdue = [s.period for s in states if s.status == ON_HOLD and now >= s.closes_at]
    counts = dict(sorted(Counter(s.status for s in states).items()))
    check = dg.AssetCheckResult(
        check_name=HOLD_CHECK,
        passed=not overdue,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"On hold past their close: {', '.join(overdue)}; remove them from"
            " usage_events.on_hold to finalise them."
            if overdue
            else "No period is held past its close."
        ),
        metadata={"periods": dg.MetadataValue.json(overdue)},
    )
    return dg.MaterializeResult(
        metadata={
            "as_of": now.isoformat(),
            "periods": dg.MetadataValue.md(periods_markdown(states, settings)),
            "statuses": dg.MetadataValue.json(counts),
            "rows": len(states),
        },
        check_results=[check],
    )


def build_billing(
    config: PipelineConfig, run_tags: dict[str, str]
) -> tuple[Any, dg.ScheduleDefinition]:
    """The billing-periods job and its hourly schedule (instance zone), running by default."""
    job = dg.define_asset_job(
        BILLING_JOB, selection=dg.AssetSelection.assets(BILLING_PERIODS), run_tags=run_tags
    )
    schedule = dg.ScheduleDefinition(
        name="billing_periods_schedule",
        job=job,
        cron_schedule="0 * * * *",
        execution_timezone=config.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Hourly: move billing periods from open to draft to final as time passes.",
    )
    return job, schedule
