"""Daily rollups, recomputed in SQL for exactly the days a file touched.

Invariant: ``user_activity_contributions`` holds the rows of loaded file versions only
(ingestion deletes a version's rows when it is superseded), so a day's rollup is the
plain sum of its contributions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from usage_pipeline import work_queue
from usage_pipeline.activity_state import ACCOUNT_STATE, USER_STATE, StateSpec, update_state
from usage_pipeline.snapshots import mark_snapshot_refreshes
from usage_pipeline.warehouse.engine import tune_for_aggregates
from usage_pipeline.warehouse.tables import (
    account_activity_daily,
    account_usage_contributions,
    event_candidates,
    events,
    events_daily,
    usage_event_meters,
    usage_meter_daily,
    user_activity_contributions,
    user_activity_daily,
)

USER_ACTIVITY_SOURCE = "user_activity"
ACCOUNT_USAGE_SOURCE = "account_usage"
_KEYS = ("account_id", "user_id", "module", "activity")


@dataclass(frozen=True)
class DayTotals:
    """Row counts and count sums of one day at each stage, for reconciliation."""

    day: date
    contribution_rows: int
    contribution_count: int
    user_rows: int
    user_count: int
    account_rows: int
    account_count: int
    account_usage_loaded: int = 0
    account_usage_rolled: int = 0

    @property
    def reconciled(self) -> bool:
        return (
            self.contribution_count == self.user_count == self.account_count
            and self.account_usage_loaded == self.account_usage_rolled
        )


def rebuild_user_activity_day(conn: sa.Connection, day: date) -> int:
    """Delete-then-insert one day of ``user_activity_daily``; return its row count."""
    c = user_activity_contributions.c
    conn.execute(user_activity_daily.delete().where(user_activity_daily.c.activity_date == day))
    grouped = (
        sa.select(c.activity_date, *(c[k] for k in _KEYS), sa.func.sum(c["count"]))
        .where(c.activity_date == day)
        .group_by(c.activity_date, *(c[k] for k in _KEYS))
        .order_by(c.activity_date, *(c[k] for k in _KEYS))  # key order: cheap index build
    )
    result = conn.execute(
        user_activity_daily.insert().from_select(["activity_date", *_KEYS, "count"], grouped)
    )
    return int(result.rowcount or 0)


def rebuild_account_activity_day(conn: sa.Connection, day: date) -> int:
    """Delete-then-insert one day of ``account_activity_daily``: user-level rollups
    (``user_activity``) and aggregated account usage (``account_usage``, no active users).

    ``active_users`` counts users with count > 0; the daily key includes the user, so a
    filtered row count equals the distinct-user count without a DISTINCT.
    """
    u, a = user_activity_daily.c, account_activity_daily.c
    conn.execute(account_activity_daily.delete().where(a.activity_date == day))
    grouped = (
        sa.select(
            u.activity_date,
            u.account_id,
            u.module,
            u.activity,
            sa.literal(USER_ACTIVITY_SOURCE),
            sa.func.sum(u["count"]),
            sa.func.sum(sa.case((u["count"] > 0, 1), else_=0)),
        )
        .where(u.activity_date == day)
        .group_by(u.activity_date, u.account_id, u.module, u.activity)
        .order_by(u.activity_date, u.account_id, u.module, u.activity)
    )
    columns = [
        "activity_date",
        "account_id",
        "module",
        "activity",
        "source",
        "count",
        "active_users",
    ]
    result = conn.execute(account_activity_daily.insert().from_select(columns, grouped))
    c = account_usage_contributions.c
    account_usage = (
        sa.select(
            c.activity_date,
            c.account_id,
            c.module,
            c.activity,
            sa.literal(ACCOUNT_USAGE_SOURCE),
            sa.func.sum(c["count"]),
            sa.null(),
        )
        .where(c.activity_date == day)
        .group_by(c.activity_date, c.account_id, c.module, c.activity)
        .order_by(c.activity_date, c.account_id, c.module, c.activity)
    )
    added = conn.execute(account_activity_daily.insert().from_select(columns, account_usage))
    return int(result.rowcount or 0) + int(added.rowcount or 0)


def rebuild_usage_meter_day(conn: sa.Connection, day: date) -> int:
    """Delete-then-insert one day of ``usage_meter_daily`` from the stored events' meters."""
    m = usage_event_meters.c
    keys = (m.day, m.customer_ref, m.subscription_ref, m.event, m.meter)
    conn.execute(usage_meter_daily.delete().where(usage_meter_daily.c.day == day))
    grouped = (
        sa.select(*keys, sa.func.sum(m.value), sa.func.count())
        .where(m.day == day)
        .group_by(*keys)
        .order_by(*keys)
    )
    columns = ["day", "customer_ref", "subscription_ref", "event", "meter", "total", "events"]
    return int(conn.execute(usage_meter_daily.insert().from_select(columns, grouped)).rowcount or 0)


def rebuild_events_day(conn: sa.Connection, day: date) -> int:
    """Delete-then-insert one day of ``events_daily`` from the kept ``events``."""
    e, c = events.c, event_candidates.c
    days = (
        sa.select(c.identity, c.event, c.occurred_at, c.day)
        .where(c.day == day)
        .distinct()
        .subquery()
    )
    conn.execute(events_daily.delete().where(events_daily.c.day == day))
    grouped = (
        sa.select(days.c.day, e.event, sa.func.count(), sa.func.count(e.identity.distinct()))
        .select_from(
            events.join(
                days,
                (days.c.identity == e.identity)
                & (days.c.event == e.event)
                & (days.c.occurred_at == e.occurred_at),
            )
        )
        .group_by(days.c.day, e.event)
    )
    columns = ["day", "event", "events", "identities"]
    return int(conn.execute(events_daily.insert().from_select(columns, grouped)).rowcount or 0)


def day_totals(conn: sa.Connection, day: date) -> DayTotals:
    """Rows and count sums of ``day`` in contributions and both rollups (user_activity source)."""

    def totals(table: sa.Table, *where: sa.ColumnElement[bool]) -> tuple[int, int]:
        row = conn.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(table.c["count"]), 0)).where(
                table.c.activity_date == day, *where
            )
        ).one()
        return int(row[0]), int(row[1])

    contribution = totals(user_activity_contributions)
    user = totals(user_activity_daily)
    account = totals(
        account_activity_daily, account_activity_daily.c.source == USER_ACTIVITY_SOURCE
    )
    usage_loaded = totals(account_usage_contributions)[1]
    usage_rolled = totals(
        account_activity_daily, account_activity_daily.c.source == ACCOUNT_USAGE_SOURCE
    )[1]
    return DayTotals(day, *contribution, *user, *account, usage_loaded, usage_rolled)


@dataclass(frozen=True)
class DailyRollup:
    """A table rebuilt per day from loaded rows; one daily-partitioned asset each."""

    name: str
    group: str
    description: str
    rebuild: Callable[[sa.Connection, date], int]
    reads: tuple[str, ...] = ()  # other rollups it is computed from
    feeds: tuple[str, ...] = ()  # feeds whose loads change its days
    snapshot_input: bool = False  # the usage snapshots read it
    state: StateSpec | None = None  # first/last active days it keeps for the snapshots


DAILY_ROLLUPS = (
    DailyRollup(
        "user_activity_daily",
        "rollups",
        "Counts per (activity_date, account, user, module, activity), summed over every loaded"
        " user_activity file; rebuilt for one day (delete then insert).",
        rebuild_user_activity_day,
        feeds=("user_activity",),
        snapshot_input=True,
        state=USER_STATE,
    ),
    DailyRollup(
        "account_activity_daily",
        "rollups",
        "Counts and active users per (activity_date, account, module, activity, source):"
        " user_activity rollups and account_usage counts; rebuilt for one day.",
        rebuild_account_activity_day,
        reads=("user_activity_daily",),
        feeds=("user_activity", "account_usage"),
        snapshot_input=True,
        state=ACCOUNT_STATE,
    ),
    DailyRollup(
        "usage_meter_daily",
        "billing",
        "Billable meter totals and event counts per (day, customer, subscription, event,"
        " meter); rebuilt for one day.",
        rebuild_usage_meter_day,
        feeds=("usage_events",),
    ),
    DailyRollup(
        "events_daily",
        "behaviour",
        "Kept behaviour events and distinct identities per (day, event); rebuilt for one day.",
        rebuild_events_day,
        feeds=("events",),
    ),
)


def rollup_named(name: str) -> DailyRollup:
    return next(r for r in DAILY_ROLLUPS if r.name == name)


def mark_rollups(conn: sa.Connection, feed: str, days: set[date]) -> None:
    """In a file's transaction: the days its load changed need every rollup of its feed."""
    work_queue.mark(conn, [r.name for r in DAILY_ROLLUPS if feed in r.feeds], days)


def _has_rows(conn: sa.Connection, table: str, day: date) -> bool:
    column = sa.column("activity_date", sa.Date)
    query = sa.select(sa.literal(1)).select_from(sa.table(table)).where(column == day).limit(1)
    return conn.execute(query).first() is not None


def rebuild_rollup_day(conn: sa.Connection, rollup: DailyRollup, day: date) -> int:
    """Rebuild one day of ``rollup`` in the caller's transaction, serialised with any other
    rebuild of that day, clearing its pending work and asking the snapshots that read the
    day to refresh. Returns the day's row count."""
    tune_for_aggregates(conn)
    with work_queue.rebuilding(conn, rollup.name, day):
        had_rows = rollup.state is not None and _has_rows(conn, rollup.state.daily, day)
        count = rollup.rebuild(conn, day)
        if rollup.state is not None:
            update_state(conn, rollup.state, day, had_rows)
        if rollup.snapshot_input:
            mark_snapshot_refreshes(conn, day)
    return count
