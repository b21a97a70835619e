"""The drop watch (SPEC §5), per watched feed (config ``drops``): whether night D's drop was
*loaded*, arrived but was *rejected*, arrived *empty* (zero data rows) or is *missing*, once
D's deadline plus grace has passed; and the volume check: a night's loaded rows against the
median of the previous loaded nights.

A file belongs to night D when its drop date (SPEC §2: a ``YYYY-MM-DD``/``YYYYMMDD`` in its
name, else its last-modified day in the instance zone) is D; a loaded file also speaks for
every day its rows cover. Everything here reads the ledger (``ingested_files``) only.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from usage_pipeline.config import DropWatch
from usage_pipeline.days import drop_date
from usage_pipeline.warehouse.tables import ingested_files

LOADED, REJECTED, EMPTY, MISSING = "loaded", "rejected", "empty", "missing"
NOT_LOADED = ("rejected", "duplicate", "reverted")  # arrived, but nothing of it is loaded
# Rejection reasons of a file without data rows (reading.py, ingest.py).
EMPTY_REASONS = ("the file is empty", "the file has a header but no data rows")
VOLUME_NIGHTS = 14  # previous loaded nights whose median a night is compared with ...
VOLUME_MIN_NIGHTS = 3  # ... once there are at least this many
VOLUME_LOOKBACK_DAYS = 60  # how far back (by receipt) previous nights are looked for
LISTED = 5  # files named in a sentence


def is_due(day: date, days: str) -> bool:
    """Whether a drop is expected for night ``day`` (``daily`` or ``weekdays``)."""
    return days == "daily" or day.weekday() < 5


def due_at(day: date, tz: ZoneInfo, deadline: time, grace: timedelta) -> datetime:
    """When night ``day``'s drop is due: ``deadline`` on that day (instance time) + grace."""
    return datetime.combine(day, deadline, tzinfo=tz) + grace


def due_day(
    now: datetime, tz: ZoneInfo, deadline: time, grace: timedelta, days: str = "daily"
) -> date:
    """The latest due night D whose deadline plus grace has passed at ``now``."""
    day = now.astimezone(tz).date()
    while not is_due(day, days) or due_at(day, tz, deadline, grace) > now:
        day -= timedelta(days=1)
    return day


def _utc(moment: datetime) -> datetime:
    """Ledger instants: SQLite gives them back naive (stored in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc)


def _night(key: str, received_at: datetime, tz: ZoneInfo) -> date:
    return drop_date(key.rsplit("/", 1)[-1], _utc(received_at), tz)


@dataclass(frozen=True)
class NightFile:
    """One ledger row that speaks for a night."""

    file_id: int
    key: str
    status: str
    rows_total: int | None
    error: str | None

    @property
    def reason(self) -> str:
        """Why it was not loaded, without the ledger sentence's frame."""
        text = (self.error or self.status).strip()
        prefix = f"File {self.key} is rejected: "
        return text.removeprefix(prefix).rstrip(".") if text.startswith(prefix) else text

    @property
    def empty(self) -> bool:
        return self.status == "rejected" and not self.rows_total and self.reason in EMPTY_REASONS

    def phrase(self) -> str:
        if self.status == "duplicate":
            return f"{self.key} was held back as a duplicate of a file already loaded"
        if self.status == "reverted":
            return f"{self.key} was reverted"
        return f"{self.key} was rejected ({self.reason})"


def _listing(items: list[str], glue: str = ", ") -> str:
    more = f"{glue}and {len(items) - LISTED} more" if len(items) > LISTED else ""
    return glue.join(items[:LISTED]) + more


@dataclass(frozen=True)
class DropStatus:
    """Night ``day``'s drop of ``feed``, due at ``due``, and the files that speak for it."""

    feed: str
    day: date
    due: datetime
    files: tuple[NightFile, ...]

    @property
    def outcome(self) -> str:
        if any(f.status == LOADED for f in self.files):
            return LOADED
        if any(not f.empty for f in self.files):
            return REJECTED
        return EMPTY if self.files else MISSING

    @property
    def passed(self) -> bool:
        return self.outcome == LOADED

    def sentence(self) -> str:
        outcome, feed, day = self.outcome, self.feed, self.day
        if outcome == LOADED:
            keys = [f.key for f in self.files if f.status == LOADED]
            return f"The {feed} drop for {day} was loaded: {_listing(keys)}."
        if outcome == REJECTED:
            phrases = _listing([f.phrase() for f in self.files if not f.empty], "; ")
            return f"The {feed} drop for {day} arrived but was not loaded: {phrases}."
        if outcome == EMPTY:
            keys = [f.key for f in self.files]
            return f"The {feed} drop for {day} arrived empty: {_listing(keys)} had no data rows."
        return f"No {feed} file for {day} has arrived."


def night_files(conn: sa.Connection, feed: str, day: date, tz: ZoneInfo) -> list[NightFile]:
    """The ledger rows of ``feed`` that belong to night ``day`` (files received from the day
    before it on, plus loaded files whose rows cover it), oldest first."""
    f = ingested_files.c
    covers = (f.status == LOADED) & (f.min_day <= day) & (f.max_day >= day)
    columns = (f.file_id, f.source_key, f.status, f.rows_total, f.error, f.received_at)
    found = conn.execute(
        sa.select(*columns, f.min_day, f.max_day)
        .where(
            f.feed == feed,
            f.status.in_([LOADED, *NOT_LOADED]),
            sa.or_(f.received_at >= _midnight(day - timedelta(days=1), tz), covers),
        )
        .order_by(f.file_id)
    ).all()
    return [
        NightFile(int(r.file_id), r.source_key, r.status, r.rows_total, r.error)
        for r in found
        if _night(r.source_key, r.received_at, tz) == day
        or (r.status == LOADED and r.min_day is not None and r.min_day <= day <= r.max_day)
    ]


def drop_status(conn: sa.Connection, watch: DropWatch, tz: ZoneInfo, now: datetime) -> DropStatus:
    """The latest due night of ``watch`` at ``now`` and what arrived for it."""
    day = due_day(now, tz, watch.deadline, watch.grace, watch.days)
    files = night_files(conn, watch.feed, day, tz)
    return DropStatus(watch.feed, day, due_at(day, tz, watch.deadline, watch.grace), tuple(files))


@dataclass(frozen=True)
class VolumeStatus:
    """Night ``day``'s loaded rows of ``feed`` against the median of earlier loaded nights."""

    feed: str
    day: date
    rows: int | None  # None: nothing of the feed is loaded for the night
    median: float | None
    nights: int  # earlier loaded nights the median is taken over
    band: tuple[float, float]

    @property
    def evaluated(self) -> bool:
        return self.rows is not None and self.nights >= VOLUME_MIN_NIGHTS

    @property
    def ratio(self) -> float | None:
        if not self.evaluated or self.median is None:
            return None
        if self.median == 0:
            return 1.0 if self.rows == 0 else float("inf")
        return (self.rows or 0) / self.median

    @property
    def passed(self) -> bool:
        ratio = self.ratio
        return ratio is None or self.band[0] <= ratio <= self.band[1]

    def sentence(self) -> str:
        if self.rows is None:
            return f"Volume not checked: nothing of {self.feed} is loaded for {self.day}."
        if not self.evaluated:
            return (
                f"Volume not checked yet: {self.feed} has {self.nights} earlier loaded night(s),"
                f" {VOLUME_MIN_NIGHTS} are needed."
            )
        low, high = (f"{share:.0%}" for share in self.band)
        measured = (
            f"The {self.feed} drop for {self.day} loaded {self.rows} rows, {self.ratio:.0%} of"
            f" the median {self.median:g} of the previous {self.nights} loaded nights"
        )
        if self.passed:
            return f"{measured} (band {low} to {high})."
        return f"{measured}: outside the band {low} to {high}."


def volume_status(conn: sa.Connection, watch: DropWatch, tz: ZoneInfo, day: date) -> VolumeStatus:
    """Rows loaded for night ``day`` (files whose drop date is ``day``, still loaded) and the
    median over the previous :data:`VOLUME_NIGHTS` nights with loaded files."""
    f = ingested_files.c
    found = conn.execute(
        sa.select(f.source_key, f.received_at, f.rows_loaded).where(
            f.feed == watch.feed,
            f.status == LOADED,
            f.received_at >= _midnight(day - timedelta(days=VOLUME_LOOKBACK_DAYS), tz),
        )
    ).all()
    per_night: Counter[date] = Counter()
    for key, received_at, rows_loaded in found:
        per_night[_night(key, received_at, tz)] += int(rows_loaded or 0)
    earlier = sorted(night for night in per_night if night < day)[-VOLUME_NIGHTS:]
    median = statistics.median(per_night[n] for n in earlier) if earlier else None
    rows = per_night.get(day)
    return VolumeStatus(watch.feed, day, rows, median, len(earlier), watch.volume_band)


def watch_report(
    conn: sa.Connection, watches: tuple[DropWatch, ...], tz: ZoneInfo, now: datetime
) -> tuple[list[str], list[str]]:
    """(lines describing every watched feed's latest due night, the failing checks) for
    ``usage-pipeline status``."""
    if not watches:
        return ["Drop watch: no feed is watched (config drops)."], []
    lines, failing = ["Drop watch:"], []
    for watch in watches:
        status = drop_status(conn, watch, tz, now)
        volume = volume_status(conn, watch, tz, status.day)
        due = status.due.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        lines.append(f"  {watch.feed} (due {due}): {status.sentence()} {volume.sentence()}")
        if not status.passed:
            failing.append(f"missing_drop [{watch.feed}]: {status.sentence()}")
        if not volume.passed:
            failing.append(f"volume [{watch.feed}]: {volume.sentence()}")
    return lines, failing
