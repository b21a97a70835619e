"""The drop watch: one ``<feed>_drop_arrivals`` asset per watched feed (config ``drops``) with
its ``missing_drop`` check (ERROR: no file, a rejected file or an empty file by deadline +
grace) and its ``volume`` check (WARN: the night's loaded rows outside the band around the
median of the previous loaded nights). One job evaluates every watched feed in one run."""

from datetime import datetime
from typing import Any

import dagster as dg

from usage_pipeline.alerts import drop_alerts, send
from usage_pipeline.config import DropWatch, PipelineConfig
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.defs.tags import run_as_of
from usage_pipeline.drops import drop_status, volume_status
from usage_pipeline.warehouse.engine import read_connection

MISSING_DROP_CHECK = "missing_drop"
VOLUME_CHECK = "volume"
DROP_WATCH_JOB = "drop_watch_job"


def arrivals_key(feed: str) -> dg.AssetKey:
    return dg.AssetKey(f"{feed}_drop_arrivals")


DROP_ARRIVALS = arrivals_key("user_activity")


def _watch_asset(feed: str) -> dg.AssetsDefinition:
    key = arrivals_key(feed)

    @dg.asset(
        key=key,
        group_name="ingestion",
        check_specs=[
            dg.AssetCheckSpec(
                MISSING_DROP_CHECK,
                asset=key,
                description=f"A {feed} file of night D was loaded by the drops.{feed} deadline"
                " on D plus grace (instance time); fails for no file, a rejected file and a"
                " file without data rows.",
            ),
            dg.AssetCheckSpec(
                VOLUME_CHECK,
                asset=key,
                description=f"The rows loaded for night D's {feed} drop are within the"
                f" drops.{feed}.volume_band (default 50% to 200%) of the median of the previous"
                " 14 loaded nights.",
            ),
        ],
        description=f"Whether the latest due night's {feed} drop arrived and loaded, and how"
        " many rows it brought.",
    )
    def _arrivals(
        context: dg.AssetExecutionContext, pipeline: PipelineResource
    ) -> dg.MaterializeResult:
        settings = pipeline.settings()
        watch = settings.drop_watch(feed) or DropWatch(feed)
        engine = pipeline.engine()
        with read_connection(engine) as conn:
            status = drop_status(conn, watch, settings.tz, run_as_of(context.run.tags))
            volume = volume_status(conn, watch, settings.tz, status.day)
            alerts = drop_alerts(conn, status, settings)
        if not status.passed:
            context.log.error(status.sentence())
        send(engine, settings, alerts, context.log)
        day = status.day.isoformat()
        missing = dg.AssetCheckResult(
            check_name=MISSING_DROP_CHECK,
            passed=status.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=status.sentence(),
            metadata={
                "day": day,
                "outcome": status.outcome,
                "due_at": status.due.isoformat(),
                "files": dg.MetadataValue.json(
                    [{"file": f.key, "status": f.status, "id": f.file_id} for f in status.files]
                ),
            },
        )
        checked = dg.AssetCheckResult(
            check_name=VOLUME_CHECK,
            passed=volume.passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=volume.sentence(),
            metadata={
                "day": day,
                "previous_nights": volume.nights,
                "band": dg.MetadataValue.json(list(volume.band)),
                **({"rows_loaded": volume.rows} if volume.rows is not None else {}),
                **({"median_rows": volume.median} if volume.median is not None else {}),
            },
        )
        return dg.MaterializeResult(
            metadata={"day": day, "outcome": status.outcome, "files": len(status.files)},
            check_results=[missing, checked],
        )

    return _arrivals


def _crons(watch: DropWatch) -> list[str]:
    """When ``watch``'s nights fall due (deadline + grace may cross midnight)."""
    due = datetime.combine(datetime(2000, 1, 3).date(), watch.deadline) + watch.grace
    shift = (due.date() - datetime(2000, 1, 3).date()).days  # 2000-01-03 is a Monday
    if watch.days == "daily":
        weekdays = "*"
    else:  # cron counts Sunday as 0, Python Monday as 0
        weekdays = ",".join(str(d) for d in sorted({(w + shift + 1) % 7 for w in range(5)}))
    return [f"{due.minute} {due.hour} * * {weekdays}"]


def build_drop_watch(
    config: PipelineConfig, run_tags: dict[str, str]
) -> tuple[list[dg.AssetsDefinition], Any, list[dg.ScheduleDefinition]]:
    """The watched feeds' assets, the job evaluating them all in one run, and the schedule
    running it when any watched night falls due."""
    assets = [_watch_asset(watch.feed) for watch in config.drops]
    job = dg.define_asset_job(
        DROP_WATCH_JOB,
        selection=dg.AssetSelection.assets(*(a.key for a in assets)),
        run_tags=run_tags,
    )
    crons = sorted({cron for watch in config.drops for cron in _crons(watch)})
    schedules = []
    if crons:
        schedules.append(
            dg.ScheduleDefinition(
                name="missing_drop_schedule",
                job=job,
                cron_schedule=crons if len(crons) > 1 else crons[0],
                execution_timezone=config.timezone,
                default_status=dg.DefaultScheduleStatus.RUNNING,
                description="Runs the drop watch when a watched night's deadline + grace has"
                " passed: missing_drop fails loudly for no file, a rejected file or an empty"
                " one, and alerts go to notifications.webhook_url.",
            )
        )
    return assets, job, schedules
