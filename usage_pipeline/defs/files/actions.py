"""Jobs an engineer launches from the UI with a file's inbox key as run config:
``revert_file_job`` (remove a loaded version's contribution) and ``reprocess_file_job`` (load
the key's current bytes again under the current config). Each reports an ``inbox_file``
materialisation with the file's row; the follow-up sensor then rolls up the days it changed
and refreshes the snapshots that read them."""

from datetime import datetime
from typing import Any

import dagster as dg

from usage_pipeline.alerts import rejected_file_alerts, send
from usage_pipeline.defs.ingestion.assets import INBOX_FILE
from usage_pipeline.defs.ingestion.metadata import batch_metadata
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.ingest import IngestOutcome
from usage_pipeline.revert import FileActionError, reprocess_key, revert_key

REVERT_JOB = "revert_file_job"
REPROCESS_JOB = "reprocess_file_job"


class FileKeyConfig(dg.Config):
    """The file version to act on: its inbox key (e.g. user_activity/usage_2026-11-20.csv)."""

    key: str
    as_of: str | None = None  # ISO date-time the action acts as of (default: now)


def file_action_config(op: str, key: str, as_of: datetime | None = None) -> dict[str, Any]:
    """The run config of :data:`REVERT_JOB` (op ``revert_file``) or :data:`REPROCESS_JOB`
    (op ``reprocess_file``) for ``key``."""
    config: dict[str, Any] = {"key": key}
    if as_of is not None:
        config["as_of"] = as_of.isoformat()
    return {"ops": {op: {"config": config}}}


def _report(context: dg.OpExecutionContext, outcome: IngestOutcome, verb: str) -> None:
    context.log_event(
        dg.AssetMaterialization(
            asset_key=INBOX_FILE,
            description=f"{outcome.source_key} {verb}: {outcome.status}",
            metadata=batch_metadata([outcome]),
        )
    )
    for table in outcome.tables:
        context.log_event(
            dg.AssetMaterialization(
                asset_key=table,
                description=f"Rewritten: {outcome.source_key} {verb}.",
                metadata={"file_ids": dg.MetadataValue.json([outcome.file_id])},
            )
        )


def _as_of(config: FileKeyConfig) -> datetime | None:
    return datetime.fromisoformat(config.as_of) if config.as_of else None


@dg.op(description="Remove the loaded version of the key from every table (ledger: reverted).")
def revert_file(
    context: dg.OpExecutionContext, config: FileKeyConfig, pipeline: PipelineResource
) -> None:
    try:
        outcome = revert_key(pipeline.engine(), pipeline.settings(), config.key, _as_of(config))
    except FileActionError as exc:
        raise dg.Failure(description=str(exc)) from None
    _report(context, outcome, "reverted")


@dg.op(description="Load the key's current bytes again under the current config.")
def reprocess_file(
    context: dg.OpExecutionContext, config: FileKeyConfig, pipeline: PipelineResource
) -> None:
    settings = pipeline.settings()
    try:
        outcome = reprocess_key(
            pipeline.engine(), pipeline.source(), settings, config.key, _as_of(config)
        )
    except FileActionError as exc:
        raise dg.Failure(description=str(exc)) from None
    _report(context, outcome, "reprocessed")
    send(pipeline.engine(), settings, rejected_file_alerts([outcome]), context.log)


def build_file_jobs(run_tags: dict[str, str]) -> list[dg.JobDefinition]:
    """``revert_file_job`` and ``reprocess_file_job`` (run config: the file's inbox key)."""

    @dg.job(
        name=REVERT_JOB,
        run_tags=run_tags,
        description="Revert one file version: run config ops.revert_file.key.",
    )
    def revert_file_job() -> None:
        revert_file()

    @dg.job(
        name=REPROCESS_JOB,
        run_tags=run_tags,
        description="Reprocess one file under the current config: run config"
        " ops.reprocess_file.key.",
    )
    def reprocess_file_job() -> None:
        reprocess_file()

    return [revert_file_job, reprocess_file_job]
