"""In-place migrations of a warehouse an older version created (run by ``create_tables``
when the stored schema version differs; each step checks what exists, so a rerun is safe).

- schema 3: ``row_number`` in the per-file contribution tables (lineage for ``explain``;
  rows loaded before stay null) and the ledger status ``reverted`` in the status check.
"""

from __future__ import annotations

import sqlalchemy as sa

from usage_pipeline.warehouse.tables import STATUS_CHECK, ingested_files

# (table, column) added to tables an older version created: nullable, so no backfill.
ADDED_COLUMNS = (
    ("user_activity_contributions", "row_number"),
    ("account_usage_contributions", "row_number"),
    ("usage_event_meters", "row_number"),
)
STATUS_CONSTRAINT = "ck_ingested_files_status"


def migrate(conn: sa.Connection, existing: set[str]) -> None:
    """Bring the tables in ``existing`` (created by an older version) up to date."""
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
