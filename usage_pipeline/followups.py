"""What to rebuild next, read from the pending-work queue (shared by the CLI, the
follow-up sensor and the snapshot schedule)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import sqlalchemy as sa

from usage_pipeline import work_queue
from usage_pipeline.rollups import DAILY_ROLLUPS
from usage_pipeline.snapshots import (
    SNAPSHOT_BUILDERS,
    SNAPSHOT_LOOKBACK_DAYS,
    missing_snapshot_days,
    snapshots_reading,
)
from usage_pipeline.work_queue import DayRange, PendingDay


def rollup_ranges(conn: sa.Connection) -> list[DayRange]:
    """Runs of consecutive days whose rollups have pending work."""
    return work_queue.day_ranges(work_queue.pending(conn, [r.name for r in DAILY_ROLLUPS]))


def snapshot_ranges(
    conn: sa.Connection, completed: date | None = None, rolling: Sequence[DayRange] = ()
) -> list[DayRange]:
    """Runs of consecutive snapshot dates to build: refreshes asked for by rebuilt days
    (held back while a day in their window still waits for its rollup, which will ask
    again), plus, given the last ``completed`` day, every missed night up to it.

    ``rolling``: rollup ranges the same run rebuilds first (Dagster runs a snapshot after
    the rollups it depends on): their days hold nothing back, and the refreshes they will
    ask for are planned now."""
    inputs = [r.name for r in DAILY_ROLLUPS if r.snapshot_input]
    rolled = [r for r in rolling if set(r.kinds) & set(inputs)]
    rolled_days = {day for r in rolled for day in r.days}
    waiting = sorted({p.day for p in work_queue.pending(conn, inputs)} - rolled_days)
    window = timedelta(days=SNAPSHOT_LOOKBACK_DAYS)
    items = [
        p
        for p in work_queue.pending(conn, list(SNAPSHOT_BUILDERS))
        if not any(p.day - window <= day <= p.day for day in waiting)
    ]
    for r in rolled:
        for table, days in snapshots_reading(conn, r.start, r.end).items():
            items += [PendingDay(table, day, 0) for day in days]
    if completed is not None:
        for table, days in missing_snapshot_days(conn, completed).items():
            items += [PendingDay(table, day, 0) for day in days]
    return work_queue.day_ranges(items)


def one_range(ranges: Sequence[DayRange]) -> DayRange | None:
    """The ranges as one run when they all cover the same days (their kinds merged), else
    None (a run covers one range of days for every daily asset it selects)."""
    if not ranges or len({(r.start, r.end) for r in ranges}) != 1:
        return None
    kinds = tuple(sorted({kind for r in ranges for kind in r.kinds}))
    return DayRange(ranges[0].start, ranges[0].end, kinds, max(r.newest for r in ranges))
