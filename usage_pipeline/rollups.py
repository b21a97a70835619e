"""Daily rollups, recomputed in SQL for exactly the days a file touched.

Invariant: ``user_activity_contributions`` holds the rows of loaded file versions only
(ingestion deletes a version's rows when it is superseded), so a day's rollup is the
plain sum of its contributions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from usage_pipeline.warehouse.tables import (
    account_activity_daily,
    user_activity_contributions,
    user_activity_daily,
)

USER_ACTIVITY_SOURCE = "user_activity"
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

    @property
    def reconciled(self) -> bool:
        return self.contribution_count == self.user_count == self.account_count


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
    """Delete-then-insert the ``user_activity`` rows of one day of ``account_activity_daily``.

    ``active_users`` counts users with count > 0; the daily key includes the user, so a
    filtered row count equals the distinct-user count without a DISTINCT.
    """
    u, a = user_activity_daily.c, account_activity_daily.c
    conn.execute(
        account_activity_daily.delete().where(
            a.activity_date == day, a.source == USER_ACTIVITY_SOURCE
        )
    )
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
    return int(result.rowcount or 0)


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
    return DayTotals(day, *contribution, *user, *account)
