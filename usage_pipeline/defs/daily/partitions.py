"""Daily partitions in the instance zone (the only partitions: bounded by days, not files)."""

from __future__ import annotations

import dagster as dg

from usage_pipeline.days import FIRST_DAY

# A run covers a range of days (a late file, a missed week) in one run, not one run a day.
ONE_RUN_PER_RANGE = dg.BackfillPolicy.single_run()


def daily_partitions(timezone: str) -> dg.DailyPartitionsDefinition:
    """Days from FIRST_DAY through tomorrow in the instance zone: rows may be dated up to a
    day ahead, and a run may act as of today. The snapshot schedule requests the completed
    day explicitly."""
    return dg.DailyPartitionsDefinition(
        start_date=FIRST_DAY.isoformat(), timezone=timezone, end_offset=2
    )
