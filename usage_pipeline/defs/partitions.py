"""Partitions: one dynamic partition per file version, daily partitions in the instance zone."""

from __future__ import annotations

import dagster as dg

from usage_pipeline.days import FIRST_DAY

INBOX_FILES = dg.DynamicPartitionsDefinition(name="inbox_files")


def daily_partitions(timezone: str, end_offset: int = 2) -> dg.DailyPartitionsDefinition:
    """Days from FIRST_DAY in the instance zone. Rollups use ``end_offset=2`` (through
    tomorrow: rows may be dated up to a day ahead); snapshots use ``0`` (through the last
    completed day, which is what the 00:30 schedule targets)."""
    return dg.DailyPartitionsDefinition(
        start_date=FIRST_DAY.isoformat(), timezone=timezone, end_offset=end_offset
    )
