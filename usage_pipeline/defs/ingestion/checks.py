"""The ingestion checks, evaluated once per batch over its files: validation, reject
ratio, duplicate drops and each feed's own checks (only when the batch held that feed)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import dagster as dg

from usage_pipeline.batch import FAILED, MISSING
from usage_pipeline.feeds import FEEDS
from usage_pipeline.ingest import IngestOutcome

VALIDATION_CHECK = "validation"
REJECT_RATIO_CHECK = "reject_ratio"
DUPLICATE_CHECK = "duplicate_drop"
# Per-file checks that feeds add (FeedCheck names) -> the feed they belong to.
FEED_CHECK_FEEDS = {name: feed.name for feed in FEEDS.values() for name in feed.check_names}
STRICT_FEEDS = {name for name, feed in FEEDS.items() if feed.strict}
LISTED = 10  # files named in a check's description; metadata lists them all


def check_specs(asset: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            VALIDATION_CHECK,
            asset=asset,
            description="Every file of the batch was accepted and every row passed the feed's"
            " pandera schema.",
        ),
        dg.AssetCheckSpec(
            REJECT_RATIO_CHECK,
            asset=asset,
            description="Invalid rows stay within max_reject_ratio in every file read row by"
            " row (the strict usage_events feed rejects on any invalid row instead).",
        ),
        dg.AssetCheckSpec(
            DUPLICATE_CHECK,
            asset=asset,
            description="No file repeats the bytes of a file already loaded under another key.",
        ),
        *(
            dg.AssetCheckSpec(name, asset=asset, description=f"Per-file check of the {feed} feed.")
            for name, feed in FEED_CHECK_FEEDS.items()
        ),
    ]


def _listing(lines: list[str]) -> str:
    shown = "; ".join(line.rstrip(".") for line in lines[:LISTED])
    return shown + (f"; and {len(lines) - LISTED} more" if len(lines) > LISTED else "")


def _summary(total: int, bad: list[str], what: str, fine: str) -> str:
    if not bad:
        return fine
    return f"{len(bad)} of {total} files {what}: {_listing(bad)}."


def batch_checks(
    asset: dg.AssetKey, outcomes: list[IngestOutcome], max_ratio: float
) -> Iterator[dg.AssetCheckResult]:
    """The batch's check results (files that vanished or failed are reported by the run)."""
    files = [o for o in outcomes if o.status not in (MISSING, FAILED)]
    if not files:
        return
    total = len(files)
    rejected = [o for o in files if o.status == "rejected"]
    partial = [o for o in files if o.status != "rejected" and o.rows_invalid]
    problems = [o.error or o.status for o in rejected] + [
        f"{o.source_key}: {o.rows_rejected} of {o.rows_total} rows rejected" for o in partial
    ]
    yield dg.AssetCheckResult(
        asset_key=asset,
        check_name=VALIDATION_CHECK,
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR if rejected else dg.AssetCheckSeverity.WARN,
        description=_summary(
            total,
            problems,
            "have problems",
            "The file is valid." if total == 1 else f"All {total} files are valid.",
        ),
        metadata={
            "files": total,
            "rejected_files": dg.MetadataValue.json([o.source_key for o in rejected]),
            "files_with_rejected_rows": dg.MetadataValue.json([o.source_key for o in partial]),
            "failures": dg.MetadataValue.json(dict(sum((o.failures for o in files), Counter()))),
        },
    )
    # The ratio applies to files read row by row: not to strict feeds, not to files
    # rejected before their rows were read (header, key, format).
    rated = [o for o in files if o.rows_total and o.feed not in STRICT_FEEDS]
    over = [o for o in rated if o.invalid_ratio > max_ratio]
    if rated:
        yield dg.AssetCheckResult(
            asset_key=asset,
            check_name=REJECT_RATIO_CHECK,
            passed=not over,
            description=_summary(
                len(rated),
                [f"{o.source_key}: {o.rows_invalid} of {o.rows_total} rows invalid" for o in over],
                f"exceed max_reject_ratio {max_ratio:g}",
                f"Every file is within max_reject_ratio {max_ratio:g}.",
            ),
            metadata={
                "max_reject_ratio": max_ratio,
                "worst_ratio": max(o.invalid_ratio for o in rated),
            },
        )
    duplicates = [o for o in files if o.status == "duplicate"]
    yield dg.AssetCheckResult(
        asset_key=asset,
        check_name=DUPLICATE_CHECK,
        passed=not duplicates,
        severity=dg.AssetCheckSeverity.WARN,
        description=_summary(
            total, [o.error or o.source_key for o in duplicates], "are duplicates", "No duplicates."
        ),
        metadata={"duplicate_files": dg.MetadataValue.json([o.source_key for o in duplicates])},
    )
    for name, feed in FEED_CHECK_FEEDS.items():
        results = [(o.source_key, c) for o in files if o.feed == feed for c in o.checks]
        results = [(key, c) for key, c in results if c.name == name]
        if not results:
            continue
        failing = [c for _, c in results if not c.passed]
        yield dg.AssetCheckResult(
            asset_key=asset,
            check_name=name,
            passed=not failing,
            severity=dg.AssetCheckSeverity.WARN,
            description=" ".join(c.description for c in (failing or [c for _, c in results])),
            metadata={
                "files_checked": len(results),
                "failing_files": len(failing),
                "by_file": dg.MetadataValue.json({key: c.metadata for key, c in results}),
            },
        )
