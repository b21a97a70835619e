"""How ``product_usage`` observations are stored: ``product_usage`` recomputed for the touched
(product, account, dimension, period_start) keys, dimensions recorded on first use."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

import sqlalchemy as sa

from usage_pipeline.config import ImportConfig
from usage_pipeline.feeds.base import FeedChange, FileContext
from usage_pipeline.feeds.product_usage.contract import (
    KEY,
    UNMATCHED_LISTED,
    VALUE_COLUMNS,
    lower,
)
from usage_pipeline.feeds.product_usage.state import PreparedImport
from usage_pipeline.warehouse.engine import conflict_insert
from usage_pipeline.warehouse.tables import (
    product_dimensions,
    product_usage,
    product_usage_observations,
)


def apply_file(
    conn: sa.Connection, context: FileContext[PreparedImport], file_id: int, removed: list[int]
) -> FeedChange:
    """Recompute ``product_usage`` for the keys this file and the versions it supersedes
    touched; retire those versions' observations; record new dimensions."""
    o = product_usage_observations
    ids = [file_id, *removed]
    products = sorted(
        conn.execute(sa.select(o.c.product).where(o.c.file_id.in_(ids)).distinct()).scalars()
    )
    if conn.dialect.name == "postgresql":  # files of one product recompute one at a time
        for product in products:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(product))))
    touched = o.alias("touched")
    touched_keys = (
        sa.select(*(touched.c[k] for k in KEY)).where(touched.c.file_id.in_(ids)).distinct()
    )
    conn.execute(
        product_usage.delete().where(
            sa.tuple_(*(product_usage.c[k] for k in KEY)).in_(touched_keys)
        )
    )
    history = [p.name for p in context.config.products if p.allow_multiple_rows_per_customer]
    for keep_history in (False, True):
        conn.execute(_recompute(touched_keys, removed, history, keep_history))
    if removed:
        conn.execute(o.delete().where(o.c.file_id.in_(removed)))
    _create_dimensions(conn, context.state.imp, file_id)
    return FeedChange(tables={"product_usage"}, notes=_notes(conn, context.state, file_id))


def _lock_key(product: str) -> int:
    digest = hashlib.blake2b(f"product_usage:{product}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def check_dimension_types(conn: sa.Connection, imp: ImportConfig) -> None:
    """A dimension keeps the type it was created with (SPEC §2.5)."""
    d = product_dimensions.c
    products = sorted({m.product for m in imp.mappings})
    existing = {
        (row.product, row.dimension): (row.type, row.created_file_id)
        for row in conn.execute(
            sa.select(d.product, d.dimension, d.type, d.created_file_id).where(
                d.product.in_(products)
            )
        )
    }
    for mapping in imp.mappings:
        found = existing.get((mapping.product, mapping.dimension))
        if found is not None and found[0] != mapping.type:
            raise ValueError(
                f"dimension {mapping.dimension!r} of product {mapping.product!r} was created as"
                f" {found[0]} (by file {found[1]}), but import {imp.name!r} now maps column"
                f" {lower(mapping.column)!r} to it as {mapping.type}; a dimension keeps its"
                f" type, so map the column to a new dimension name or back to {found[0]}"
            )


def _recompute(
    touched_keys: sa.Select, removed: list[int], history: list[str], keep_history: bool
) -> sa.Insert:
    """INSERT the product_usage rows of the touched keys from the remaining observations:
    the latest observation (seq 0), or all of them in file and row order (seq 0, 1, …)."""
    o = product_usage_observations
    key = [o.c[k] for k in KEY]
    order = [o.c.file_id, o.c.row_number]
    if not keep_history:
        order = [c.desc() for c in order]
    rank = sa.func.row_number().over(partition_by=key, order_by=order).label("rank")
    product_filter = o.c.product.in_(history) if keep_history else o.c.product.not_in(history)
    ranked = (
        sa.select(*key, o.c.period, *(o.c[c] for c in VALUE_COLUMNS.values()), o.c.file_id, rank)
        .where(o.c.file_id.not_in(removed), sa.tuple_(*key).in_(touched_keys), product_filter)
        .subquery("ranked")
    )
    seq = (ranked.c.rank - 1) if keep_history else sa.literal(0)
    select = sa.select(
        *(ranked.c[k] for k in KEY),
        seq.label("seq"),
        ranked.c.period,
        *(ranked.c[c] for c in VALUE_COLUMNS.values()),
        ranked.c.file_id,
    )
    if not keep_history:
        select = select.where(ranked.c.rank == 1)
    columns = [*KEY, "seq", "period", *VALUE_COLUMNS.values(), "file_id"]
    return product_usage.insert().from_select(columns, select)


def _create_dimensions(conn: sa.Connection, imp: ImportConfig, file_id: int) -> None:
    """Record each dimension this file stored a value for, with its type, on first use."""
    o = product_usage_observations.c
    used = conn.execute(
        sa.select(o.product, o.dimension).where(o.file_id == file_id).distinct()
    ).all()
    if not used:
        return
    types = {(m.product, m.dimension): m.type for m in imp.mappings}
    rows = [
        {"product": p, "dimension": d, "type": types[(p, d)], "created_file_id": file_id}
        for p, d in used
    ]
    conn.execute(conflict_insert(conn, product_dimensions).on_conflict_do_nothing(), rows)


def _notes(conn: sa.Connection, prepared: PreparedImport, file_id: int) -> dict[str, Any]:
    o = product_usage_observations.c
    periods: dict[str, list[str]] = {}
    found = conn.execute(
        sa.select(o.product, o.period_start)
        .where(o.file_id == file_id)
        .distinct()
        .order_by(o.product, o.period_start)
    )
    for product, start in found:
        listed = periods.setdefault(product, [])
        if len(listed) < UNMATCHED_LISTED:
            listed.append(start.isoformat() if isinstance(start, date) else str(start))
    return {
        "import": prepared.imp.name,
        "unmatched_rows": prepared.unmatched.rows,
        "unmatched_identifiers": list(prepared.unmatched.identifiers),
        "period_starts": periods,
    }
