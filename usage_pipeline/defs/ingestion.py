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


def file_record(outcome: IngestOutcome) -> dict[str, Any]:
    """One file's facts as plain JSON: identity, counts, days, errors, feed notes."""
    record: dict[str, Any] = {
        "file": outcome.source_key,
        "feed": outcome.feed,
        "sha256": outcome.sha256,
        "status": outcome.status,
        "file_id": outcome.file_id or 0,
        "rows_total": outcome.rows_total,
        "rows_loaded": outcome.rows_loaded,
        "rows_rejected": outcome.rows_rejected,
        "days_touched": [d.isoformat() for d in outcome.days_touched],
        "already_processed": outcome.already_done,
        "error": outcome.error,
        "quarantine": outcome.quarantine,
        "superseded_file_ids": outcome.superseded,
        "tables_updated": outcome.tables,
    }
    record.update(outcome.notes)
    return record


FILE_TABLE = dg.TableSchema(
    columns=[
        dg.TableColumn("file", "string"),
        dg.TableColumn("feed", "string"),
        dg.TableColumn("status", "string"),
        dg.TableColumn("rows_total", "int"),
        dg.TableColumn("rows_loaded", "int"),
        dg.TableColumn("rows_rejected", "int"),
        dg.TableColumn("days_touched", "string"),
        dg.TableColumn("error", "string"),
    ]
)
PREVIEWS = 3  # files whose first rows are shown (files with rejected rows first)


def _days_label(days: list[str]) -> str:
    return (
        days[0] if len(days) == 1 else f"{days[0]}..{days[-1]} ({len(days)} days)" if days else ""
    )


def batch_metadata(outcomes: list[IngestOutcome]) -> dict[str, Any]:
    """What an engineer needs to act on a batch: a row per file (file, status, rows,
    rejects, days touched, reason), totals, every day touched, a preview of the rows."""
    records = [file_record(o) for o in outcomes]
    days = sorted({d for r in records for d in r["days_touched"]})
    statuses: dict[str, int] = {}
    for record in records:
        statuses[record["status"]] = statuses.get(record["status"], 0) + 1
    shown = sorted(
        (o for o in outcomes if o.preview is not None), key=lambda o: o.rows_rejected == 0
    )[:PREVIEWS]
    metadata: dict[str, Any] = {
        "files": dg.MetadataValue.table(
            [
                dg.TableRecord(
                    {
                        **{k: r[k] for k in ("file", "feed", "status", "rows_total")},
                        **{k: r[k] for k in ("rows_loaded", "rows_rejected")},
                        "days_touched": _days_label(r["days_touched"]),
                        "error": r["error"] or "",
                    }
                )
                for r in records
            ],
            schema=FILE_TABLE,
        ),
        "file_details": dg.MetadataValue.json(records),
        "statuses": dg.MetadataValue.json(statuses),
        "rows_loaded": sum(o.rows_loaded for o in outcomes),
        "rows_rejected": sum(o.rows_rejected for o in outcomes),
        "days_touched": dg.MetadataValue.json(days),
    }
    if shown:
        metadata["preview"] = dg.MetadataValue.md(
            "\n\n".join(
                f"**{o.source_key}**\n\n{o.preview.to_markdown(index=False)}" for o in shown
            )
        )
    return metadata


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


ingest_files_job = dg.define_asset_job(INGEST_JOB, selection=[inbox_file])
