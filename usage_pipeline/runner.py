"""One-shot pipeline run in-process on the same Dagster definitions the daemon uses:
sense -> ingest each new file version -> roll up touched days -> refresh affected snapshots
-> snapshot the completed day -> check tonight's drop."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dagster as dg

from usage_pipeline.config import PipelineConfig
from usage_pipeline.definitions import build_definitions
from usage_pipeline.defs.daily import ROLLUP_JOB, SNAPSHOT_JOB
from usage_pipeline.defs.drop_watch import DROP_WATCH_JOB
from usage_pipeline.defs.followups import FollowupCursor, plan_rollups, plan_snapshot_refreshes
from usage_pipeline.defs.ingestion import INBOX_FILE
from usage_pipeline.defs.partitions import INBOX_FILES
from usage_pipeline.defs.tags import AS_OF_TAG, FORCE_TAG
from usage_pipeline.sensing import InboxCursor, SensedFile, partition_key_for, sense
from usage_pipeline.sources import SourceObject, open_source
from usage_pipeline.warehouse.engine import get_engine


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
    return str(error.message).strip().splitlines()[-1]


def open_instance() -> dg.DagsterInstance:
    """``$DAGSTER_HOME``, else the current folder when it holds a dagster.yaml (the repo root:
    the same instance ``dagster dev`` uses there), else an ephemeral instance."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    if Path("dagster.yaml").is_file():
        return dg.DagsterInstance.from_config(str(Path.cwd()))
    return dg.DagsterInstance.ephemeral()


class PipelineRunner:
    """Executes the pipeline's jobs in-process against one instance."""

    def __init__(
        self, config: PipelineConfig, instance: dg.DagsterInstance, log_level: str = "INFO"
    ) -> None:
        self.config = config
        self.instance = instance
        self.run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
        self.definitions = build_definitions(config)
        self.report = RunReport()

    def _execute(self, job_name: str, partition_key: str | None, tags: dict[str, str]) -> Any:
        job = self.definitions.resolve_job_def(job_name)
        result = job.execute_in_process(
            run_config=self.run_config,
            instance=self.instance,
            partition_key=partition_key,
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
            self.report.failed_runs.append(f"{job_name} [{partition_key or '-'}]: {failure}")
        for evaluation in result.get_asset_check_evaluations():
            if not evaluation.passed:
                label = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
                detail = evaluation.description or ""
                if partition_key:
                    label += f" [{partition_key}]"
                self.report.failed_checks.append(f"{label} {detail}".strip())
        return result

    def ingest(
        self, files: list[SensedFile], force: bool = False, as_of: datetime | None = None
    ) -> None:
        """Run ``ingest_file_job`` for each file version, in order."""
        keys = [f.partition_key for f in files]
        if keys:
            self.instance.add_dynamic_partitions(INBOX_FILES.name, keys)
        tags = {FORCE_TAG: "true"} if force else {}
        if as_of is not None:
            tags[AS_OF_TAG] = as_of.isoformat()
        for sensed in files:
            result = self._execute("ingest_file_job", sensed.partition_key, tags)
            for event in result.get_asset_materialization_events():
                if event.asset_key != INBOX_FILE:
                    continue  # the tables a file rewrote are reported too
                metadata = event.materialization.metadata
                self.report.files.append({k: v.value for k, v in metadata.items()})

    def follow_up(self, cursor: FollowupCursor) -> FollowupCursor:
        """Roll up every touched day, then refresh the snapshots that read them."""
        rollup_runs, cursor = plan_rollups(self.instance, cursor)
        for run in rollup_runs:
            self._execute(ROLLUP_JOB, run.partition_key, {})
            self.report.rollup_days.append(run.partition_key)
        engine = get_engine(self.config.warehouse)
        snapshot_runs, cursor = plan_snapshot_refreshes(self.instance, engine, cursor)
        for run in snapshot_runs:
            self._execute(SNAPSHOT_JOB, run.partition_key, {})
            self.report.snapshot_days.append(run.partition_key)
        return cursor

    def snapshot(self, day: date) -> None:
        self._execute(SNAPSHOT_JOB, day.isoformat(), {})
        if day.isoformat() not in self.report.snapshot_days:
            self.report.snapshot_days.append(day.isoformat())

    def check_drop(self, as_of: datetime) -> None:
        self._execute(DROP_WATCH_JOB, None, {AS_OF_TAG: as_of.isoformat()})


CLI_CURSOR_KEY = "usage_pipeline/cli_followup_cursor"


def _load_cli_cursor(instance: dg.DagsterInstance) -> FollowupCursor:
    stored = instance.run_storage.get_cursor_values({CLI_CURSOR_KEY}).get(CLI_CURSOR_KEY)
    return FollowupCursor.parse(stored)


def _save_cli_cursor(instance: dg.DagsterInstance, cursor: FollowupCursor) -> None:
    instance.run_storage.set_cursor_values({CLI_CURSOR_KEY: cursor.dump()})


def run_pipeline(
    config: PipelineConfig,
    instance: dg.DagsterInstance,
    as_of: datetime | None = None,
    log_level: str = "INFO",
) -> RunReport:
    """Sense every new file, ingest, roll up, snapshot the day completed before ``as_of``."""
    as_of = as_of or datetime.now(timezone.utc)
    runner = PipelineRunner(config, instance, log_level)
    source = open_source(config.inbox, config.s3_endpoint_url)
    sensed, _ = sense(source, get_engine(config.warehouse), InboxCursor(None, {}), max_files=10**9)
    runner.ingest(sensed, as_of=as_of)
    _follow_up_durably(runner)
    runner.snapshot(as_of.astimezone(config.tz).date() - timedelta(days=1))
    runner.check_drop(as_of)
    return runner.report


def force_ingest(
    config: PipelineConfig,
    instance: dg.DagsterInstance,
    obj: SourceObject,
    sha: str,
    log_level: str = "INFO",
) -> RunReport:
    """Load a version held back as a duplicate, then roll up the days it touched."""
    runner = PipelineRunner(config, instance, log_level)
    runner.ingest([SensedFile(obj, sha, partition_key_for(obj.key, sha), run_key="")], force=True)
    _follow_up_durably(runner)
    return runner.report


def _follow_up_durably(runner: PipelineRunner) -> None:
    """Plan follow-ups from the CLI's stored cursor and advance it only when every follow-up
    run succeeded, so a crashed rollup is planned again by the next ``run``."""
    failures_before = len(runner.report.failed_runs)
    cursor = runner.follow_up(_load_cli_cursor(runner.instance))
    if len(runner.report.failed_runs) == failures_before:
        _save_cli_cursor(runner.instance, cursor)
