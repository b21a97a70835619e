"""Bulk loading a DataFrame: PostgreSQL ``COPY`` (psycopg 3), SQLite ``executemany``."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa


def bulk_insert(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> int:
    """Append ``frame`` (columns named like ``table``'s) inside the caller's transaction."""
    if frame.empty:
        return 0
    columns = list(frame.columns)
    if conn.dialect.name == "postgresql":
        from psycopg import sql

        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
            sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        payload = frame.to_csv(index=False, header=False, lineterminator="\n")
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(statement) as copy:
            copy.write(payload)
        return len(frame)
    quoted = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in columns)
    marks = ", ".join("?" for _ in columns)
    name = conn.dialect.identifier_preparer.quote(table.name)
    rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
    conn.exec_driver_sql(f"INSERT INTO {name} ({quoted}) VALUES ({marks})", list(rows))
    return len(frame)
