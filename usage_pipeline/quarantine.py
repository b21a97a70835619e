"""The reports of a file's rejected rows and what is copied to the quarantine (SPEC §1).

Beside a rejected file's copy (or alone, for a file loaded with some rejected rows):

- ``<name>.errors.csv``: the original columns of each rejected cell's row, then
  ``row_number``, ``column``, ``error`` (one line per rejected cell);
- ``<name>.rejects.csv``: the original header and only the rejected rows, byte for byte as
  they came (line endings, quoting, a byte order mark; decompressed for ``.csv.gz``), so a
  user fixes it and drops it back as it is. The rejected rows are the rows with an entry in
  the errors file; when the file was rejected as a whole for its rows (strict feed, or more
  invalid rows than ``max_reject_ratio``) no row was loaded, so every data row is in it.

Everything is streamed through temporary files: memory stays bounded however many rows fail.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import pandas as pd

from usage_pipeline.file_status import FileStatus
from usage_pipeline.outcome import IngestOutcome
from usage_pipeline.raw_records import RecordSplitError, is_blank, split_records
from usage_pipeline.reading import HEADER_ROW, FileFormatError, open_bytes
from usage_pipeline.sources import FileSource, SourceObject, UnsafeKeyError, check_key

ERRORS_SUFFIX = ".errors.csv"
REJECTS_SUFFIX = ".rejects.csv"


class _OpenFiles:
    """An error log's three files, open for writing."""

    def __init__(self, errors: TextIO, rows: TextIO, numbers: TextIO) -> None:
        self.handles = (errors, rows, numbers)
        self.errors, self.rows, self.numbers = csv.writer(errors), csv.writer(rows), numbers

    def close(self) -> None:
        for handle in self.handles:
            handle.close()


class ErrorLog:
    """Streams per-cell errors to temporary files: ``errors.csv`` for the user (original
    columns + row_number, column, error), ``rejected_rows.csv`` for the ``rejected_rows``
    table and the ascending numbers of the rejected rows (for the rejects file).

    Nothing touches the disk before the first error, or before a file's path is asked for
    (its headers are written then): most files have no error, and a night of small files
    would otherwise pay a folder and three files for each. ``folder`` makes the folder."""

    def __init__(self, folder: Callable[[], Path]) -> None:
        self._make_folder = folder
        self._folder: Path | None = None
        self._files: _OpenFiles | None = None
        self._closed = False
        self._header: list[str] | None = None
        self.count = 0
        self.first: str | None = None
        # set when the file is rejected as a whole for its rows: every data row is rejected
        self.every_row_rejected = False

    @property
    def folder(self) -> Path:
        """The log's folder, its files written (their headers at least)."""
        return self._opened()

    def _opened(self) -> Path:
        """Make the folder and open the files, once."""
        if self._folder is None:
            self._folder = self._make_folder()
            self._open(self._folder)
        return self._folder

    def _writing(self) -> _OpenFiles:
        """The open files (opened on the first error)."""
        self._opened()
        if self._files is None:
            raise RuntimeError("An error was added to a closed error log.")
        return self._files

    @property
    def errors_path(self) -> Path:
        return self.folder / "errors.csv"

    @property
    def rows_path(self) -> Path:
        return self.folder / "rejected_rows.csv"

    @property
    def numbers_path(self) -> Path:
        return self.folder / "rejected_row_numbers.txt"

    def _open(self, folder: Path) -> None:
        """Create the three files with their headers (closed again if the log is)."""
        self.start([])
        files = _OpenFiles(
            (folder / "errors.csv").open("w", newline="", encoding="utf-8"),
            (folder / "rejected_rows.csv").open("w", newline="", encoding="utf-8"),
            (folder / "rejected_row_numbers.txt").open("w", encoding="ascii"),
        )
        files.errors.writerow([*(self._header or []), "row_number", "column", "error"])
        files.rows.writerow(["row_number", "column_name", "value", "error"])
        if self._closed:
            files.close()
        else:
            self._files = files

    def start(self, original_header: list[str]) -> None:
        """Note the file's own header (the first one given), for errors.csv's columns."""
        if self._header is None:
            self._header = original_header

    def add(self, raw: pd.DataFrame, errors: pd.DataFrame) -> None:
        """Record one chunk's errors (chunks come in file order)."""
        if errors.empty:
            return
        files = self._writing()
        originals = raw.loc[errors["row_number"].to_numpy()].astype(object)
        originals = originals.where(originals.notna(), "")
        records = errors.itertuples(index=False, name=None)
        for values, (row, column, value, error) in zip(
            originals.itertuples(index=False, name=None), records, strict=True
        ):
            files.errors.writerow([*values, row, column, error])
            files.rows.writerow([row, column, value, error])
        numbers = sorted({int(n) for n in errors["row_number"]})
        files.numbers.write("".join(f"{n}\n" for n in numbers))
        if self.first is None:
            first = errors.iloc[0]
            self.first = (
                f"row {first['row_number']}, column {first['column_name']}: {first['error']}"
            )
        self.count += len(errors)

    def add_file_error(self, reason: str) -> None:
        self.start([])
        self._writing().errors.writerow([*([""] * len(self._header or [])), "", "", reason])

    def close(self) -> None:
        self.start([])
        self._closed = True
        if self._files is not None:
            self._files.close()
            self._files = None

    def rejected_row_numbers(self) -> Iterator[int] | None:
        """The rejected rows' numbers in file order; None when every row is rejected."""
        return None if self.every_row_rejected else self._numbers()

    def _numbers(self) -> Iterator[int]:
        with self.numbers_path.open(encoding="ascii") as handle:
            for line in handle:
                yield int(line)


def write_rejects(
    source: Path,
    name: str,
    max_bytes: int,
    numbers: Iterator[int] | None,
    rows_total: int,
    destination: Path,
) -> bool:
    """Write ``source``'s header and the data rows numbered ``numbers`` (every row when None)
    to ``destination``, byte for byte. Returns False, writing nothing, when the file's records
    do not number as the reader numbered its ``rows_total`` rows (line endings the spec does
    not accept can make them differ): a wrong rejects file would be worse than none."""
    wanted = next(numbers, None) if numbers is not None else None
    number, header_seen, first = HEADER_ROW, False, True
    try:
        with open_bytes(source, name, max_bytes) as handle, destination.open("wb") as out:
            for record in split_records(handle):
                blank, first = is_blank(record, first), False
                if not header_seen:
                    out.write(record)  # the header, and a BOM or blank lines before it
                    header_seen = not blank
                    continue
                if blank:
                    continue
                number += 1
                if numbers is None:
                    out.write(record)
                elif number == wanted:
                    out.write(record)
                    wanted = next(numbers, None)
    except (RecordSplitError, FileFormatError):
        number = -1
    if number - HEADER_ROW != rows_total or wanted is not None:
        destination.unlink(missing_ok=True)
        return False
    return True


def quarantine(
    source: FileSource,
    obj: SourceObject,
    path: Path,
    log: ErrorLog,
    *,
    rejected: bool,
    rows_total: int,
    max_bytes: int,
    with_rejects: bool,
) -> str | None:
    """Copy a rejected file (or only the reports of a partly loaded one) to the quarantine;
    ``with_rejects`` adds the rejects file (rows were read and judged one by one). Returns
    the location of the first file written."""
    try:
        check_key(obj.key)
    except UnsafeKeyError:
        return None
    files = {"": path} if rejected else {}
    files[ERRORS_SUFFIX] = log.errors_path
    rejects = log.folder / "rejects.csv"
    if (
        with_rejects
        and (log.count or log.every_row_rejected)
        and write_rejects(
            path, obj.name, max_bytes, log.rejected_row_numbers(), rows_total, rejects
        )
    ):
        files[REJECTS_SUFFIX] = rejects
    return source.write_quarantine(obj.key, files)


def file_error_log(folder: Callable[[], Path], sentence: str) -> ErrorLog:
    """The error log of a file rejected before its rows were read: one file-level line."""
    log = ErrorLog(folder)
    log.add_file_error(sentence)
    log.close()
    return log


def quarantine_outcome(
    source: FileSource,
    obj: SourceObject,
    path: Path,
    log: ErrorLog,
    outcome: IngestOutcome,
    max_bytes: int,
) -> str | None:
    """Quarantine what a rejected file, or a loaded one with rejected rows, leaves behind;
    returns the location of the first file written (None when nothing is quarantined)."""
    rejected = outcome.status == FileStatus.REJECTED
    if not (rejected or outcome.rows_rejected):
        return None
    return quarantine(
        source,
        obj,
        path,
        log,
        rejected=rejected,
        rows_total=outcome.rows_total,
        max_bytes=max_bytes,
        with_rejects=outcome.status == FileStatus.LOADED or log.every_row_rejected,
    )
