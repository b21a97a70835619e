"""Run tags the pipeline reads and writes, and how they are read."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timezone

AS_OF_TAG = "usage_pipeline/as_of"
# Every run of the code location: the inbox it serves (one instance per inbox).
INBOX_TAG = "usage_pipeline/inbox"
# Dagster's own tags for a run over a range of partitions (a single-run backfill).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def tagged_as_of(tags: Mapping[str, str]) -> datetime | None:
    """The run's as-of time (``usage-pipeline run --as-of``), or None when not tagged."""
    value = tags.get(AS_OF_TAG)
    return datetime.fromisoformat(value) if value else None


def run_as_of(tags: Mapping[str, str]) -> datetime:
    """The run's as-of time, else now."""
    return tagged_as_of(tags) or datetime.now(timezone.utc)


def range_tags(start: date, end: date) -> dict[str, str]:
    """Tags that make one run cover the daily partitions ``start`` .. ``end``."""
    return {RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()}
