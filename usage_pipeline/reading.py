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

HEADER_ROW = 1  # row_number of the header; the first data row is 2, as in a spreadsheet
SUPPORTED_SUFFIXES = (".csv", ".csv.gz")


class FileFormatError(ValueError):
    """The file as a whole cannot be read; the message is one sentence."""


def is_supported(name: str) -> bool:
    return name.lower().endswith(SUPPORTED_SUFFIXES)


class _LimitedReader(io.RawIOBase):
    """A raw stream that fails once more than ``limit`` bytes were read."""

    def __init__(self, inner: io.BufferedIOBase, limit: int) -> None:
        self.inner, self.limit, self.total = inner, limit, 0

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
        buffer[: len(data)] = data
        return len(data)


def open_bytes(path: Path, name: str, limit: int) -> io.BufferedReader:
    """The file's (decompressed) bytes; the caller's reader owns and closes the handle."""
    if name.lower().endswith(".gz"):
        raw: io.BufferedIOBase = gzip.GzipFile(path, "rb")
    else:
        raw = io.FileIO(path, "rb")  # type: ignore[assignment]
    return io.BufferedReader(_LimitedReader(raw, limit), buffer_size=1 << 20)


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
    handle = open_bytes(path, name, max_bytes)
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
    original = [str(c).strip() for c in first.columns]
    header = [c.lower() for c in original]
    return CsvStream(
        header=header, original_header=original, _chunks=chain([first], reader), _handle=handle
    )
