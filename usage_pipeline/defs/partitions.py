"""Partitions: one dynamic partition per file version, daily partitions in the instance zone."""

from __future__ import annotations

import dagster as dg

from usage_pipeline.days import FIRST_DAY

INBOX_FILES = dg.DynamicPartitionsDefinition(name="inbox_files")


def daily_partitions(timezone: str) -> dg.DailyPartitionsDefinition:
    """Days from FIRST_DAY through tomorrow in the instance zone: rows may be dated up to a
    day ahead, and a run may act as of today. The snapshot schedule requests the completed
    day explicitly."""
    return dg.DailyPartitionsDefinition(
        start_date=FIRST_DAY.isoformat(), timezone=timezone, end_offset=2
    )
