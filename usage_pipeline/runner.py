"""One-shot pipeline run in-process on the same Dagster definitions the daemon uses:
sense (listing only) -> ingest new versions in batches -> roll up the days with pending
work -> build and refresh snapshots -> check tonight's drop and refresh billing periods.

Its cost follows the new data: a durable inbox cursor (kept in the warehouse) means only
new versions are read, a batch of files is one run, a stretch of days is one run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import dagster as dg

from usage_pipeline.config import PipelineConfig
from usage_pipeline.definitions import build_definitions
from usage_pipeline.defs.daily.assets import ROLLUP_JOB, SNAPSHOT_JOB
from usage_pipeline.defs.files.actions import file_action_config
from usage_pipeline.defs.ingestion.assets import INBOX_FILE, INGEST_JOB, batch_run_config
from usage_pipeline.defs.tags import AS_OF_TAG, range_tags
from usage_pipeline.defs.watch.run_end import END_OF_RUN_JOB
from usage_pipeline.followups import one_range, rollup_ranges, snapshot_ranges
from usage_pipeline.instance import (
    claim_instance,
    open_instance,  # noqa: F401  (the CLI's instance)
)
from usage_pipeline.rollups import DAILY_ROLLUPS
from usage_pipeline.sensing import new_versions, plan_batches
from usage_pipeline.snapshots import SNAPSHOT_BUILDERS
from usage_pipeline.sources import open_source
from usage_pipeline.state import load_cli_cursor, save_cli_cursor
from usage_pipeline.warehouse.engine import get_engine, read_connection
from usage_pipeline.work_queue import DayRange

ROLLUP_KINDS = frozenset(r.name for r in DAILY_ROLLUPS)
SNAPSHOT_KINDS = frozenset(SNAPSHOT_BUILDERS)
DAILY_KINDS = ROLLUP_KINDS | SNAPSHOT_KINDS  # the day-partitioned assets


@dataclass
class RunReport:
    """What one pipeline pass did, for the CLI summary and exit status."""

    files: list[dict[str, Any]] = field(default_factory=list)
    rollup_days: list[str] = field(default_factory=list)
    snapshot_days: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    failed_runs: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return any(f["status"] == "rejected" or f["rows_rejected"] for f in self.files)

    @property
    def exit_code(self) -> int:
        return 1 if (self.rejected or self.failed_checks or self.failed_runs) else 0


def _root_message(error: Any) -> str:
    """The innermost cause of a Dagster step error: the sentence the user needs."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    message = str(error.message).strip().splitlines()[-1]
    if getattr(error, "cls_name", None) == "Failure":  # dg.Failure: its description only
        message = message.split(": ", 1)[-1]
    return message


class PipelineRunner:
    """Executes the pipeline's jobs in-process against one instance."""

    def __init__(
        self, config: PipelineConfig, instance: dg.DagsterInstance, log_level: str = "INFO"
    ) -> None:
        claim_instance(instance, config.inbox)  # one instance per inbox
        self.config = config
        self.instance = instance
        self.log_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
        self.definitions = build_definitions(config)
        # end_of_run_job's assets that move on with the clock (the drop watch, billing)
        end_of_run = self.definitions.resolve_job_def(END_OF_RUN_JOB)
        self.clock_assets = sorted(
            (
                key
                for key in end_of_run.asset_layer.executable_asset_keys
                if key.to_user_string() not in DAILY_KINDS
            ),
            key=lambda key: key.to_user_string(),
        )
        self.engine = get_engine(config.warehouse)
        self.report = RunReport()

    def _execute(
        self,
        job_name: str,
        label: str | None = None,
        *,
        run_config: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        partition_key: str | None = None,
        asset_selection: list[dg.AssetKey] | None = None,
    ) -> Any:
        job = self.definitions.resolve_job_def(job_name)
        result = job.execute_in_process(
            run_config={**(run_config or {}), **self.log_config},
            instance=self.instance,
            partition_key=partition_key,
            asset_selection=asset_selection,
            tags=tags,
            raise_on_error=False,
        )
        if not result.success:
            failure = next(
                (
                    _root_message(e.event_specific_data.error)
                    for e in result.all_events
                    if e.is_step_failure and e.event_specific_data and e.event_specific_data.error
                ),
                "the run failed",
            )
            where = f" [{label}]" if label else ""
            self.report.failed_runs.append(f"{job_name}{where}: {failure}")
        for evaluation in result.get_asset_check_evaluations():
            if not evaluation.passed:
                asset = evaluation.asset_key.to_user_string()
                name = f"{asset}:{evaluation.check_name}"
                detail = evaluation.description or ""
                daily = asset in DAILY_KINDS  # the label names its days
                where = f" [{label}]" if label and daily else ""
                self.report.failed_checks.append(f"{name}{where} {detail}".strip())
        return result

    def ingest(self, keys: list[str], force: bool = False, as_of: datetime | None = None) -> bool:
        """One ``ingest_files_job`` run for a batch of keys; True when the run succeeded."""
        result = self._execute(
            INGEST_JOB,
            run_config=batch_run_config(keys, force=force, as_of=as_of),
        )
        self._collect_files(result)
        return bool(result.success)

    def _collect_files(self, result: Any) -> None:
        """The file rows of the run's ``inbox_file`` materialisations, into the report."""
        for event in result.all_events:
            if event.asset_key != INBOX_FILE or not event.is_step_materialization:
                continue
            metadata = event.step_materialization_data.materialization.metadata
            self.report.files.extend(metadata["file_details"].value)

    def file_action(self, job_name: str, op: str, key: str) -> bool:
        """One ``revert_file_job`` / ``reprocess_file_job`` run for ``key``."""
        result = self._execute(job_name, run_config=file_action_config(op, key))
        self._collect_files(result)
        return bool(result.success)

    def _daily(
        self,
        job_name: str,
        day_range: DayRange,
        extra: Sequence[dg.AssetKey] = (),
        tags: dict[str, str] | None = None,
    ) -> bool:
        """One run of ``job_name`` over ``day_range`` for the daily assets it names (plus
        the unpartitioned ``extra``), noted in the report; True when it succeeded."""
        selection = [dg.AssetKey(kind) for kind in day_range.kinds] + list(extra)
        label = day_range.start.isoformat()
        if day_range.start == day_range.end:
            result = self._execute(
                job_name, label, partition_key=label, asset_selection=selection, tags=tags
            )
        else:
            label = f"{label}..{day_range.end.isoformat()}"
            tags = {**(tags or {}), **range_tags(day_range.start, day_range.end)}
            result = self._execute(job_name, label, tags=tags, asset_selection=selection)
        for kinds, days in (
            (ROLLUP_KINDS, self.report.rollup_days),
            (SNAPSHOT_KINDS, self.report.snapshot_days),
        ):
            if kinds & set(day_range.kinds):
                days.extend(d.isoformat() for d in day_range.days if d.isoformat() not in days)
        return bool(result.success)

    def follow_up(self, completed: date | None = None) -> None:
        """Roll up every day with pending loads, then build the snapshots that read them
        and, given the last ``completed`` day, every snapshot not built yet."""
        with read_connection(self.engine) as conn:
            ranges = rollup_ranges(conn)
        for day_range in ranges:
            self._daily(ROLLUP_JOB, day_range)
        with read_connection(self.engine) as conn:
            ranges = snapshot_ranges(conn, completed)
        for day_range in ranges:
            self._daily(SNAPSHOT_JOB, day_range)

    def finish(self, completed: date, as_of: datetime) -> None:
        """The night's closing work in as few runs as it allows: rollups, snapshots up to
        ``completed``, and the drop watch and billing periods as of ``as_of``.

        When the rollups and snapshots cover one stretch of days (a usual night) that is
        one run of ``end_of_run_job``; otherwise one run per stretch, as the daemon plans
        them, then the closing run. Anything still pending afterwards (work a concurrent
        load queued meanwhile) is built at once."""
        with read_connection(self.engine) as conn:
            rollups = rollup_ranges(conn)
            snapshots = snapshot_ranges(conn, completed, rolling=rollups)
        tags = {AS_OF_TAG: as_of.isoformat()}
        combined = one_range(rollups + snapshots)
        if combined is None:
            self.follow_up(completed)
            self._execute(END_OF_RUN_JOB, tags=tags, asset_selection=self.clock_assets)
            return
        if self._daily(END_OF_RUN_JOB, combined, extra=self.clock_assets, tags=tags):
            self.follow_up(completed)  # a failed run is reported once, not retried here


def ingest_new_files(runner: PipelineRunner, as_of: datetime) -> None:
    """Sense the inbox from the CLI's durable cursor and ingest what is new, batch by batch.
    The cursor advances past a batch once its run succeeded, and stops at the first batch
    that failed, so the next run retries it (files already loaded are skipped)."""
    config, engine = runner.config, runner.engine
    source = open_source(config.inbox, config.s3_endpoint_url)
    cursor = load_cli_cursor(engine, source.uri)
    batches = plan_batches(
        new_versions(source, cursor), config.batch_max_files, config.batch_max_bytes
    )
    advancing = True
    for batch in batches:
        advancing = runner.ingest(batch.keys, as_of=as_of) and advancing
        if advancing:
            cursor = cursor.advanced(list(batch.objects))
            save_cli_cursor(engine, source.uri, cursor)


def pipeline_pass(runner: PipelineRunner, as_of: datetime) -> RunReport:
    """Ingest every new file, roll up, snapshot the day completed before ``as_of``, check
    the drop watch and billing periods."""
    ingest_new_files(runner, as_of)
    runner.finish(as_of.astimezone(runner.config.tz).date() - timedelta(days=1), as_of)
    return runner.report


def run_pipeline(
    config: PipelineConfig,
    instance: dg.DagsterInstance,
    as_of: datetime | None = None,
    log_level: str = "INFO",
) -> RunReport:
    """One pass of the whole pipeline in-process (``usage-pipeline run``)."""
    runner = PipelineRunner(config, instance, log_level)
    return pipeline_pass(runner, as_of or datetime.now(timezone.utc))


def force_ingest(
    config: PipelineConfig, instance: dg.DagsterInstance, key: str, log_level: str = "INFO"
) -> RunReport:
    """Load a version held back as a duplicate, then roll up the days it touched."""
    runner = PipelineRunner(config, instance, log_level)
    runner.ingest([key], force=True)
    runner.follow_up()
    return runner.report


def act_on_file(
    config: PipelineConfig,
    instance: dg.DagsterInstance,
    job_name: str,
    op: str,
    key: str,
    log_level: str = "INFO",
) -> RunReport:
    """Revert or reprocess ``key`` (one run of ``job_name``), then roll up the days it
    changed and refresh the snapshots that read them."""
    runner = PipelineRunner(config, instance, log_level)
    if runner.file_action(job_name, op, key):
        runner.follow_up()
    return runner.report
