"""``account_top_users`` for one ``snapshot_date`` (SPEC §3): per account, the five users
with the most activity in the 30 days ending on the date (ties: user_id in binary order,
users with 0 left out), read from the 30-day window of ``user_activity_daily`` only.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from usage_pipeline.snapshot_sql import dialect_sql, windows
from usage_pipeline.warehouse.tables import account_top_users

# Per account, users ranked by their 30-day activity: one grouping of the window's rows and
# one window function over the groups (no join).
_TOP_USERS_SQL = """
INSERT INTO account_top_users (snapshot_date, account_id, rank, user_id, activity_30d)
SELECT {day}, account_id, top_rank, user_id, a30
FROM (
    SELECT account_id, user_id, a30,
        ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY a30 DESC, {user} ASC) AS top_rank
    FROM (
        SELECT account_id, user_id, {sum}(count) AS a30
        FROM user_activity_daily WHERE activity_date BETWEEN :d30 AND :s
        GROUP BY account_id, user_id
    ) AS users
    WHERE a30 > 0
) AS ranked
WHERE top_rank <= 5
"""


def top_users_statement(
    conn: sa.Connection, snapshot_date: date
) -> tuple[sa.TextClause, dict[str, date]]:
    """The INSERT of ``account_top_users`` for one date and its parameters."""
    parts = dialect_sql(conn)
    sql = _TOP_USERS_SQL.format(day=parts["day"], user=parts["user"], sum=parts["sum"])
    window = windows(snapshot_date)
    params = {"s": window["s"], "d30": window["d30"]}
    return sa.text(sql).bindparams(*(sa.bindparam(n, type_=sa.Date) for n in params)), params


def build_top_users(conn: sa.Connection, snapshot_date: date) -> int:
    """Delete-then-insert ``account_top_users`` for one date; return its row count."""
    table = account_top_users
    conn.execute(table.delete().where(table.c.snapshot_date == snapshot_date))
    result = conn.execute(*top_users_statement(conn, snapshot_date))
    return int(result.rowcount or 0)
