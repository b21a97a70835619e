"""Pending work: which days of which derived tables must be rebuilt.

Dagster gives a daily asset downstream of file loads no file -> day mapping, so the link
is kept here, in the warehouse, as an outbox: the transaction that changes a day's inputs
(a file load, a rollup) also inserts ``(kind, day)`` rows into ``pending_work``; the
rebuild of that day locks it, notes the newest row it can see, rebuilds, and deletes the
rows up to that one. Rows a concurrent load adds meanwhile survive and ask for one more
rebuild, so nothing is missed, and what is pending never depends on a sensor's cursor:
the CLI and the daemon read the same queue, and a fresh instance plans only what is new.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa

from usage_pipeline.days import as_date
from usage_pipeline.warehouse.tables import pending_work

SNAPSHOTS = "snapshots"
_ROWS_PER_INSERT = 500  # two bound values a row: far below any database's limit


def mark(conn: sa.Connection, kinds: str | Iterable[str], days: Iterable[date]) -> None:
    """Ask for each of ``kinds`` to be rebuilt on ``days`` (in the caller's transaction), in
    as few statements as it takes (one for a file's usual handful of days)."""
    kinds = [kinds] if isinstance(kinds, str) else sorted(set(kinds))
    rows = [{"kind": kind, "day": day} for kind in kinds for day in sorted(set(days))]
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        conn.execute(pending_work.insert().values(rows[start : start + _ROWS_PER_INSERT]))


def _lock(conn: sa.Connection, kind: str, day: date) -> None:
    """Serialise rebuilds of one (kind, day) on PostgreSQL (SQLite has one writer anyway)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:kind, :day)"),
            {"kind": zlib.crc32(kind.encode()) & 0x7FFFFFFF, "day": day.toordinal()},
        )


@contextmanager
def rebuilding(conn: sa.Connection, kind: str, day: date) -> Iterator[None]:
    """Wrap the rebuild of ``kind`` for ``day`` inside the caller's transaction: lock the
    day (a second rebuild of it waits, then redoes it on committed data), then delete the
    pending rows that were visible before the rebuild read its inputs. Rows committed later
    (on PostgreSQL, READ COMMITTED) are kept: their data may be missing from this rebuild."""
    _lock(conn, kind, day)
    w = pending_work.c
    seen = list(conn.execute(sa.select(w.id).where(w.kind == kind, w.day == day)).scalars())
    yield
    if seen:
        conn.execute(pending_work.delete().where(w.id.in_(seen)))


@dataclass(frozen=True)
class PendingDay:
    """One day with pending work of one kind, and the newest row asking for it."""

    kind: str
    day: date
    newest: int


def pending(conn: sa.Connection, kinds: Iterable[str] | None = None) -> list[PendingDay]:
    """Every (kind, day) with pending work, by day then kind."""
    w = pending_work.c
    query = sa.select(w.kind, w.day, sa.func.max(w.id)).group_by(w.kind, w.day)
    if kinds is not None:
        query = query.where(w.kind.in_(list(kinds)))
    return sorted(
        (
            PendingDay(str(kind), as_date(day), int(newest))
            for kind, day, newest in conn.execute(query)
        ),
        key=lambda p: (p.day, p.kind),
    )


@dataclass(frozen=True)
class DayRange:
    """Consecutive days to rebuild in one run, the kinds to rebuild, and the newest pending
    row they cover (part of the run key, so new work asks for a new run)."""

    start: date
    end: date
    kinds: tuple[str, ...]
    newest: int = 0

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def key(self, prefix: str) -> str:
        return f"{prefix}:{self.start.isoformat()}:{self.end.isoformat()}:{self.newest}"


def day_ranges(items: Iterable[PendingDay]) -> list[DayRange]:
    """Group pending days into runs of consecutive days (one run per gap-free stretch)."""
    by_day: dict[date, list[PendingDay]] = {}
    for item in items:
        by_day.setdefault(item.day, []).append(item)
    ranges: list[DayRange] = []
    for day in sorted(by_day):
        kinds = {p.kind for p in by_day[day]}
        newest = max(p.newest for p in by_day[day])
        last = ranges[-1] if ranges else None
        if last is not None and last.end + timedelta(days=1) == day:
            ranges[-1] = DayRange(
                last.start, day, tuple(sorted(set(last.kinds) | kinds)), max(last.newest, newest)
            )
        else:
            ranges.append(DayRange(day, day, tuple(sorted(kinds)), newest))
    return ranges
