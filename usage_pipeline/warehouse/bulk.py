"""Bulk loading DataFrames: PostgreSQL ``COPY`` (psycopg 3), SQLite ``executemany``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pandas as pd
import sqlalchemy as sa

from usage_pipeline.warehouse.sqlite_append import insert_head, overlapped_appender

Writer = Callable[[pd.DataFrame], int]


@contextmanager
def bulk_writer(conn: sa.Connection, table: sa.Table, columns: list[str]) -> Iterator[Writer]:
    """A writer appending DataFrames (with exactly ``columns``) inside the caller's transaction.

    On PostgreSQL one ``COPY … FROM STDIN (FORMAT csv)`` stays open for every frame written,
    so the server ingests one chunk while the client prepares the next. On SQLite large
    frames are written on a writer thread while the caller prepares the next, small ones
    by ``executemany`` (:mod:`usage_pipeline.warehouse.sqlite_append`). Nothing else may be
    executed on ``conn`` until the context exits.
    """
    if conn.dialect.name == "postgresql":
        from psycopg import sql

        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
            sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(statement) as copy:

            def write_copy(frame: pd.DataFrame) -> int:
                if len(frame):
                    copy.write(csv_buffer(frame[columns]))
                return len(frame)

            yield write_copy
        return
    insert = f"{insert_head(conn, table, columns)} VALUES ({', '.join('?' for _ in columns)})"

    def write_rows(frame: pd.DataFrame) -> int:
        if len(frame):
            conn.exec_driver_sql(insert, _python_rows(frame, columns))
        return len(frame)

    with overlapped_appender(conn, table, columns, write_rows) as write:
        yield write


def csv_buffer(frame: pd.DataFrame) -> memoryview | bytes:
    """The frame as CSV for ``COPY … (FORMAT csv)``: strings quoted, missing values as
    unquoted empty fields (NULL). Arrow's C++ writer is several times faster than
    ``DataFrame.to_csv``; its buffer is handed over without a copy. The table is built
    column by column (``Table.from_pandas`` writes the same text but costs about a
    millisecond more per frame, most of a small file's encoding). A column Arrow cannot
    type (mixed Python objects) falls back."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        table = pa.Table.from_arrays(
            [pa.array(frame[column], from_pandas=True) for column in frame.columns],
            names=[str(column) for column in frame.columns],
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return frame.to_csv(index=False, header=False, lineterminator="\n").encode()
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
    return memoryview(sink.getvalue())


def _python_rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """Rows as tuples of Python values, missing values as None (column by column: much
    faster than a row-wise conversion)."""
    arrays = []
    for column in columns:
        values = frame[column].to_numpy(dtype=object, copy=True)
        missing = pd.isna(values)
        if missing.any():
            values[missing] = None
        arrays.append(values.tolist())
    return list(zip(*arrays, strict=True))


def bulk_insert(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> int:
    """Append one DataFrame (columns named like ``table``'s) in the caller's transaction."""
    if frame.empty:
        return 0
    with bulk_writer(conn, table, list(frame.columns)) as write:
        return write(frame)
