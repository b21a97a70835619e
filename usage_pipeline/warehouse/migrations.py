"""What an existing warehouse does when ``SCHEMA_VERSION`` rises (new tables and indexes
are created by :func:`usage_pipeline.warehouse.engine.create_tables` itself). Each step
runs inside the upgrade's transaction and checks what exists, so a rerun is safe.

- schema 3: ``row_number`` in the per-file contribution tables (lineage for ``explain``;
  rows loaded before stay null), the ledger status ``reverted`` in the status check, and
  the events property keys lower-cased (the column names as the feed writes them today).
- schema 4: ``parent_account_id`` in ``accounts`` and ``account_observations`` (the account
  hierarchy; accounts loaded before have none, i.e. are top-level); the new
  ``account_hierarchy_snapshot`` is created like any new table.
- schema 5: the aggregate ``usage_sum`` (PostgreSQL), created like a new table by
  :func:`usage_pipeline.warehouse.functions.create_functions`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa

from usage_pipeline.warehouse.tables import STATUS_CHECK, ingested_files

BATCH = 5000
PROPERTY_KEYS_VERSION = 3  # events property keys became the lower-cased column names


def _data_steps(conn: sa.Connection, version: str | None, existing: set[str]) -> None:
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


# (table, column) added to tables an older version created: nullable, so no backfill.
ADDED_COLUMNS = (
    ("user_activity_contributions", "row_number"),
    ("account_usage_contributions", "row_number"),
    ("usage_event_meters", "row_number"),
    ("accounts", "parent_account_id"),
    ("account_observations", "parent_account_id"),
)
STATUS_CONSTRAINT = "ck_ingested_files_status"


def migrate(conn: sa.Connection, version: str | None, existing: set[str]) -> None:
    """Bring the tables in ``existing``, created by a version that recorded ``version``
    (None: none recorded), up to date."""
    inspector = sa.inspect(conn)
    preparer = conn.dialect.identifier_preparer
    for table, column in ADDED_COLUMNS:
        if table not in existing:
            continue
        if column in {c["name"] for c in inspector.get_columns(table)}:
            continue
        kind = ingested_files.metadata.tables[table].c[column].type.compile(conn.dialect)
        conn.exec_driver_sql(
            f"ALTER TABLE {preparer.quote(table)} ADD COLUMN {preparer.quote(column)} {kind}"
        )
    if ingested_files.name in existing and not _status_check_current(inspector):
        _replace_status_check(conn)
    _data_steps(conn, version, existing)


def _status_check_current(inspector: sa.Inspector) -> bool:
    return any(
        check.get("name") == STATUS_CONSTRAINT and "'reverted'" in str(check.get("sqltext"))
        for check in inspector.get_check_constraints(ingested_files.name)
    )


def _replace_status_check(conn: sa.Connection) -> None:
    """Widen the ledger's status check. PostgreSQL alters the constraint; SQLite cannot, so
    the table is rebuilt: renamed, re-created from the current definition, copied back."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f"ALTER TABLE ingested_files DROP CONSTRAINT IF EXISTS {STATUS_CONSTRAINT}"
        )
        conn.exec_driver_sql(
            f"ALTER TABLE ingested_files ADD CONSTRAINT {STATUS_CONSTRAINT} CHECK ({STATUS_CHECK})"
        )
        return
    old = "ingested_files_before_migration"
    conn.exec_driver_sql(f"ALTER TABLE ingested_files RENAME TO {old}")
    for index in ingested_files.indexes:  # index names are global: free them for the new table
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
    ingested_files.create(conn)
    columns = ", ".join(c.name for c in ingested_files.columns)
    conn.exec_driver_sql(f"INSERT INTO ingested_files ({columns}) SELECT {columns} FROM {old}")
    conn.exec_driver_sql(f"DROP TABLE {old}")
