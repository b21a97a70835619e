"""Data steps an existing warehouse takes when ``SCHEMA_VERSION`` rises (new tables and
indexes are created by :func:`usage_pipeline.warehouse.engine.create_tables` itself).

Each step runs once, inside the upgrade's transaction, for a warehouse whose recorded
version is older than the step's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa

BATCH = 5000
PROPERTY_KEYS_VERSION = 3  # events property keys became the lower-cased column names


def run_data_steps(conn: sa.Connection, version: str | None, existing: set[str]) -> None:
    """The data steps a warehouse at ``version`` (None: unrecorded) with tables ``existing``
    still needs."""
    older = int(version) if version and version.isdigit() else 0
    if older < PROPERTY_KEYS_VERSION:
        for table, key in (
            ("event_candidates", ("file_id", "row_number")),
            ("events", ("identity", "event", "occurred_at")),
        ):
            if table in existing:
                lower_property_keys(conn, table, key)


def _lowered(properties: str) -> str | None:
    """The JSON object with lower-cased keys in key order (the text the events feed writes
    today), or None when it is that already."""
    found = json.loads(properties)
    if all(key == key.lower() for key in found):
        return None
    lowered = {key.lower(): value for key, value in found.items()}
    return json.dumps(dict(sorted(lowered.items())), ensure_ascii=False)


def lower_property_keys(conn: sa.Connection, table: str, key: Sequence[str]) -> int:
    """Rewrite ``table.properties`` with lower-cased keys, reading the table in key order in
    batches (bounded memory); values are compared and written in their native form, so
    SQLite's stored timestamp text is matched exactly. Returns the rows rewritten."""
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    columns = ", ".join(quote(c) for c in key)
    after = f"({columns}) > ({', '.join([mark] * len(key))})"
    select = (
        f"SELECT {columns}, {quote('properties')} FROM {quote(table)}"
        " {where}" + f" ORDER BY {columns} LIMIT {BATCH}"
    )
    update = f"UPDATE {quote(table)} SET {quote('properties')} = {mark} WHERE " + " AND ".join(
        f"{quote(c)} = {mark}" for c in key
    )
    last: tuple | None = None
    rewritten = 0
    while True:
        sql = select.format(where="" if last is None else f"WHERE {after}")
        batch = conn.exec_driver_sql(sql, last or ()).fetchall()
        if not batch:
            return rewritten
        changes = [
            (new, *row[: len(key)]) for row in batch if (new := _lowered(row[len(key)])) is not None
        ]
        if changes:
            conn.exec_driver_sql(update, changes)
            rewritten += len(changes)
        last = tuple(batch[-1][: len(key)])
