"""Per-user and per-account activity state: the first day with any row and the last day
with count > 0, kept up to date by the daily rollups, so that snapshots read their 60-day
window plus this state and never the whole history.

Two levels, both internal tables:
- ``*_activity_months``: per owner and calendar month, the first day and last active day
  in that month (one row per owner per month it was seen);
- ``*_activity_state``: per owner, over all time (what snapshots read).

A rebuilt day D (in the rollup's transaction) folds D's owners into their month row and
their state; an owner whose first or last day *was* D and who lost its rows on D (a
correction) has its month row recomputed from the month's days (a primary-key seek per day,
at most 31) and its state from its month rows. The work is bounded by the day and its month,
never by history, and the big daily tables need no second index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa


@dataclass(frozen=True)
class StateSpec:
    """A state table, its month table, the daily table they summarise and the owner key."""

    state: str
    months: str
    daily: str
    keys: tuple[str, ...]


USER_STATE = StateSpec(
    "user_activity_state", "user_activity_months", "user_activity_daily", ("account_id", "user_id")
)
ACCOUNT_STATE = StateSpec(
    "account_activity_state", "account_activity_months", "account_activity_daily", ("account_id",)
)


def month_days(day: date) -> list[date]:
    """Every day of ``day``'s calendar month."""
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return [first + timedelta(days=n) for n in range((following - first).days)]


def days_list(prefix: str, days: list[date]) -> tuple[str, dict[str, date]]:
    """``:p0, :p1, …`` and their values: an explicit list, so that a lookup of one owner
    over some days is a primary-key seek per day."""
    names = {f"{prefix}{n}": day for n, day in enumerate(days)}
    return ", ".join(f":{name}" for name in names), names


def _match(keys: tuple[str, ...], alias: str, table: str) -> str:
    return " AND ".join(f"{alias}.{k} = {table}.{k}" for k in keys)


def _merge(table: str) -> str:
    """ON CONFLICT clause keeping the earliest first day and the latest active day."""
    return f"""DO UPDATE SET
    first_day = CASE WHEN excluded.first_day < {table}.first_day
        THEN excluded.first_day ELSE {table}.first_day END,
    last_active_day = CASE WHEN excluded.last_active_day IS NOT NULL
        AND ({table}.last_active_day IS NULL OR excluded.last_active_day > {table}.last_active_day)
        THEN excluded.last_active_day ELSE {table}.last_active_day END"""


def _lost(spec: StateSpec, table: str) -> str:
    """Rows of ``table`` whose first or last active day is D but whose owner no longer has
    (active) rows on D."""
    on_day = f"SELECT 1 FROM {spec.daily} y WHERE y.activity_date = :d AND " + _match(
        spec.keys, "y", table
    )
    return f"""(first_day = :d AND NOT EXISTS ({on_day}))
    OR (last_active_day = :d AND NOT EXISTS ({on_day} AND y.count > 0))"""


def _statements(spec: StateSpec, day: date, had_rows: bool) -> list[tuple[str, dict[str, date]]]:
    keys = ", ".join(spec.keys)
    months, state, daily = spec.months, spec.state, spec.daily
    in_month, month_params = days_list("m", month_days(day))
    params = {"d": day, "month": day.replace(day=1), **month_params}
    owned_month = _match(spec.keys, "x", months)
    owned_state = _match(spec.keys, "x", state)
    fold = [
        (  # D's owners into their month row
            f"""INSERT INTO {months} ({keys}, month, first_day, last_active_day)
SELECT {keys}, :month, MIN(activity_date), MAX(CASE WHEN count > 0 THEN activity_date END)
FROM {daily} WHERE activity_date = :d GROUP BY {keys}
ON CONFLICT ({keys}, month) {_merge(months)}""",
            params,
        ),
    ]
    fold_state = [
        (  # the month's facts into the state (earliest first, latest active)
            f"""INSERT INTO {state} ({keys}, first_day, last_active_day)
SELECT {keys}, first_day, last_active_day FROM {months}
WHERE month = :month AND (first_day = :d OR last_active_day = :d)
ON CONFLICT ({keys}) {_merge(state)}""",
            params,
        ),
    ]
    if not had_rows:  # a day loaded for the first time: nobody lost it
        return fold + fold_state
    recompute_months = [
        (  # month rows that lost D: recomputed from the month's days (a seek per day)
            f"""UPDATE {months} SET
    first_day = (SELECT MIN(x.activity_date) FROM {daily} x
        WHERE x.activity_date IN ({in_month}) AND {owned_month}),
    last_active_day = (SELECT MAX(x.activity_date) FROM {daily} x
        WHERE x.activity_date IN ({in_month}) AND x.count > 0 AND {owned_month})
WHERE month = :month AND ({_lost(spec, months)})""",
            params,
        ),
        (f"DELETE FROM {months} WHERE month = :month AND first_day IS NULL", params),
    ]
    recompute_state = [
        (  # states that lost D: recomputed from the owner's month rows
            f"""UPDATE {state} SET
    first_day = (SELECT MIN(x.first_day) FROM {months} x WHERE {owned_state}),
    last_active_day = (SELECT MAX(x.last_active_day) FROM {months} x WHERE {owned_state})
WHERE {_lost(spec, state)}""",
            params,
        ),
        (f"DELETE FROM {state} WHERE first_day IS NULL", params),
    ]
    return fold + recompute_months + fold_state + recompute_state


def update_state(conn: sa.Connection, spec: StateSpec, day: date, had_rows: bool = True) -> None:
    """After ``day`` of ``spec.daily`` was rebuilt (same transaction): fold it into the
    month rows and the state. ``had_rows``: whether the day had rows before the rebuild
    (when not, no owner can have lost it and the recomputes are skipped)."""
    for sql, params in _statements(spec, day, had_rows):
        used = {name: value for name, value in params.items() if f":{name}" in sql}
        statement = sa.text(sql).bindparams(*(sa.bindparam(n, type_=sa.Date) for n in used))
        conn.execute(statement, used)


def backfill_state(conn: sa.Connection, spec: StateSpec) -> None:
    """Build the month rows and the state from the whole daily table (once, when the
    tables are new to a warehouse that already has rollups)."""
    keys = ", ".join(spec.keys)
    month = (
        "CAST(date_trunc('month', activity_date) AS DATE)"
        if conn.dialect.name == "postgresql"
        else "strftime('%Y-%m-01', activity_date)"
    )
    conn.execute(
        sa.text(
            f"INSERT INTO {spec.months} ({keys}, month, first_day, last_active_day)"
            f" SELECT {keys}, {month}, MIN(activity_date),"
            f" MAX(CASE WHEN count > 0 THEN activity_date END)"
            f" FROM {spec.daily} GROUP BY {keys}, {month}"
        )
    )
    conn.execute(
        sa.text(
            f"INSERT INTO {spec.state} ({keys}, first_day, last_active_day)"
            f" SELECT {keys}, MIN(first_day), MAX(last_active_day)"
            f" FROM {spec.months} GROUP BY {keys}"
        )
    )
