"""The ``inbox_file`` asset: one partition per file version, ingested in one transaction."""

from typing import Any

import dagster as dg

from usage_pipeline.defs.partitions import INBOX_FILES
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.defs.tags import FORCE_TAG, tagged_as_of
from usage_pipeline.feeds import FEEDS
from usage_pipeline.ingest import IngestOutcome, ingest_file
from usage_pipeline.sensing import split_partition_key

INBOX_FILE = dg.AssetKey("inbox_file")
# Per-file checks that feeds add (FeedCheck names), with what they assert.
FEED_CHECK_FEEDS = {name: feed.name for feed in FEEDS.values() for name in feed.check_names}
FEED_CHECKS = tuple(FEED_CHECK_FEEDS)
VALIDATION_CHECK = "validation"
REJECT_RATIO_CHECK = "reject_ratio"
DUPLICATE_CHECK = "duplicate_drop"


def outcome_metadata(outcome: IngestOutcome) -> dict[str, Any]:
    """What an engineer needs to act on a file: identity, counts, days, errors, preview."""
    metadata: dict[str, Any] = {
        "file": outcome.source_key,
        "feed": outcome.feed,
        "sha256": outcome.sha256,
        "status": outcome.status,
        "file_id": outcome.file_id,
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


def _feed_check_results(outcome: IngestOutcome) -> list[dg.AssetCheckResult]:
    produced = {check.name: check for check in outcome.checks}
    results = []
    for name in FEED_CHECKS:
        check = produced.get(name)
        if check is None:
            results.append(
                dg.AssetCheckResult(
                    check_name=name,
                    passed=True,
                    description=f"Not applicable to a {outcome.feed or 'unknown'} file.",
                )
            )
        else:
            results.append(
                dg.AssetCheckResult(
                    check_name=name,
                    passed=check.passed,
                    description=check.description,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata=check.metadata,
                )
            )
    return results


def outcome_checks(outcome: IngestOutcome, max_ratio: float) -> list[dg.AssetCheckResult]:
    """Validation, reject-ratio, duplicate-drop and feed-specific results of one version."""
    rejected = outcome.status == "rejected"
    return _feed_check_results(outcome) + [
        dg.AssetCheckResult(
            check_name=VALIDATION_CHECK,
            passed=not rejected and outcome.rows_invalid == 0,
            description=outcome.error,
            severity=dg.AssetCheckSeverity.ERROR if rejected else dg.AssetCheckSeverity.WARN,
            metadata={
                "failures": dg.MetadataValue.json(dict(outcome.failures)),
                "rows_rejected": outcome.rows_rejected,
                "reason": outcome.error or "",
            },
        ),
        dg.AssetCheckResult(
            check_name=REJECT_RATIO_CHECK,
            passed=outcome.invalid_ratio <= max_ratio and not rejected,
            description=f"{outcome.rows_invalid} of {outcome.rows_total} rows invalid"
            f" (max_reject_ratio {max_ratio:g}).",
            metadata={"invalid_ratio": outcome.invalid_ratio, "max_reject_ratio": max_ratio},
        ),
        dg.AssetCheckResult(
            check_name=DUPLICATE_CHECK,
            passed=outcome.status != "duplicate",
            description=outcome.error if outcome.status == "duplicate" else None,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "duplicate_of_file_id": outcome.duplicate_of or 0,
                "reason": outcome.error or "",
            }
            if outcome.status == "duplicate"
            else {},
        ),
    ]


@dg.asset(
    key=INBOX_FILE,
    group_name="ingestion",
    partitions_def=INBOX_FILES,
    check_specs=[
        dg.AssetCheckSpec(
            VALIDATION_CHECK,
            asset=INBOX_FILE,
            description="Pandera validation of every row of the file.",
        ),
        dg.AssetCheckSpec(
            REJECT_RATIO_CHECK,
            asset=INBOX_FILE,
            description="Rejected rows stay within max_reject_ratio.",
        ),
        dg.AssetCheckSpec(
            DUPLICATE_CHECK,
            asset=INBOX_FILE,
            description="The bytes were not already loaded under another key.",
        ),
        *(
            dg.AssetCheckSpec(
                name, asset=INBOX_FILE, description=f"Per-file check of the {feed} feed."
            )
            for name, feed in FEED_CHECK_FEEDS.items()
        ),
    ],
    description=(
        "One partition per file version (<key>@<sha256 prefix>): validated and loaded into the"
        " ledger (ingested_files), rejected_rows and the feed's contribution table in one"
        " transaction."
    ),
)
def inbox_file(
    context: dg.AssetExecutionContext, pipeline: PipelineResource
) -> dg.MaterializeResult:
    key, sha_prefix = split_partition_key(context.partition_key)
    settings = pipeline.settings()
    source = pipeline.source()
    obj = source.stat(key)
    if obj is None:
        raise dg.Failure(description=f"File {key} is no longer in the inbox {source.uri}.")
    outcome = ingest_file(
        pipeline.engine(),
        source,
        obj,
        settings,
        expected_sha=sha_prefix,
        force=context.run.tags.get(FORCE_TAG) == "true",
        as_of=tagged_as_of(context.run.tags),
    )
    for table in outcome.tables:
        context.log_event(
            dg.AssetMaterialization(
                asset_key=table,
                description=f"Rewritten for file {key}.",
                metadata={"file": key, "file_id": outcome.file_id or 0},
            )
        )
    context.log.info(outcome.error or f"File {key}: {outcome.status}, {outcome.rows_loaded} rows.")
    return dg.MaterializeResult(
        metadata=outcome_metadata(outcome),
        check_results=outcome_checks(outcome, settings.max_reject_ratio),
    )


ingest_file_job = dg.define_asset_job(
    "ingest_file_job", selection=dg.AssetSelection.assets(INBOX_FILE)
)
