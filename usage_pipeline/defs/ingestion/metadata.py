"""What an ``inbox_file`` materialisation tells an engineer: a row per file (file, status,
rows, rejects, days touched, reason), totals, every day touched and a preview of the rows."""

from typing import Any

import dagster as dg

from usage_pipeline.ingest import IngestOutcome


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
