"""A CSV file's records as the exact bytes they came in, numbered as the reader numbers rows.

:mod:`usage_pipeline.reading` parses with pandas' C reader (RFC 4180 quoting, blanks before a
cell dropped, blank lines skipped); this module splits the same (decompressed) bytes into
records the same way, without decoding them, so a record can be copied byte for byte: its
line ending, quoting and, for the first one, a byte order mark stay as they came. Splitting
follows the reader's rules:

- a record ends at an LF, a CRLF or a lone CR outside quotes (or at the end of the file);
- a cell is quoted when its first character after spaces is ``"``; inside, ``""`` is a
  quote and line breaks belong to the cell; a ``"`` inside an unquoted cell is a character;
- a line holding only spaces and tabs is blank and is not a row.

Memory is bounded by the read block plus the longest record.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

BLOCK = 1 << 20
BOM = b"\xef\xbb\xbf"
_FIELD = rb' *+(?:"(?:[^"]|"")*+"[^,\r\n]*+|(?!")[^,\r\n]*+)'
_RECORD = re.compile(_FIELD + rb"(?:," + _FIELD + rb")*+(?:\r\n|\r|\n|\Z)")
_BLANK = re.compile(rb"[ \t]*(?:\r\n|\r|\n)?\Z")


class RecordSplitError(ValueError):
    """The bytes do not split into records (an unterminated quoted cell)."""


def split_records(handle: BinaryIO, block: int = BLOCK) -> Iterator[bytes]:
    """Every record of ``handle`` (blank lines included), with its line ending."""
    buffer, position, eof, size = b"", 0, False, block
    while True:
        match = _RECORD.match(buffer, position) if position < len(buffer) else None
        if match is None or (match.end() == len(buffer) and not eof):
            if eof:
                if position >= len(buffer):
                    return
                raise RecordSplitError("a quoted cell is not closed before the end of the file")
            more = handle.read(size)
            eof = not more
            if position == 0 and buffer:
                size *= 2  # a record longer than the buffer: read more at a time
            buffer, position = buffer[position:] + more, 0
            continue
        yield buffer[position : match.end()]
        position = match.end()


def is_blank(record: bytes, first: bool = False) -> bool:
    """True when ``record`` is a blank line (the first record may start with a BOM)."""
    if first and record.startswith(BOM):
        record = record[len(BOM) :]
    return _BLANK.match(record) is not None
