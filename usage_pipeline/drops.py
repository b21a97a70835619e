"""The missing-drop rule: a ``user_activity`` file for day D must be loaded by the deadline
(``drop_deadline`` on D, instance time) plus ``drop_grace``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from usage_pipeline.warehouse.tables import ingested_files

DROP_FEED = "user_activity"


def due_day(now: datetime, tz: ZoneInfo, deadline: time, grace: timedelta) -> date:
    """The latest day D whose deadline plus grace has passed at ``now``."""
    day = now.astimezone(tz).date()
    while datetime.combine(day, deadline, tzinfo=tz) + grace > now:
        day -= timedelta(days=1)
    return day


@dataclass(frozen=True)
class DropStatus:
    """Whether day D's drop arrived, with the files that speak for it."""

    day: date
    loaded: list[str]
    rejected: list[str]

    @property
    def arrived(self) -> bool:
        return bool(self.loaded)

    def sentence(self) -> str:
        if self.loaded:
            return f"The {DROP_FEED} drop for {self.day} arrived: {', '.join(self.loaded)}."
        if self.rejected:
            return (
                f"No {DROP_FEED} file for {self.day} was loaded: the files received that day"
                f" were rejected ({', '.join(self.rejected)})."
            )
        return f"No {DROP_FEED} file for {self.day} has arrived."


def drop_status(conn: sa.Connection, day: date, tz: ZoneInfo) -> DropStatus:
    """Loaded files whose rows cover ``day``, and files received that day but rejected."""
    f = ingested_files.c
    loaded = (
        conn.execute(
            sa.select(f.source_key)
            .where(f.feed == DROP_FEED, f.status == "loaded", f.min_day <= day, f.max_day >= day)
            .order_by(f.source_key)
        )
        .scalars()
        .all()
    )
    start, end = (
        datetime.combine(d, time(0), tzinfo=tz).astimezone(timezone.utc)
        for d in (day, day + timedelta(days=1))
    )
    rejected = (
        conn.execute(
            sa.select(f.source_key)
            .where(
                f.feed == DROP_FEED,
                f.status == "rejected",
                f.received_at >= start,
                f.received_at < end,
            )
            .order_by(f.source_key)
        )
        .scalars()
        .all()
    )
    return DropStatus(day, list(loaded), list(rejected))
