"""What to rebuild next, read from the pending-work queue (shared by the CLI, the
follow-up sensor and the snapshot schedule)."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from usage_pipeline import work_queue
from usage_pipeline.rollups import DAILY_ROLLUPS
from usage_pipeline.snapshots import (
    SNAPSHOT_BUILDERS,
    SNAPSHOT_LOOKBACK_DAYS,
    missing_snapshot_days,
)
from usage_pipeline.work_queue import DayRange, PendingDay


def rollup_ranges(conn: sa.Connection) -> list[DayRange]:
    """Runs of consecutive days whose rollups have pending work."""
    return work_queue.day_ranges(work_queue.pending(conn, [r.name for r in DAILY_ROLLUPS]))


def snapshot_ranges(conn: sa.Connection, completed: date | None = None) -> list[DayRange]:
    """Runs of consecutive snapshot dates to build: refreshes asked for by rebuilt days
    (held back while a day in their window still waits for its rollup, which will ask
    again), plus, given the last ``completed`` day, every missed night up to it."""
    inputs = [r.name for r in DAILY_ROLLUPS if r.snapshot_input]
    waiting = sorted({p.day for p in work_queue.pending(conn, inputs)})
    window = timedelta(days=SNAPSHOT_LOOKBACK_DAYS)
    items = [
        p
        for p in work_queue.pending(conn, list(SNAPSHOT_BUILDERS))
        if not any(p.day - window <= day <= p.day for day in waiting)
    ]
    if completed is not None:
        for table, days in missing_snapshot_days(conn, completed).items():
            items += [PendingDay(table, day, 0) for day in days]
    return work_queue.day_ranges(items)
