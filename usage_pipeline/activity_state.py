"""Per-user and per-account activity state: the first day with any row and the last day
with count > 0, kept up to date by the daily rollups.

Snapshots read their 60-day window plus this state, never the whole history. A rebuilt day
D updates the state of the users (accounts) it holds now; those whose first or last active
day *was* D and who lost their rows on D (a correction) are recomputed from their own rows
through the ``(account_id, user_id, activity_date)`` index — work bounded by that day, not
by history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa


@dataclass(frozen=True)
class StateSpec:
    """Where a state table's facts come from: a daily table and the key that owns a row."""

    state: str
    daily: str
    keys: tuple[str, ...]


USER_STATE = StateSpec("user_activity_state", "user_activity_daily", ("account_id", "user_id"))
ACCOUNT_STATE = StateSpec("account_activity_state", "account_activity_daily", ("account_id",))


def _match(spec: StateSpec, alias: str) -> str:
    return " AND ".join(f"{alias}.{k} = {spec.state}.{k}" for k in spec.keys)


def _upsert(spec: StateSpec) -> str:
    keys = ", ".join(spec.keys)
    s = spec.state
    return f"""
INSERT INTO {s} ({keys}, first_day, last_active_day)
SELECT {keys}, MIN(activity_date), MAX(CASE WHEN count > 0 THEN activity_date END)
FROM {spec.daily} WHERE activity_date = :d GROUP BY {keys}
ON CONFLICT ({keys}) DO UPDATE SET
    first_day = CASE WHEN excluded.first_day < {s}.first_day
        THEN excluded.first_day ELSE {s}.first_day END,
    last_active_day = CASE WHEN excluded.last_active_day IS NOT NULL
        AND ({s}.last_active_day IS NULL OR excluded.last_active_day > {s}.last_active_day)
        THEN excluded.last_active_day ELSE {s}.last_active_day END
"""


def _lost(spec: StateSpec) -> str:
    """Rows whose first or last active day is D but that no longer have (active) rows on D."""
    return f"""
(first_day = :d AND NOT EXISTS (SELECT 1 FROM {spec.daily} y
    WHERE y.activity_date = :d AND {_match(spec, "y")}))
OR (last_active_day = :d AND NOT EXISTS (SELECT 1 FROM {spec.daily} y
    WHERE y.activity_date = :d AND y.count > 0 AND {_match(spec, "y")}))
"""


def _forget(spec: StateSpec) -> str:
    return f"""
DELETE FROM {spec.state} WHERE first_day = :d AND NOT EXISTS (
    SELECT 1 FROM {spec.daily} y WHERE {_match(spec, "y")})
"""


def _recompute(spec: StateSpec) -> str:
    return f"""
UPDATE {spec.state} SET
    first_day = (SELECT MIN(x.activity_date) FROM {spec.daily} x WHERE {_match(spec, "x")}),
    last_active_day = (SELECT MAX(x.activity_date) FROM {spec.daily} x
        WHERE x.count > 0 AND {_match(spec, "x")})
WHERE {_lost(spec)}
"""


def _day_statement(sql: str) -> sa.TextClause:
    return sa.text(sql).bindparams(sa.bindparam("d", type_=sa.Date))


def update_state(conn: sa.Connection, spec: StateSpec, day: date) -> None:
    """After ``day`` of ``spec.daily`` was rebuilt (same transaction): fold it into the state."""
    for sql in (_upsert(spec), _forget(spec), _recompute(spec)):
        conn.execute(_day_statement(sql), {"d": day})


def backfill_state(conn: sa.Connection, spec: StateSpec) -> None:
    """Build the state from the whole daily table (once, when the state table is new)."""
    keys = ", ".join(spec.keys)
    conn.execute(
        sa.text(
            f"INSERT INTO {spec.state} ({keys}, first_day, last_active_day)"
            f" SELECT {keys}, MIN(activity_date), MAX(CASE WHEN count > 0 THEN activity_date END)"
            f" FROM {spec.daily} GROUP BY {keys}"
        )
    )
