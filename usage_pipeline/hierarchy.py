"""``account_hierarchy_snapshot`` for one ``snapshot_date`` (SPEC §3): every column of
``account_usage_snapshot`` computed over an account and all its descendants in the
directory's hierarchy (``accounts.parent_account_id``), plus ``accounts_in_subtree``.

Accounts: the same as ``account_usage_snapshot``'s (in ``accounts``, or with any activity on
or before the date); an account outside the directory is a subtree of one. A user is one
person across the subtree: a ``user_id`` active in two accounts of a subtree counts once.

Cost, linear in the accounts times the hierarchy's depth and in the rows of the window: the
closure (ancestor, descendant) is built once per date from ``accounts`` by a recursive CTE
walking up the parent links (a primary-key seek per step); the window's rows are grouped
once per (account, module) and per (account, user), as for ``account_usage_snapshot``, and
those groups, not the daily rows, are joined to the closure and summed per ancestor; last
active days come from the activity state. A parent missing from the directory (possible
after a revert) ends the walk: the account is top-level. Accounts in a cycle of parents
(possible after a revert) are each other's descendants: each counts the whole cycle.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from usage_pipeline.activity_state import ACCOUNT_STATE
from usage_pipeline.snapshot_sql import statement
from usage_pipeline.warehouse.tables import account_hierarchy_snapshot

_HIERARCHY_SQL = """
INSERT INTO account_hierarchy_snapshot (
    snapshot_date, account_id, accounts_in_subtree, active_users_1d, active_users_7d,
    active_users_30d, activity_1d, activity_7d, activity_30d, activity_change_30d_pct,
    top_module_30d, last_activity_date, days_since_last_activity)
WITH RECURSIVE members AS (
    SELECT account_id FROM accounts
    UNION
    SELECT account_id FROM account_activity_state WHERE first_day <= :s
), closure (ancestor, descendant) AS (
    SELECT account_id, account_id FROM members
    UNION
    SELECT parent.account_id, c.descendant
    FROM closure AS c
    JOIN accounts AS child ON child.account_id = c.ancestor
    JOIN accounts AS parent ON parent.account_id = child.parent_account_id
), {modules}, per_account AS (
    SELECT account_id, MAX(state_last) AS state_last, MAX(last_in_window) AS last_in_window
    FROM (
        SELECT account_id, last_active_day AS state_last, CAST(NULL AS DATE) AS last_in_window
        FROM account_activity_state WHERE first_day <= :s
        UNION ALL
        SELECT account_id, NULL, last_in_window FROM modules
    ) AS seen
    GROUP BY account_id
), resolved AS (
    SELECT p.account_id, {last_date} AS last_date FROM per_account AS p
), subtrees AS (
    SELECT c.ancestor AS account_id, COUNT(*) AS size, MAX(r.last_date) AS last_date
    FROM closure AS c LEFT JOIN resolved AS r ON r.account_id = c.descendant
    GROUP BY c.ancestor
), subtree_modules AS (
    SELECT c.ancestor AS account_id, m.module, {sum}(m.a1) AS a1, {sum}(m.a7) AS a7,
        {sum}(m.a30) AS a30, {sum}(m.prev30) AS prev30
    FROM closure AS c JOIN modules AS m ON m.account_id = c.descendant
    GROUP BY c.ancestor, m.module
), user_days AS (
    SELECT account_id, user_id,
        MAX(CASE WHEN activity_date = :s THEN 1 ELSE 0 END) AS on1,
        MAX(CASE WHEN activity_date >= :d7 THEN 1 ELSE 0 END) AS on7
    FROM user_activity_daily WHERE activity_date BETWEEN :d30 AND :s AND count > 0
    GROUP BY account_id, user_id
), subtree_users AS (
    SELECT c.ancestor AS account_id, u.user_id, MAX(u.on1) AS on1, MAX(u.on7) AS on7
    FROM closure AS c JOIN user_days AS u ON u.account_id = c.descendant
    GROUP BY c.ancestor, u.user_id
), facts AS (
    SELECT account_id, size, last_date, 0 AS a1, 0 AS a7, 0 AS a30, 0 AS prev30,
        CAST(NULL AS TEXT) AS top_key, 0 AS u1, 0 AS u7, 0 AS u30
    FROM subtrees
    UNION ALL
    SELECT account_id, 0, NULL, a1, a7, a30, prev30, {top_key}, 0, 0, 0
    FROM subtree_modules
    UNION ALL
    SELECT account_id, 0, NULL, 0, 0, 0, 0, NULL, on1, on7, 1 FROM subtree_users
), per_subtree AS (
    SELECT account_id, {sum}(size) AS size, MAX(last_date) AS last_date, {sum}(a1) AS a1,
        {sum}(a7) AS a7, {sum}(a30) AS a30, {sum}(prev30) AS prev30, {top_module} AS top,
        {sum}(u1) AS u1, {sum}(u7) AS u7, {sum}(u30) AS u30
    FROM facts GROUP BY account_id
)
SELECT {day}, account_id, size, u1, u7, u30, a1, a7, a30,
    CASE WHEN prev30 = 0 THEN NULL ELSE 100.0 * (a30 - prev30) / prev30 END,
    top, last_date, {days_since}
FROM per_subtree
"""


def build_hierarchy_snapshot(conn: sa.Connection, snapshot_date: date) -> int:
    """Delete-then-insert ``account_hierarchy_snapshot`` for one date; return its row count."""
    table = account_hierarchy_snapshot
    conn.execute(table.delete().where(table.c.snapshot_date == snapshot_date))
    sql, params = statement(_HIERARCHY_SQL, conn, snapshot_date, ACCOUNT_STATE, "p30")
    return int(conn.execute(sql, params).rowcount or 0)
