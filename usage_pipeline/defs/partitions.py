"""Partitions: one dynamic partition per file version, daily partitions in the instance zone."""

from __future__ import annotations

import dagster as dg

from usage_pipeline.days import FIRST_DAY

INBOX_FILES = dg.DynamicPartitionsDefinition(name="inbox_files")


def daily_partitions(timezone: str) -> dg.DailyPartitionsDefinition:
    """Days from FIRST_DAY up to and including today (drops arrive on the evening of a day)."""
    return dg.DailyPartitionsDefinition(
        start_date=FIRST_DAY.isoformat(), timezone=timezone, end_offset=1
    )
