"""The ``inbox_file`` asset: one run ingests a bounded batch of file versions.

Each file loads in its own transaction and is reported as its own materialisation (file,
rows, rejects, days touched, preview); the batch's checks summarise its files. There are
no per-file partitions: the run config names the files, so partition counts stay bounded
by days however many files arrive.
"""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import dagster as dg

from usage_pipeline.batch import FAILED, MISSING, ingest_batch
from usage_pipeline.defs.checks import batch_checks, check_specs
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


def outcome_metadata(outcome: IngestOutcome) -> dict[str, Any]:
    """What an engineer needs to act on a file: identity, counts, days, errors, preview."""
    metadata: dict[str, Any] = {
        "file": outcome.source_key,
        "feed": outcome.feed,
        "sha256": outcome.sha256,
        "status": outcome.status,
        "file_id": outcome.file_id or 0,
        "rows_total": outcome.rows_total,
        "rows_loaded": outcome.rows_loaded,
        "rows_rejected": outcome.rows_rejected,
        "days_touched": dg.MetadataValue.json([d.isoformat() for d in outcome.days_touched]),
        "already_processed": outcome.already_done,
    }
    if outcome.error:
        metadata["error"] = outcome.error
    if outcome.quarantine:
        metadata["quarantine"] = outcome.quarantine
    if outcome.superseded:
        metadata["superseded_file_ids"] = dg.MetadataValue.json(outcome.superseded)
    if outcome.preview is not None:
        metadata["preview"] = dg.MetadataValue.md(outcome.preview.to_markdown(index=False))
    if outcome.tables:
        metadata["tables_updated"] = dg.MetadataValue.json(outcome.tables)
    for name, value in outcome.notes.items():
        metadata[name] = dg.MetadataValue.json(value) if isinstance(value, (list, dict)) else value
    return metadata


def _report(context: dg.AssetExecutionContext, outcome: IngestOutcome) -> None:
    """Log one file's outcome: a materialisation of inbox_file (and of every table it
    rewrote) when the file was processed now; an observation when it had been already (a
    retried batch, a race) or when it vanished or failed, which is also logged as an error."""
    if outcome.status in (MISSING, FAILED) or outcome.already_done:
        if not outcome.already_done:
            context.log.error(outcome.error or outcome.status)
        context.log_event(
            dg.AssetObservation(asset_key=INBOX_FILE, metadata=outcome_metadata(outcome))
        )
        return
    context.log_event(
        dg.AssetMaterialization(
            asset_key=INBOX_FILE,
            description=outcome.error or f"{outcome.source_key}: {outcome.status}",
            metadata=outcome_metadata(outcome),
        )
    )
    for table in outcome.tables:
        context.log_event(
            dg.AssetMaterialization(
                asset_key=table,
                description=f"Rewritten for file {outcome.source_key}.",
                metadata={"file": outcome.source_key, "file_id": outcome.file_id or 0},
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
    outcomes = []
    for outcome in ingest_batch(
        pipeline.engine(),
        pipeline.source(),
        config.keys,
        settings,
        force=config.force,
        as_of=as_of,
    ):
        _report(context, outcome)
        if not outcome.already_done:
            outcomes.append(outcome)
    yield from batch_checks(INBOX_FILE, outcomes, settings.max_reject_ratio)
    failed = [o for o in outcomes if o.status == FAILED]
    if failed:
        raise dg.Failure(
            description=" ".join(o.error or "" for o in failed),
            metadata={"failed_files": dg.MetadataValue.json([o.source_key for o in failed])},
        )


ingest_files_job = dg.define_asset_job(INGEST_JOB, selection=[inbox_file])
