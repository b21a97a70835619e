"""The record splitter behind the rejects file numbers records exactly as the CSV reader
numbers rows, for LF and CRLF files (SPEC §1), and a rejects file is never written when the
numbering cannot be trusted."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

import pandas as pd
import pytest

from usage_pipeline.quarantine import write_rejects
from usage_pipeline.raw_records import RecordSplitError, is_blank, split_records
from usage_pipeline.reading import open_csv

PIECES = [b"a", b"b", b",", b'"', b'""', b" ", b"\t", b"\n", b"\r\n", b"x y", b"\xc3\xa9"]
HEADERS = [b"h1,h2,h3", b"\xef\xbb\xbfh1,h2,h3", b"\n h1,h2,h3", b"h1,h2,h3 "]


def reader_rows(data: bytes, tmp_path: Path) -> pd.DataFrame | None:
    """The rows the pipeline's reader gives (None when it refuses the file)."""
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    try:
        stream = open_csv(path, "x.csv", 1 << 20, 1000)
        chunks = list(stream.chunks())
    except ValueError:
        return None
    frame = pd.concat(chunks) if chunks else pd.DataFrame()
    return frame if stream.header == ["h1", "h2", "h3"] else None


def data_records(data: bytes, block: int) -> list[bytes]:
    records, first, header = [], True, False
    for record in split_records(io.BytesIO(data), block):
        blank, first = is_blank(record, first), False
        if blank:
            continue
        if header:
            records.append(record)
        header = True
    return records


def test_records_number_and_read_as_the_reader_reads_them(tmp_path: Path) -> None:
    rng = random.Random(2026)
    compared = 0
    for _ in range(1500):
        body = b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 30)))
        data = rng.choice(HEADERS) + rng.choice([b"\n", b"\r\n"]) + body
        if re.search(rb"\r(?!\n)", data):
            continue
        frame = reader_rows(data, tmp_path)
        if frame is None or len(frame.columns) != 3:
            continue
        records = data_records(data, block=rng.choice([1, 2, 5, 64]))
        assert b"".join(split_records(io.BytesIO(data), 3)) == data
        assert len(records) == len(frame), data
        assert list(frame.index) == list(range(2, 2 + len(frame)))
        for position, record in enumerate(records):
            alone = reader_rows(b"h1,h2,h3\n" + record, tmp_path)
            assert alone is not None and len(alone) == 1, (data, record)
            expected = frame.iloc[position].fillna("").tolist()
            assert alone.iloc[0].fillna("").tolist() == expected, (data, record)
        compared += 1
    assert compared > 800  # the generator does produce readable files


def test_edge_cases() -> None:
    data = b'\xef\xbb\xbf\r\nh\r\n"a\r\n\r\nb"\r\n  \t \r\nc'
    assert list(split_records(io.BytesIO(data), 2)) == [
        b"\xef\xbb\xbf\r\n",
        b"h\r\n",
        b'"a\r\n\r\nb"\r\n',
        b"  \t \r\n",
        b"c",
    ]
    assert is_blank(b"\xef\xbb\xbf\r\n", first=True)
    assert not is_blank(b"\xef\xbb\xbf\r\n")
    assert not is_blank(b'""\n') and not is_blank(b",\n") and is_blank(b" \t\n")
    long = b"x" * 100_000 + b"\n"
    assert list(split_records(io.BytesIO(b"h\n" + long), 16)) == [b"h\n", long]
    with pytest.raises(RecordSplitError):
        list(split_records(io.BytesIO(b'h\n"never closed\n')))


def test_no_rejects_file_when_the_numbering_differs(tmp_path: Path) -> None:
    # a lone CR before a line starting with a tab: the reader also returns the header as a
    # row (3 rows where the file has 2 records); the spec accepts LF and CRLF only
    source = tmp_path / "odd.csv"
    source.write_bytes(b"h1,h2,h3\r\tx\na\n")
    destination = tmp_path / "odd.rejects.csv"
    frame = reader_rows(source.read_bytes(), tmp_path)
    assert frame is not None and len(frame) == 3

    assert not write_rejects(source, "odd.csv", 1 << 20, iter([3]), 3, destination)
    assert not destination.exists()
    assert write_rejects(source, "odd.csv", 1 << 20, iter([3]), 2, destination)
    assert destination.read_bytes() == b"h1,h2,h3\ra\n"


def test_a_first_row_longer_than_the_header_is_refused(tmp_path: Path) -> None:
    # pandas would silently use the first cells as an index and shift every value
    path = tmp_path / "x.csv"
    path.write_bytes(b"h1,h2,h3\na,b,c,d\ne,f,g,h\n")
    with pytest.raises(ValueError, match=r"row 2 has more cells than the header"):
        open_csv(path, "x.csv", 1 << 20, 1000)
