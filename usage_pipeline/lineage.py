"""Row lineage (``usage-pipeline explain``): which file versions and rows produced one row of
a daily table or of ``product_usage``, and what each contributed. Read-only.

Sources, per table (only loaded versions keep rows there: a superseded or reverted version's
rows are gone, so they never show):

- ``user_activity_daily``: the ``user_activity_contributions`` rows of its key (one per input
  row), each adding its ``count``;
- ``account_activity_daily``: source ``user_activity``, the contributions of every user of its
  account, module and activity; source ``account_usage``, the ``account_usage_contributions``
  rows (the winning row of each account in each file);
- ``usage_meter_daily``: the stored events' meter values (``usage_event_meters``), each adding
  its value to ``total`` and 1 to ``events``;
- ``events_daily``: the kept events of that day and name, each with the first row of the file
  it is attributed to (``event_candidates``);
- ``product_usage``: every observation of its (product, account, dimension, period); the one
  that made the row is marked, the ones a later value overrode are listed after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.warehouse import tables as t

EXPLAINED = {
    table.name: table
    for table in (
        t.user_activity_daily,
        t.account_activity_daily,
        t.usage_meter_daily,
        t.events_daily,
        t.product_usage,
    )
}


class LineageError(ValueError):
    """The row asked for cannot be explained; the message is one sentence."""


@dataclass(frozen=True)
class Source:
    """One input row behind the explained row and what it contributed."""

    file_id: int
    key: str
    row_number: int | None  # None: loaded before lineage was kept
    amounts: tuple[tuple[str, Any], ...]
    note: str = ""


def _value(column: sa.Column, text: str) -> Any:
    """A command-line value as the column's type."""
    try:
        if isinstance(column.type, sa.Date):
            return date.fromisoformat(text)
        if isinstance(column.type, sa.DateTime):
            return datetime.fromisoformat(text)
        if isinstance(column.type, sa.Integer):
            return int(text)
        if isinstance(column.type, sa.Float):
            return float(text)
        if isinstance(column.type, sa.Boolean):
            return {"true": True, "false": False}[text.strip().lower()]
    except (ValueError, KeyError):
        raise LineageError(
            f"Value {text!r} of column {column.name} is not a valid {column.type}."
        ) from None
    return text


def parse_filters(table_name: str, pairs: list[str]) -> dict[str, Any]:
    """``COLUMN=VALUE`` arguments -> {column: typed value}."""
    table = EXPLAINED.get(table_name)
    if table is None:
        raise LineageError(
            f"Table {table_name!r} cannot be explained (tables: {', '.join(EXPLAINED)})."
        )
    if not pairs:
        raise LineageError(f"Name the row: COLUMN=VALUE for {', '.join(key_columns(table))}.")
    filters: dict[str, Any] = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        name = name.strip().lower()
        if not equals:
            raise LineageError(f"Argument {pair!r} is not COLUMN=VALUE.")
        if name not in table.c:
            columns = ", ".join(c.name for c in table.columns)
            raise LineageError(f"Table {table_name} has no column {name!r} (columns: {columns}).")
        filters[name] = _value(table.c[name], text)
    return filters


def key_columns(table: sa.Table) -> list[str]:
    return [c.name for c in table.primary_key.columns]


def find_row(conn: sa.Connection, table_name: str, filters: dict[str, Any]) -> sa.Row:
    """The one row of ``table_name`` matching ``filters``."""
    table = EXPLAINED[table_name]
    where = [table.c[name] == value for name, value in filters.items()]
    found = conn.execute(sa.select(table).where(*where).limit(2)).all()
    if len(found) == 1:
        return found[0]
    shown = " ".join(f"{name}={plain(value)}" for name, value in filters.items())
    if not found:
        raise LineageError(f"No row of {table_name} has {shown}.")
    count = conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar()
    raise LineageError(
        f"{count} rows of {table_name} have {shown}; name one with COLUMN=VALUE for"
        f" {', '.join(key_columns(table))}."
    )


def plain(value: Any) -> str:
    """A value as the explain output prints it (whole floats without a fraction)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def _sources(conn: sa.Connection, query: sa.Select, amounts: Any, note: Any) -> list[Source]:
    """Run ``query`` (file_id, row_number, ...) joined to the ledger for each file's key."""
    f = t.ingested_files.c
    keys: dict[int, str] = {}
    rows = conn.execute(query).all()
    ids = sorted({int(r.file_id) for r in rows})
    if ids:
        found = conn.execute(sa.select(f.file_id, f.source_key).where(f.file_id.in_(ids)))
        keys = {int(file_id): key for file_id, key in found.all()}
    return [
        Source(int(r.file_id), keys.get(int(r.file_id), "?"), r.row_number, amounts(r), note(r))
        for r in rows
    ]


def sources(
    conn: sa.Connection, table_name: str, row: sa.Row, config: PipelineConfig
) -> list[Source]:
    """Every input row behind ``row`` of ``table_name``, by file version and row number."""
    if table_name in ("user_activity_daily", "account_activity_daily"):
        return _activity_sources(conn, table_name, row)
    if table_name == "usage_meter_daily":
        m = t.usage_event_meters.c
        query = (
            sa.select(m.file_id, m.row_number, m.value, m.event_ref)
            .where(
                m.day == row.day,
                m.customer_ref == row.customer_ref,
                m.subscription_ref == row.subscription_ref,
                m.event == row.event,
                m.meter == row.meter,
            )
            .order_by(m.file_id, m.row_number, m.event_ref)
        )
        return _sources(
            conn,
            query,
            lambda r: (("total", r.value), ("events", 1)),
            lambda r: f"event_ref {r.event_ref}",
        )
    if table_name == "events_daily":
        e, c = t.events.c, t.event_candidates.c
        same = (
            (c.identity == e.identity)
            & (c.event == e.event)
            & (c.occurred_at == e.occurred_at)
            & (c.file_id == e.file_id)
        )
        first = sa.func.min(c.row_number).label("row_number")
        query = (
            sa.select(e.file_id, first, e.identity, e.occurred_at)
            .select_from(t.events.join(t.event_candidates, same))
            .where(e.event == row.event, c.day == row.day)
            .group_by(e.file_id, e.identity, e.occurred_at)
            .order_by(e.file_id, first)
        )
        return _sources(
            conn,
            query,
            lambda r: (("events", 1),),
            lambda r: f"identity {r.identity} at {_instant(r.occurred_at)}",
        )
    return _product_sources(conn, row, config)


def _instant(value: Any) -> str:
    """``occurred_at`` as ISO 8601 UTC (SQLite gives it back as naive UTC text)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def _activity_sources(conn: sa.Connection, table_name: str, row: sa.Row) -> list[Source]:
    by_user = table_name == "user_activity_daily"
    if not by_user and row.source == "account_usage":
        table = t.account_usage_contributions
    else:
        table = t.user_activity_contributions
    c = table.c
    where = [
        c.activity_date == row.activity_date,
        c.account_id == row.account_id,
        c.module == row.module,
        c.activity == row.activity,
    ]
    if by_user:
        where.append(c.user_id == row.user_id)
    extra = [c.user_id] if table is t.user_activity_contributions else []
    query = (
        sa.select(c.file_id, c.row_number, c["count"], *extra)
        .where(*where)
        .order_by(c.file_id, c.row_number)
    )
    note = (lambda r: f"user {r.user_id}") if extra and not by_user else (lambda r: "")
    return _sources(conn, query, lambda r: (("count", r.count),), note)


def _product_sources(conn: sa.Connection, row: sa.Row, config: PipelineConfig) -> list[Source]:
    """Observations of the row's key, the one that made it first (history products: the
    ``seq``-th observation; else the latest), then the ones a later value overrode."""
    o = t.product_usage_observations.c
    query = (
        sa.select(o.file_id, o.row_number, o.value_numeric, o.value_text, o.value_boolean)
        .where(
            o.product == row.product,
            o.account_id == row.account_id,
            o.dimension == row.dimension,
            o.period_start == row.period_start,
        )
        .order_by(o.file_id, o.row_number)
    )

    def amounts(r: sa.Row) -> tuple[tuple[str, Any], ...]:
        return tuple(
            (name, getattr(r, name))
            for name in ("value_numeric", "value_text", "value_boolean")
            if getattr(r, name) is not None
        )

    found = _sources(conn, query, amounts, lambda r: "")
    history = any(
        p.name == row.product and p.allow_multiple_rows_per_customer for p in config.products
    )
    if not found:
        return []
    index = min(row.seq, len(found) - 1) if history else len(found) - 1
    made = found[index]
    marked = [Source(made.file_id, made.key, made.row_number, made.amounts, "this row's value")]
    if history:
        return marked
    overridden = [
        Source(s.file_id, s.key, s.row_number, s.amounts, "overridden by a later value")
        for s in reversed(found[:index])
    ]
    return marked + overridden
