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
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from usage_pipeline.file_status import FileStatus
from usage_pipeline.outcome import IngestOutcome
from usage_pipeline.raw_records import RecordSplitError, is_blank, split_records
from usage_pipeline.reading import HEADER_ROW, FileFormatError, open_bytes
from usage_pipeline.sources import FileSource, SourceObject, UnsafeKeyError, check_key

ERRORS_SUFFIX = ".errors.csv"
REJECTS_SUFFIX = ".rejects.csv"


class ErrorLog:
    """Streams per-cell errors to temporary files: ``errors.csv`` for the user (original
    columns + row_number, column, error), ``rejected_rows.csv`` for the ``rejected_rows``
    table and the ascending numbers of the rejected rows (for the rejects file)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.errors_path = folder / "errors.csv"
        self.rows_path = folder / "rejected_rows.csv"
        self.numbers_path = folder / "rejected_row_numbers.txt"
        self._header: list[str] | None = None
        self._errors_handle = self.errors_path.open("w", newline="", encoding="utf-8")
        self._rows_handle = self.rows_path.open("w", newline="", encoding="utf-8")
        self._numbers_handle = self.numbers_path.open("w", encoding="ascii")
        self._errors = csv.writer(self._errors_handle)
        self._rows = csv.writer(self._rows_handle)
        self._rows.writerow(["row_number", "column_name", "value", "error"])
        self.count = 0
        self.first: str | None = None
        # set when the file is rejected as a whole for its rows: every data row is rejected
        self.every_row_rejected = False

    def start(self, original_header: list[str]) -> None:
        """Write the errors.csv header once the file's own header is known."""
        if self._header is None:
            self._header = original_header
            self._errors.writerow([*original_header, "row_number", "column", "error"])

    def add(self, raw: pd.DataFrame, errors: pd.DataFrame) -> None:
        """Record one chunk's errors (chunks come in file order)."""
        if errors.empty:
            return
        originals = raw.loc[errors["row_number"].to_numpy()].astype(object)
        originals = originals.where(originals.notna(), "")
        records = errors.itertuples(index=False, name=None)
        for values, (row, column, value, error) in zip(
            originals.itertuples(index=False, name=None), records, strict=True
        ):
            self._errors.writerow([*values, row, column, error])
            self._rows.writerow([row, column, value, error])
        numbers = sorted({int(n) for n in errors["row_number"]})
        self._numbers_handle.write("".join(f"{n}\n" for n in numbers))
        if self.first is None:
            first = errors.iloc[0]
            self.first = (
                f"row {first['row_number']}, column {first['column_name']}: {first['error']}"
            )
        self.count += len(errors)

    def add_file_error(self, reason: str) -> None:
        self.start([])
        self._errors.writerow([*([""] * len(self._header or [])), "", "", reason])

    def close(self) -> None:
        self.start([])
        for handle in (self._errors_handle, self._rows_handle, self._numbers_handle):
            handle.close()

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


def file_error_log(folder: Path, sentence: str) -> ErrorLog:
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
