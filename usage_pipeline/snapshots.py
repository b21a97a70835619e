"""Account and user usage snapshots for one ``snapshot_date`` (SPEC §3), computed in SQL;
the registry of every snapshot table (each account's top users: :mod:`top_users`; the
hierarchy: :mod:`hierarchy`).

Windows end on the snapshot date inclusive: 1d is that day, 7d the 7 days ending on it,
30d the 30 days ending on it, and the previous 30d the 30 days before those.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

from usage_pipeline import work_queue
from usage_pipeline.activity_state import ACCOUNT_STATE, USER_STATE
from usage_pipeline.days import as_date
from usage_pipeline.hierarchy import build_hierarchy_snapshot
from usage_pipeline.snapshot_sql import statement
from usage_pipeline.top_users import build_top_users
from usage_pipeline.warehouse.engine import tune_for_aggregates
from usage_pipeline.warehouse.tables import (
    account_usage_snapshot,
    snapshot_dates,
    user_usage_snapshot,
)

# A snapshot reads the 60 days ending on its date (30d window + the previous 30d), so a
# day D is read by the snapshots of D .. D + 59, and a missed night is rebuilt up to 59
# days back.
SNAPSHOT_LOOKBACK_DAYS = 59


# How each snapshot is computed, in time linear in the rows of its window: window rows are
# grouped once; members come from the activity state (first day <= S) and the directory;
# per-member values are combined with UNION ALL + GROUP BY (a sort, never a join of two
# aggregates, which SQLite could plan as a nested loop), the top module among them (the
# minimum of a key, not a window function that sorts every member's module rows). A member
# without active rows in the window takes its last active day from the state, unless that
# day is after S (it came back later): then its last active day before the window is read
# from its month rows and the window's month (a primary-key seek per day), never from its
# whole history.
_ACCOUNT_SQL = """
INSERT INTO account_usage_snapshot (
    snapshot_date, account_id, active_users_1d, active_users_7d, active_users_30d,
    activity_1d, activity_7d, activity_30d, activity_change_30d_pct, top_module_30d,
    last_activity_date, days_since_last_activity)
WITH {modules}, users AS (
    SELECT account_id,
        COUNT(DISTINCT CASE WHEN activity_date = :s THEN user_id END) AS u1,
        COUNT(DISTINCT CASE WHEN activity_date >= :d7 THEN user_id END) AS u7,
        COUNT(DISTINCT user_id) AS u30
    FROM user_activity_daily WHERE activity_date BETWEEN :d30 AND :s AND count > 0
    GROUP BY account_id
), facts AS (
    SELECT account_id, CAST(NULL AS DATE) AS state_last, 0 AS a1, 0 AS a7, 0 AS a30,
        0 AS prev30, CAST(NULL AS DATE) AS last_in_window, CAST(NULL AS TEXT) AS top_key,
        0 AS u1, 0 AS u7, 0 AS u30
    FROM accounts
    UNION ALL
    SELECT account_id, last_active_day, 0, 0, 0, 0, NULL, NULL, 0, 0, 0
    FROM account_activity_state WHERE first_day <= :s
    UNION ALL
    SELECT account_id, NULL, a1, a7, a30, prev30, last_in_window, {top_key}, 0, 0, 0
    FROM modules
    UNION ALL
    SELECT account_id, NULL, 0, 0, 0, 0, NULL, NULL, u1, u7, u30 FROM users
), per_account AS (
    SELECT account_id, MAX(state_last) AS state_last, {sum}(a1) AS a1, {sum}(a7) AS a7,
        {sum}(a30) AS a30, {sum}(prev30) AS prev30, MAX(last_in_window) AS last_in_window,
        {top_module} AS top, {sum}(u1) AS u1, {sum}(u7) AS u7, {sum}(u30) AS u30
    FROM facts GROUP BY account_id
), resolved AS (
    SELECT p.*, {last_date} AS last_date FROM per_account AS p
)
SELECT {day}, account_id, u1, u7, u30, a1, a7, a30,
    CASE WHEN prev30 = 0 THEN NULL ELSE 100.0 * (a30 - prev30) / prev30 END,
    top, last_date, {days_since}
FROM resolved
"""

_USER_SQL = """
INSERT INTO user_usage_snapshot (
    snapshot_date, account_id, user_id, last_active_date, days_since_last_active,
    activity_7d, activity_30d, top_module_30d)
WITH modules AS (
    SELECT account_id, user_id, module,
        {sum}(CASE WHEN activity_date >= :d7 THEN count ELSE 0 END) AS a7,
        {sum}(count) AS a30,
        MAX(CASE WHEN count > 0 THEN activity_date END) AS last_in_window
    FROM user_activity_daily WHERE activity_date BETWEEN :d30 AND :s
    GROUP BY account_id, user_id, module
), facts AS (
    SELECT account_id, user_id, last_active_day AS state_last, 0 AS a7, 0 AS a30,
        CAST(NULL AS DATE) AS last_in_window, CAST(NULL AS TEXT) AS top_key
    FROM user_activity_state WHERE first_day <= :s
    UNION ALL
    SELECT account_id, user_id, NULL, a7, a30, last_in_window, {top_key} FROM modules
), per_user AS (
    SELECT account_id, user_id, MAX(state_last) AS state_last, {sum}(a7) AS a7,
        {sum}(a30) AS a30, MAX(last_in_window) AS last_in_window, {top_module} AS top
    FROM facts GROUP BY account_id, user_id
), resolved AS (
    SELECT p.*, {last_date} AS last_date FROM per_user AS p
)
SELECT {day}, account_id, user_id, last_date, {days_since}, a7, a30, top
FROM resolved
"""


def build_account_snapshot(conn: sa.Connection, snapshot_date: date) -> int:
    """Delete-then-insert ``account_usage_snapshot`` for one date; return its row count."""
    table = account_usage_snapshot
    conn.execute(table.delete().where(table.c.snapshot_date == snapshot_date))
    sql, params = statement(_ACCOUNT_SQL, conn, snapshot_date, ACCOUNT_STATE, "p30")
    result = conn.execute(sql, params)
    return int(result.rowcount or 0)


def build_user_snapshot(conn: sa.Connection, snapshot_date: date) -> int:
    """Delete-then-insert ``user_usage_snapshot`` for one date; return its row count."""
    table = user_usage_snapshot
    conn.execute(table.delete().where(table.c.snapshot_date == snapshot_date))
    sql, params = statement(_USER_SQL, conn, snapshot_date, USER_STATE, "d30")
    result = conn.execute(sql, params)
    return int(result.rowcount or 0)


SNAPSHOT_BUILDERS: dict[str, Callable[[sa.Connection, date], int]] = {
    "account_usage_snapshot": build_account_snapshot,
    "user_usage_snapshot": build_user_snapshot,
    "account_hierarchy_snapshot": build_hierarchy_snapshot,
    "account_top_users": build_top_users,
}


def snapshots_reading(conn: sa.Connection, first: date, last: date) -> dict[str, list[date]]:
    """Per snapshot table, the built dates whose windows read a day in ``first`` .. ``last``."""
    s = snapshot_dates.c
    query = sa.select(s.snapshot_table, s.snapshot_date).where(
        s.snapshot_date.between(first, last + timedelta(days=SNAPSHOT_LOOKBACK_DAYS))
    )
    by_table: dict[str, list[date]] = {}
    for table, built in conn.execute(query):
        by_table.setdefault(str(table), []).append(as_date(built))
    return by_table


def mark_snapshot_refreshes(conn: sa.Connection, day: date) -> None:
    """After ``day`` was rebuilt: every snapshot already built that reads it must refresh."""
    for table, days in snapshots_reading(conn, day, day).items():
        work_queue.mark(conn, table, days)


def mark_latest_snapshots(conn: sa.Connection, tables: tuple[str, ...]) -> None:
    """Ask the latest built date of each of ``tables`` to refresh."""
    s = snapshot_dates.c
    for table in tables:
        latest = conn.execute(
            sa.select(sa.func.max(s.snapshot_date)).where(s.snapshot_table == table)
        ).scalar()
        if latest is not None:
            work_queue.mark(conn, table, [as_date(latest)])


def build_snapshot_day(conn: sa.Connection, table: str, day: date) -> int:
    """Build ``table`` for ``day`` in the caller's transaction (serialised per date), clear
    its pending refreshes and record the date as built. Returns the row count."""
    tune_for_aggregates(conn)
    with work_queue.rebuilding(conn, table, day):
        count = SNAPSHOT_BUILDERS[table](conn, day)
        s = snapshot_dates.c
        conn.execute(
            snapshot_dates.delete().where(s.snapshot_table == table, s.snapshot_date == day)
        )
        conn.execute(
            snapshot_dates.insert().values(
                snapshot_table=table, snapshot_date=day, built_at=datetime.now(timezone.utc)
            )
        )
    return count


def missing_snapshot_days(conn: sa.Connection, completed: date) -> dict[str, list[date]]:
    """Per snapshot table, the completed days not built yet: ``completed`` itself and, after
    a gap, every day since the table's last snapshot (at most 60 days back)."""
    s = snapshot_dates.c
    latest = dict(
        conn.execute(
            sa.select(s.snapshot_table, sa.func.max(s.snapshot_date)).group_by(s.snapshot_table)
        ).all()
    )
    missing: dict[str, list[date]] = {}
    for table in SNAPSHOT_BUILDERS:
        last = latest.get(table)
        first = completed if last is None else as_date(last) + timedelta(days=1)
        first = max(first, completed - timedelta(days=SNAPSHOT_LOOKBACK_DAYS))
        days = [first + timedelta(days=n) for n in range((completed - first).days + 1)]
        if days:
            missing[table] = days
    return missing
