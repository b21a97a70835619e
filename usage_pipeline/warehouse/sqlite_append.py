"""SQLite appends that overlap with preparing the next frame: a large frame goes in as one
statement, written on a writer thread while the caller reads and validates the next chunk
of its file.

The statement carries the frame's rows as one JSON array, unpacked by ``json_each``; SQLite
runs it without Python's GIL, so both cores work. ``executemany`` would not do: it takes the
GIL back after every row, and beside a busy thread it waits for it once per row (a load of
300,000 rows went from 0.8 s to 2.8 s beside a thread parsing CSV).

Only frames whose every value survives JSON exactly go this way: signed integer columns and
text columns (``str`` or missing); a slice holding a NUL character, which JSON cannot carry
into SQLite, is written by ``executemany`` on the writer thread. Any other frame, and any
frame under :data:`BACKGROUND_MIN_ROWS` (a small file's one chunk), is written at once by
the caller's ``executemany``, after the writer has finished: the connection is never used
by two threads at a time.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import sqlalchemy as sa

BACKGROUND_MIN_ROWS = 10_000  # smaller frames are written at once
SLICE_ROWS = 50_000  # rows per statement: bounds the JSON text (about 100 bytes a row)
JSON_FUNCTIONS = sqlite3.sqlite_version_info >= (3, 38, 0)  # json_each built in
_DONE = None

Frame = Callable[[pd.DataFrame], int]
Slice = str | pd.DataFrame  # a slice's rows as JSON, or the frame JSON cannot carry


def json_ready(frame: pd.DataFrame, columns: list[str]) -> bool:
    """Whether every column of ``frame`` is NumPy signed integers or text (``str`` or
    missing)."""
    for column in columns:
        series = frame[column]
        if isinstance(series.dtype, np.dtype) and series.dtype.kind == "i":
            continue
        if series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) in (
            "string",
            "empty",
        ):
            continue
        return False
    return True


def json_rows(frame: pd.DataFrame, columns: list[str]) -> str | None:
    """The rows of a :func:`json_ready` frame as a JSON array of arrays (UTF-8 text as is),
    or None when a value could not make the trip exactly (a NUL character)."""
    try:
        text = frame[columns].to_json(orient="values", force_ascii=False)
    except (ValueError, TypeError, OverflowError, UnicodeError):
        return None
    return None if "\\u0000" in text else text


def insert_head(conn: sa.Connection, table: sa.Table, columns: list[str]) -> str:
    """``INSERT INTO table (columns)``, names quoted for the connection's dialect."""
    quote = conn.dialect.identifier_preparer.quote
    return f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, columns))})"


def json_insert(conn: sa.Connection, table: sa.Table, columns: list[str]) -> str:
    """``INSERT`` of ``columns`` from the JSON array bound to its one parameter."""
    values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns)))
    return f"{insert_head(conn, table, columns)} SELECT {values} FROM json_each(?)"


class _Writer:
    """One writer thread executing the slices it is handed, in order; its first error is
    kept and raised to the caller, the slices after it are dropped."""

    def __init__(self, write: Callable[[Slice], None]) -> None:
        self._write = write
        self._slices: queue.Queue[Slice | None] = queue.Queue(maxsize=1)
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def put(self, part: Slice) -> None:
        self.raise_error()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sqlite-append", daemon=True)
            self._thread.start()
        self._slices.put(part)

    def _run(self) -> None:
        while (part := self._slices.get()) is not _DONE:
            try:
                if self.error is None:
                    self._write(part)
            except BaseException as exc:  # handed to the caller
                self.error = exc
            finally:
                self._slices.task_done()
        self._slices.task_done()

    def wait(self) -> None:
        """Until every slice handed over is written (the connection is free again)."""
        if self._thread is not None:
            self._slices.join()

    def raise_error(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def stop(self) -> None:
        if self._thread is not None:
            self._slices.put(_DONE)
            self._thread.join()
            self._thread = None


@contextmanager
def overlapped_appender(
    conn: sa.Connection,
    table: sa.Table,
    columns: list[str],
    write_now: Callable[[pd.DataFrame], object],
) -> Iterator[Frame]:
    """A writer of frames into ``table`` inside the caller's transaction: large frames of
    integers and text are encoded here and inserted on a writer thread (one JSON statement
    per :data:`SLICE_ROWS`: the encoding needs the GIL, the insert does not, which balances
    the two threads), others by ``write_now`` once the thread is idle. On exit every frame
    is written (or the first error is raised); nothing else may use ``conn`` until then."""
    insert = json_insert(conn, table, columns)

    def write_slice(part: Slice) -> None:
        if isinstance(part, str):
            conn.exec_driver_sql(insert, (part,))
        else:
            write_now(part)

    writer = _Writer(write_slice)

    def write(frame: pd.DataFrame) -> int:
        if JSON_FUNCTIONS and len(frame) >= BACKGROUND_MIN_ROWS and json_ready(frame, columns):
            for start in range(0, len(frame), SLICE_ROWS):
                part = frame.iloc[start : start + SLICE_ROWS]
                writer.put(json_rows(part, columns) or part)
        elif len(frame):
            writer.wait()
            writer.raise_error()
            write_now(frame)
        return len(frame)

    try:
        yield write
    except BaseException:
        writer.stop()  # the caller's error wins; the writer's, if any, is dropped
        raise
    writer.stop()
    writer.raise_error()
