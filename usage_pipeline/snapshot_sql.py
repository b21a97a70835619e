"""What every snapshot builder's SQL shares: the snapshot windows, the expressions whose
spelling differs between PostgreSQL and SQLite, the per-account module sums of the 60-day
window, and an owner's last active day read from the window and the activity state."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from usage_pipeline.activity_state import StateSpec, days_list, month_days
from usage_pipeline.warehouse.functions import count_sum

# Per account and module, the window's counts (1d, 7d, 30d, the previous 30d) and last
# active day: the window's rows of account_activity_daily grouped once.
ACCOUNT_MODULES = """modules AS (
    SELECT account_id, module,
        {sum}(CASE WHEN activity_date = :s THEN count ELSE 0 END) AS a1,
        {sum}(CASE WHEN activity_date >= :d7 THEN count ELSE 0 END) AS a7,
        {sum}(CASE WHEN activity_date >= :d30 THEN count ELSE 0 END) AS a30,
        {sum}(CASE WHEN activity_date < :d30 THEN count ELSE 0 END) AS prev30,
        MAX(CASE WHEN count > 0 THEN activity_date END) AS last_in_window
    FROM account_activity_daily WHERE activity_date BETWEEN :p30 AND :s
    GROUP BY account_id, module
)"""

# The top module as an aggregate, with no window function: each module row with a30 > 0 gives
# the key (2**63 - 1 - a30, zero-padded to 19 digits) || module, whose binary minimum is the
# module with the largest a30, ties in binary order; ``{first_key}`` takes that minimum per
# owner and the module is the key from its 20th character.
TOP_KEY = "CASE WHEN a30 > 0 THEN {padded} || module END"
TOP_MODULE = "SUBSTR({first_key}, 20)"

# An owner's (``p``: last_in_window, state_last) last active day <= S: the window's, else the
# state's unless it is after S (the owner came back later), else {before}.
LAST_DATE = """CASE
        WHEN p.last_in_window IS NOT NULL THEN p.last_in_window
        WHEN p.state_last IS NULL OR p.state_last <= :s THEN p.state_last
        ELSE {before}
        END"""


def dialect_sql(conn: sa.Connection) -> dict[str, str]:
    """The expressions whose spelling differs between PostgreSQL and SQLite (binary order
    for text, as SQLite compares; ``sum``: the aggregate summing counts)."""
    if conn.dialect.name == "postgresql":
        return {
            "sum": count_sum(conn),
            "day": "CAST(:s AS date)",
            "days_since": "(CAST(:s AS date) - {col})",
            "first_key": 'MIN(top_key COLLATE "C")',
            "padded": "LPAD(CAST({col} AS TEXT), 19, '0')",
            "user": 'user_id COLLATE "C"',
        }
    return {
        "sum": count_sum(conn),
        "day": ":s",
        "days_since": "CAST(julianday(:s) - julianday({col}) AS INTEGER)",
        "first_key": "MIN(top_key)",
        "padded": "printf('%019d', {col})",
        "user": "user_id",
    }


def windows(snapshot_date: date) -> dict[str, date]:
    """The first day of each window ending on ``snapshot_date`` (``s``: the date itself;
    ``d7``, ``d30``; ``p30``: the previous 30 days)."""
    return {
        "s": snapshot_date,
        "d7": snapshot_date - timedelta(days=6),
        "d30": snapshot_date - timedelta(days=29),
        "p30": snapshot_date - timedelta(days=59),
    }


def last_active_before(spec: StateSpec, cutoff: date, prefix: str) -> tuple[str, dict]:
    """SQL for an owner's (``p``) last active day before ``cutoff``: the days of the
    cutoff's month before it, else the owner's earlier month rows."""
    match = " AND ".join(f"x.{k} = p.{k}" for k in spec.keys)
    month_match = " AND ".join(f"m.{k} = p.{k}" for k in spec.keys)
    earlier_months = (
        f"(SELECT MAX(m.last_active_day) FROM {spec.months} AS m"
        f" WHERE {month_match} AND m.month < :{prefix}month)"
    )
    params: dict[str, date] = {f"{prefix}month": cutoff.replace(day=1)}
    days = [d for d in month_days(cutoff) if d < cutoff]
    if not days:
        return earlier_months, params
    listed, named = days_list(prefix, days)
    params.update(named)
    in_month = (
        f"(SELECT MAX(x.activity_date) FROM {spec.daily} AS x"
        f" WHERE x.activity_date IN ({listed}) AND x.count > 0 AND {match})"
    )
    return f"COALESCE({in_month}, {earlier_months})", params


def statement(
    template: str, conn: sa.Connection, snapshot_date: date, spec: StateSpec, cutoff: str
) -> tuple[sa.TextClause, dict[str, date]]:
    """A snapshot ``template`` for ``snapshot_date`` and its parameters. Its placeholders:
    ``{sum}`` (the aggregate summing counts), ``{day}``, ``{days_since}`` (of
    ``last_date``), ``{top_key}`` (of a ``modules`` row) and ``{top_module}`` (of the
    ``top_key`` of an owner's rows), ``{modules}`` (:data:`ACCOUNT_MODULES`) and
    ``{last_date}`` (:data:`LAST_DATE` for ``spec``'s owners, reading history before the
    window start named ``cutoff``)."""
    parts = dialect_sql(conn)
    bounds = windows(snapshot_date)
    before, extra = last_active_before(spec, bounds[cutoff], "b")
    sql = template.format(
        top_key=TOP_KEY.format(padded=parts["padded"].format(col="9223372036854775807 - a30")),
        top_module=TOP_MODULE.format(first_key=parts["first_key"]),
        day=parts["day"],
        days_since=parts["days_since"].format(col="last_date"),
        modules=ACCOUNT_MODULES.format(sum=parts["sum"]),
        last_date=LAST_DATE.format(before=before),
        sum=parts["sum"],
    )
    params = {k: v for k, v in {**bounds, **extra}.items() if f":{k}" in sql}
    text = sa.text(sql).bindparams(*(sa.bindparam(name, type_=sa.Date) for name in params))
    return text, params
