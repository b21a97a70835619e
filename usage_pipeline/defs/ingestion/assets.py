"""The ``inbox_file`` asset: one run ingests a bounded batch of file versions.

Each file loads in its own transaction with its own ledger row; the run reports one
materialisation with a row per file (file, status, rows, rejects, days touched, reason)
and a preview, and the batch's checks summarise its files. There are no per-file
partitions or per-file events: the run config names the files, so partition counts stay
bounded by days and the run's bookkeeping does not grow with the number of files.
"""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import dagster as dg

from usage_pipeline.alerts import rejected_file_alerts, send
from usage_pipeline.batch import FAILED, MISSING, ingest_batch
from usage_pipeline.defs.ingestion.checks import batch_checks, check_specs
from usage_pipeline.defs.ingestion.metadata import batch_metadata
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.ingest import IngestOutcome

INBOX_FILE = dg.AssetKey("inbox_file")
INGEST_JOB = "ingest_files_job"


class IngestBatchConfig(dg.Config):
    """Which file versions a run ingests (inbox keys, in order) and how."""

    keys: list[str]
    force: bool = False  # load versions held back as duplicates (``ingest --force``)
    as_of: str | None = None  # ISO date-time the run acts as of (``run --as-of``)


def batch_run_config(
    keys: list[str], force: bool = False, as_of: datetime | None = None
) -> dict[str, Any]:
    """The run config of ``ingest_files_job`` for one batch."""
    config: dict[str, Any] = {"keys": list(keys), "force": force}
    if as_of is not None:
        config["as_of"] = as_of.isoformat()
    return {"ops": {"inbox_file": {"config": config}}}


def _report(context: dg.AssetExecutionContext, outcomes: list[IngestOutcome]) -> None:
    """One materialisation of inbox_file for the files processed now (and one of every table
    they rewrote); files found already processed (a retried batch, a race) are reported as
    an observation; vanished or failed files are logged as errors."""
    for outcome in outcomes:
        if outcome.status in (MISSING, FAILED):
            context.log.error(outcome.error or outcome.status)
    done = [o for o in outcomes if o.already_done]
    fresh = [o for o in outcomes if not o.already_done]
    if done:
        context.log_event(dg.AssetObservation(asset_key=INBOX_FILE, metadata=batch_metadata(done)))
    if not fresh:
        return
    described = [o for o in fresh if o.status not in (MISSING, FAILED)]
    context.log_event(
        dg.AssetMaterialization(
            asset_key=INBOX_FILE,
            description=f"{len(described)} file(s) processed",
            metadata=batch_metadata(fresh),
        )
    )
    for table in sorted({t for o in fresh for t in o.tables}):
        files = [o for o in fresh if table in o.tables]
        context.log_event(
            dg.AssetMaterialization(
                asset_key=table,
                description=f"Rewritten for {len(files)} file(s).",
                metadata={
                    "files": dg.MetadataValue.json([o.source_key for o in files]),
                    "file_ids": dg.MetadataValue.json([o.file_id for o in files]),
                },
            )
        )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            INBOX_FILE,
            group_name="ingestion",
            skippable=True,
            description="Inbox file versions, validated and loaded into the ledger"
            " (ingested_files), rejected_rows and the feed's tables: one materialisation per"
            " file, each file in its own transaction; one run per batch of new versions.",
        )
    ],
    check_specs=check_specs(INBOX_FILE),
    can_subset=True,
    name="inbox_file",
)
def inbox_file(
    context: dg.AssetExecutionContext, config: IngestBatchConfig, pipeline: PipelineResource
) -> Iterator[dg.AssetCheckResult]:
    settings = pipeline.settings()
    as_of = datetime.fromisoformat(config.as_of) if config.as_of else None
    outcomes = list(
        ingest_batch(
            pipeline.engine(),
            pipeline.source(),
            config.keys,
            settings,
            force=config.force,
            as_of=as_of,
        )
    )
    _report(context, outcomes)
    fresh = [o for o in outcomes if not o.already_done]
    send(pipeline.engine(), settings, rejected_file_alerts(fresh), context.log)
    yield from batch_checks(INBOX_FILE, fresh, settings.max_reject_ratio)
    failed = [o for o in outcomes if o.status == FAILED]
    if failed:
        raise dg.Failure(
            description=" ".join(o.error or "" for o in failed),
            metadata={"failed_files": dg.MetadataValue.json([o.source_key for o in failed])},
        )


def build_ingest_job(run_tags: dict[str, str]) -> Any:
    """``ingest_files_job``: one run per batch of file versions (run config names them)."""
    return dg.define_asset_job(INGEST_JOB, selection=[inbox_file], run_tags=run_tags)
