"""Account and user usage snapshots for one ``snapshot_date`` (SPEC §3), computed in SQL.

Windows end on the snapshot date inclusive: 1d is that day, 7d the 7 days ending on it,
30d the 30 days ending on it, and the previous 30d the 30 days before those.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

from usage_pipeline import work_queue
from usage_pipeline.warehouse.tables import (
    account_usage_snapshot,
    snapshot_dates,
    user_usage_snapshot,
)

# A snapshot reads the 60 days ending on its date (30d window + the previous 30d), so a
# day D is read by the snapshots of D .. D + 59, and a missed night is rebuilt up to 59
# days back.
SNAPSHOT_LOOKBACK_DAYS = 59


def _dialect_sql(conn: sa.Connection) -> dict[str, str]:
    """The two expressions whose spelling differs between PostgreSQL and SQLite."""
    if conn.dialect.name == "postgresql":
        return {
            "day": "CAST(:s AS date)",
            "days_since": "(CAST(:s AS date) - {col})",
            "module": 'module COLLATE "C"',
        }
    return {
        "day": ":s",
        "days_since": "CAST(julianday(:s) - julianday({col}) AS INTEGER)",
        "module": "module",
    }


_ACCOUNT_SQL = """
INSERT INTO account_usage_snapshot (
    snapshot_date, account_id, active_users_1d, active_users_7d, active_users_30d,
    activity_1d, activity_7d, activity_30d, activity_change_30d_pct, top_module_30d,
    last_activity_date, days_since_last_activity)
WITH history AS (
    SELECT account_id, MAX(CASE WHEN count > 0 THEN activity_date END) AS last_date
    FROM account_activity_daily WHERE activity_date <= :s GROUP BY account_id
), members AS (
    SELECT account_id FROM history UNION SELECT account_id FROM accounts
), activity AS (
    SELECT account_id,
        SUM(CASE WHEN activity_date = :s THEN count ELSE 0 END) AS a1,
        SUM(CASE WHEN activity_date >= :d7 THEN count ELSE 0 END) AS a7,
        SUM(CASE WHEN activity_date >= :d30 THEN count ELSE 0 END) AS a30,
        SUM(CASE WHEN activity_date < :d30 THEN count ELSE 0 END) AS prev30
    FROM account_activity_daily WHERE activity_date BETWEEN :p30 AND :s GROUP BY account_id
), users AS (
    SELECT account_id,
        COUNT(DISTINCT CASE WHEN activity_date = :s THEN user_id END) AS u1,
        COUNT(DISTINCT CASE WHEN activity_date >= :d7 THEN user_id END) AS u7,
        COUNT(DISTINCT user_id) AS u30
    FROM user_activity_daily WHERE activity_date BETWEEN :d30 AND :s AND count > 0
    GROUP BY account_id
), modules AS (
    SELECT account_id, module, SUM(count) AS total
    FROM account_activity_daily WHERE activity_date BETWEEN :d30 AND :s
    GROUP BY account_id, module
), top AS (
    SELECT account_id, module FROM (
        SELECT account_id, module, ROW_NUMBER() OVER (
            PARTITION BY account_id ORDER BY total DESC, {module} ASC) AS rank
        FROM modules WHERE total > 0) AS ranked
    WHERE rank = 1
)
SELECT {day}, m.account_id,
    COALESCE(u.u1, 0), COALESCE(u.u7, 0), COALESCE(u.u30, 0),
    COALESCE(a.a1, 0), COALESCE(a.a7, 0), COALESCE(a.a30, 0),
    CASE WHEN COALESCE(a.prev30, 0) = 0 THEN NULL
         ELSE 100.0 * (a.a30 - a.prev30) / a.prev30 END,
    t.module, h.last_date, {days_since}
FROM members AS m
LEFT JOIN history AS h ON h.account_id = m.account_id
LEFT JOIN activity AS a ON a.account_id = m.account_id
LEFT JOIN users AS u ON u.account_id = m.account_id
LEFT JOIN top AS t ON t.account_id = m.account_id
"""

_USER_SQL = """
INSERT INTO user_usage_snapshot (
    snapshot_date, account_id, user_id, last_active_date, days_since_last_active,
    activity_7d, activity_30d, top_module_30d)
WITH history AS (
    SELECT account_id, user_id, MAX(CASE WHEN count > 0 THEN activity_date END) AS last_date
    FROM user_activity_daily WHERE activity_date <= :s GROUP BY account_id, user_id
), activity AS (
    SELECT account_id, user_id,
        SUM(CASE WHEN activity_date >= :d7 THEN count ELSE 0 END) AS a7,
        SUM(count) AS a30
    FROM user_activity_daily WHERE activity_date BETWEEN :d30 AND :s
    GROUP BY account_id, user_id
), modules AS (
    SELECT account_id, user_id, module, SUM(count) AS total
    FROM user_activity_daily WHERE activity_date BETWEEN :d30 AND :s
    GROUP BY account_id, user_id, module
), top AS (
    SELECT account_id, user_id, module FROM (
        SELECT account_id, user_id, module, ROW_NUMBER() OVER (
            PARTITION BY account_id, user_id ORDER BY total DESC, {module} ASC) AS rank
        FROM modules WHERE total > 0) AS ranked
    WHERE rank = 1
)
SELECT {day}, h.account_id, h.user_id, h.last_date, {days_since},
    COALESCE(a.a7, 0), COALESCE(a.a30, 0), t.module
FROM history AS h
LEFT JOIN activity AS a ON a.account_id = h.account_id AND a.user_id = h.user_id
LEFT JOIN top AS t ON t.account_id = h.account_id AND t.user_id = h.user_id
"""


def _windows(snapshot_date: date) -> dict[str, date]:
    return {
        "s": snapshot_date,
        "d7": snapshot_date - timedelta(days=6),
        "d30": snapshot_date - timedelta(days=29),
        "p30": snapshot_date - timedelta(days=59),
    }


def _statement(template: str, conn: sa.Connection, last_col: str) -> sa.TextClause:
    parts = _dialect_sql(conn)
    sql = template.format(
        day=parts["day"],
        module=parts["module"],
        days_since=parts["days_since"].format(col=last_col),
    )
    names = [name for name in ("s", "d7", "d30", "p30") if f":{name}" in sql]
    return sa.text(sql).bindparams(*(sa.bindparam(name, type_=sa.Date) for name in names))


def build_account_snapshot(conn: sa.Connection, snapshot_date: date) -> int:
    """Delete-then-insert ``account_usage_snapshot`` for one date; return its row count."""
    table = account_usage_snapshot
    conn.execute(table.delete().where(table.c.snapshot_date == snapshot_date))
    result = conn.execute(_statement(_ACCOUNT_SQL, conn, "h.last_date"), _windows(snapshot_date))
    return int(result.rowcount or 0)


def build_user_snapshot(conn: sa.Connection, snapshot_date: date) -> int:
    """Delete-then-insert ``user_usage_snapshot`` for one date; return its row count."""
    table = user_usage_snapshot
    conn.execute(table.delete().where(table.c.snapshot_date == snapshot_date))
    params = {k: v for k, v in _windows(snapshot_date).items() if k != "p30"}
    result = conn.execute(_statement(_USER_SQL, conn, "h.last_date"), params)
    return int(result.rowcount or 0)


SNAPSHOT_BUILDERS: dict[str, Callable[[sa.Connection, date], int]] = {
    "account_usage_snapshot": build_account_snapshot,
    "user_usage_snapshot": build_user_snapshot,
}


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def mark_snapshot_refreshes(conn: sa.Connection, day: date) -> None:
    """After ``day`` was rebuilt: every snapshot already built that reads it must refresh."""
    s = snapshot_dates.c
    query = sa.select(s.snapshot_table, s.snapshot_date).where(
        s.snapshot_date.between(day, day + timedelta(days=SNAPSHOT_LOOKBACK_DAYS))
    )
    by_table: dict[str, list[date]] = {}
    for table, built in conn.execute(query):
        by_table.setdefault(str(table), []).append(_as_date(built))
    for table, days in by_table.items():
        work_queue.mark(conn, table, days)


def mark_latest_snapshots(conn: sa.Connection, tables: tuple[str, ...]) -> None:
    """Ask the latest built date of each of ``tables`` to refresh."""
    s = snapshot_dates.c
    for table in tables:
        latest = conn.execute(
            sa.select(sa.func.max(s.snapshot_date)).where(s.snapshot_table == table)
        ).scalar()
        if latest is not None:
            work_queue.mark(conn, table, [_as_date(latest)])


def build_snapshot_day(conn: sa.Connection, table: str, day: date) -> int:
    """Build ``table`` for ``day`` in the caller's transaction (serialised per date), clear
    its pending refreshes and record the date as built. Returns the row count."""
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
        first = completed if last is None else _as_date(last) + timedelta(days=1)
        first = max(first, completed - timedelta(days=SNAPSHOT_LOOKBACK_DAYS))
        days = [first + timedelta(days=n) for n in range((completed - first).days + 1)]
        if days:
            missing[table] = days
    return missing
