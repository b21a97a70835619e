"""Billing periods (SPEC §2.6): calendar months in the instance zone and their states.

A period ``YYYY-MM`` runs from the 1st 00:00 of the month to the next month's 1st 00:00
(instance zone). It is ``open`` until its end, ``draft`` for ``grace_hours`` after the end
(elapsed hours, so a daylight-saving change inside the grace does not stretch it), then
``final``: ``closes_at`` = end + grace. A period listed in ``usage_events.on_hold`` is
``on_hold`` whatever the clock says, until it is removed from the list. The rules are pure
functions of (period, now, settings); :func:`refresh_billing_periods` writes them to the
``billing_periods`` table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.warehouse.tables import billing_periods, usage_events

OPEN, DRAFT, FINAL, ON_HOLD = "open", "draft", "final", "on_hold"
STATUSES = (OPEN, DRAFT, FINAL, ON_HOLD)
_PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
# Serialises refreshes on PostgreSQL (each runs inside a file's transaction); SQLite writers
# are serialised already.
_REFRESH_LOCK = 7248311


@dataclass(frozen=True)
class PeriodState:
    """One row of ``billing_periods`` (``events``: how many usage events the period holds,
    when the refresh counted them)."""

    period: str
    status: str
    closes_at: datetime  # UTC
    events: int | None = None


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; billing rules need an instant.")
    return moment


def period_of(instant: datetime, tz: ZoneInfo) -> str:
    """The ``YYYY-MM`` period holding ``instant`` (an aware datetime) in zone ``tz``."""
    local = _aware(instant).astimezone(tz)
    return f"{local.year:04d}-{local.month:02d}"


def _parse(period: str) -> tuple[int, int]:
    match = _PERIOD.fullmatch(period)
    if not match:
        raise ValueError(f"Billing period {period!r} is not YYYY-MM.")
    return int(match[1]), int(match[2])


def period_start(period: str, tz: ZoneInfo) -> datetime:
    """The first instant of ``period``: the 1st of the month 00:00 in ``tz`` (as UTC)."""
    year, month = _parse(period)
    # A midnight that a DST change skips maps (fold=0) to the instant the day starts.
    return datetime(year, month, 1, tzinfo=tz).astimezone(timezone.utc)


def period_end(period: str, tz: ZoneInfo) -> datetime:
    """The end of ``period`` (exclusive): next month's 1st 00:00 in ``tz`` (as UTC)."""
    year, month = _parse(period)
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return period_start(f"{year:04d}-{month:02d}", tz)


def closes_at(period: str, tz: ZoneInfo, grace_hours: float) -> datetime:
    """When ``period`` becomes final: its end plus ``grace_hours`` elapsed hours (UTC)."""
    return period_end(period, tz) + timedelta(hours=grace_hours)


def status(
    period: str, now: datetime, tz: ZoneInfo, grace_hours: float, on_hold: Iterable[str] = ()
) -> str:
    """``open`` before the period's end, ``draft`` until end + grace, then ``final``;
    ``on_hold`` whenever the period is listed in ``on_hold``."""
    if period in set(on_hold):
        _parse(period)
        return ON_HOLD
    now = _aware(now)
    if now < period_end(period, tz):
        return OPEN
    if now < closes_at(period, tz, grace_hours):
        return DRAFT
    return FINAL


def period_state(
    period: str, now: datetime, config: PipelineConfig, events: int | None = None
) -> PeriodState:
    settings = config.usage_events
    return PeriodState(
        period,
        status(period, now, config.tz, settings.grace_hours, settings.on_hold),
        closes_at(period, config.tz, settings.grace_hours),
        events,
    )


def refresh_billing_periods(
    conn: sa.Connection,
    config: PipelineConfig,
    now: datetime,
    *,
    has_events: Iterable[str] | None = None,
    recheck: Iterable[str] = (),
) -> list[PeriodState]:
    """Rewrite ``billing_periods`` as of ``now`` (in the caller's transaction): one row for
    every period with usage events, the current period and every ``on_hold`` period.

    Without ``has_events`` the periods with events are counted from ``usage_events`` (one
    scan: the hourly asset). With it (after loading one file) the table's rows are kept,
    ``has_events`` are added, and only the ``recheck`` periods (those a correction removed
    events from) are looked up again; rows left over from an earlier "current" period or a
    released hold are pruned by the next full refresh. Returns the rows, by period.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_REFRESH_LOCK)))
    full = has_events is None
    counts: dict[str, int] = {}
    if has_events is None:
        grouped = sa.select(usage_events.c.billing_period, sa.func.count()).group_by(
            usage_events.c.billing_period
        )
        counts = {str(period): int(n) for period, n in conn.execute(grouped).all()}
        wanted = set(counts)
    else:
        existing = set(conn.execute(sa.select(billing_periods.c.period)).scalars())
        known, maybe_empty = set(has_events), set(recheck) - set(has_events)
        wanted = (existing - maybe_empty) | known
        for period in sorted(maybe_empty):
            found = sa.exists().where(usage_events.c.billing_period == period)
            if conn.execute(sa.select(found)).scalar():
                wanted.add(period)
    wanted |= {period_of(now, config.tz), *config.usage_events.on_hold}
    states = [period_state(p, now, config, counts.get(p, 0) if full else None) for p in wanted]
    states.sort(key=lambda s: s.period)
    conn.execute(billing_periods.delete())
    conn.execute(
        billing_periods.insert(),
        [{"period": s.period, "status": s.status, "closes_at": s.closes_at} for s in states],
    )
    return states
