"""Streaming CSV reading with a decompressed-size limit and one-sentence errors."""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import pandas as pd

from usage_pipeline.wording import name_list, shown

HEADER_ROW = 1  # row_number of the header; the first data row is 2, as in a spreadsheet
SUPPORTED_SUFFIXES = (".csv", ".csv.gz")
# pandas' parser cuts a cell at a NUL byte, which would store "nu" for "nu\0l": in a file
# with a NUL byte the reader turns each one into SUB (the ASCII "substitute" control, one
# byte, so offsets stay true) and a cell holding SUB is a row error ("has a NUL byte").
NUL_STANDIN = "\x1a"
HEADER_TEXT_LIMIT = 4 << 20  # characters read to find the header row's exact names


class FileFormatError(ValueError):
    """The file as a whole cannot be read; the message is one sentence."""


def is_supported(name: str) -> bool:
    return name.lower().endswith(SUPPORTED_SUFFIXES)


class _LimitedReader(io.RawIOBase):
    """A raw stream that fails once more than ``limit`` bytes were read, and reads each NUL
    byte as :data:`NUL_STANDIN` (``nul_seen`` tells whether there was one)."""

    def __init__(self, inner: io.BufferedIOBase, limit: int) -> None:
        self.inner, self.limit, self.total = inner, limit, 0
        self.nul_seen = False

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.inner.close()
        super().close()

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        data = self.inner.read(len(buffer))
        self.total += len(data)
        if self.total > self.limit:
            raise FileFormatError(
                f"the file is larger than the {self.limit:,}-byte limit once decompressed"
            )
        if b"\0" in data:
            self.nul_seen = True
            data = data.replace(b"\0", b"\x1a")
        buffer[: len(data)] = data
        return len(data)


def _open_bytes(path: Path, name: str, limit: int) -> tuple[io.BufferedReader, _LimitedReader]:
    """The file's (decompressed) bytes; the caller's reader owns and closes the handle."""
    if name.lower().endswith(".gz"):
        raw: io.BufferedIOBase = gzip.GzipFile(path, "rb")
    else:
        raw = io.FileIO(path, "rb")  # type: ignore[assignment]
    limited = _LimitedReader(raw, limit)
    return io.BufferedReader(limited, buffer_size=1 << 20), limited


def open_bytes(path: Path, name: str, limit: int) -> io.BufferedReader:
    """The file's (decompressed) bytes under the size limit; the caller closes the handle."""
    return _open_bytes(path, name, limit)[0]


def _header_cells(path: Path, name: str, limit: int) -> list[str] | None:
    """The header row's cells exactly as written (pandas renames a repeated name ``x.1``),
    or None when the header row is longer than :data:`HEADER_TEXT_LIMIT` or unreadable."""
    handle, _ = _open_bytes(path, name, limit)
    read = 0

    def lines(text: io.TextIOWrapper) -> Iterator[str]:
        nonlocal read
        while read < HEADER_TEXT_LIMIT and (line := text.readline(HEADER_TEXT_LIMIT - read)):
            read += len(line)
            yield line

    try:
        with io.TextIOWrapper(handle, encoding="utf-8-sig", newline="") as text:
            cells = next(csv.reader(lines(text), skipinitialspace=True), None)
        return None if read >= HEADER_TEXT_LIMIT else cells
    except (ValueError, OSError, EOFError, zlib.error, csv.Error):
        return None
    finally:
        handle.close()


def header_problem(names: list[str], nul: bool) -> str | None:
    """A header no feed can read: a NUL byte in a name, or a name given twice (compared
    trimmed and case-folded, SPEC §2)."""
    for name in names if nul else ():
        if NUL_STANDIN in name:
            return f"column {shown(name.replace(NUL_STANDIN, chr(0)))} has a NUL byte in its name"
    seen: set[str] = set()
    repeated: dict[str, str] = {}  # folded name -> its second spelling
    for name in names:
        folded = name.casefold()
        if folded in seen:
            repeated.setdefault(folded, name)
        seen.add(folded)
    if not repeated:
        return None
    listed = name_list(list(repeated.values()))
    verb = "columns {} appear" if len(repeated) > 1 else "column {} appears"
    return (
        f"{verb.format(listed)} more than once in the header (names are compared trimmed and"
        " ignoring case)"
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileFormatError):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return f"the file is not valid UTF-8 text (bad byte at offset {exc.start} of a block)"
    if isinstance(exc, (EOFError, gzip.BadGzipFile, zlib.error)):
        return "the file is a truncated or corrupt gzip archive"
    if isinstance(exc, pd.errors.EmptyDataError):
        return "the file is empty"
    if isinstance(exc, (pd.errors.ParserError, csv.Error)):
        text = str(exc).strip().rstrip(".").replace("Error tokenizing data. C error: ", "")
        return f"the file is not well-formed CSV ({text})"
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc:
        return _reason(cause)
    return f"the file cannot be read ({type(exc).__name__}: {str(exc).strip() or 'no detail'})"


@dataclass
class CsvStream:
    """A CSV opened for chunked reading: normalised header plus data chunks.

    Chunk indexes are spreadsheet row numbers (header = row 1).
    """

    header: list[str]
    original_header: list[str]
    _chunks: Iterator[pd.DataFrame]
    _handle: io.BufferedReader
    _reader: _LimitedReader

    @property
    def saw_nul(self) -> bool:
        """Whether a NUL byte was read so far (cells holding :data:`NUL_STANDIN`)."""
        return self._reader.nul_seen

    def keep_original_names(self, known: set[str]) -> None:
        """Give columns that are not ``known`` (already lower-case) their original, trimmed
        names: such columns carry data in their names (``Reports##View``, attributes,
        event properties), which must not be lower-cased."""
        self.header = [
            name if name in known else original
            for name, original in zip(self.header, self.original_header, strict=True)
        ]

    def chunks(self) -> Iterator[pd.DataFrame]:
        try:
            for chunk in self._chunks:
                chunk.columns = self.header
                chunk.index = chunk.index + HEADER_ROW + 1
                yield chunk
        except Exception as exc:  # every parser failure becomes one sentence
            raise FileFormatError(_reason(exc)) from exc
        finally:
            self._handle.close()


def open_csv(path: Path, name: str, max_bytes: int, chunk_rows: int) -> CsvStream:
    """Open ``path`` (named ``name``; ``.gz`` means gzip) for chunked reading of text cells.

    Blank cells become missing values; leading blanks in a cell are dropped.
    """
    handle, limited = _open_bytes(path, name, max_bytes)
    try:
        reader = pd.read_csv(
            handle,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skipinitialspace=True,
            chunksize=chunk_rows,
            encoding="utf-8-sig",
            engine="c",
            on_bad_lines="error",
            low_memory=False,
        )
        first = reader.get_chunk()
    except StopIteration:
        handle.close()
        raise FileFormatError("the file is empty") from None
    except Exception as exc:
        handle.close()
        raise FileFormatError(_reason(exc)) from exc
    if not isinstance(first.index, pd.RangeIndex):  # pandas took the first cells as an index
        handle.close()
        raise FileFormatError(
            f"the file is not well-formed CSV (row {HEADER_ROW + 1} has more cells than the header)"
        )
    parsed = [str(c).strip() for c in first.columns]
    cells = _header_cells(path, name, max_bytes)
    if cells is not None and len(cells) == len(parsed):  # pandas' name for a blank cell
        parsed = [c.strip() or p for c, p in zip(cells, parsed, strict=True)]
    problem = header_problem(parsed, limited.nul_seen)
    if problem:
        handle.close()
        raise FileFormatError(problem)
    return CsvStream(
        header=[c.lower() for c in parsed],
        original_header=parsed,
        _chunks=chain([first], reader),
        _handle=handle,
        _reader=limited,
    )
