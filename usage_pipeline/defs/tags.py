"""Run tags the pipeline reads, and how they are read."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone

FORCE_TAG = "usage_pipeline/force"
AS_OF_TAG = "usage_pipeline/as_of"


def tagged_as_of(tags: Mapping[str, str]) -> datetime | None:
    """The run's as-of time (``usage-pipeline run --as-of``), or None when not tagged."""
    value = tags.get(AS_OF_TAG)
    return datetime.fromisoformat(value) if value else None


def run_as_of(tags: Mapping[str, str]) -> datetime:
    """The run's as-of time, else now."""
    return tagged_as_of(tags) or datetime.now(timezone.utc)
