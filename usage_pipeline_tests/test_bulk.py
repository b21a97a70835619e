"""The CSV pieces PostgreSQL's COPY receives: every row once, in order, NULLs unquoted."""

from __future__ import annotations

import csv
import io

import pandas as pd

from usage_pipeline.warehouse.bulk import csv_pieces


def _lines(pieces: list) -> list[str]:
    return b"".join(bytes(piece) for piece in pieces).decode().splitlines()


def test_a_frame_is_sent_in_pieces_of_the_given_rows_every_row_once() -> None:
    frame = pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(45)],
            "count": list(range(45)),
            "note": [None if i % 10 == 0 else f'say "{i}", twice' for i in range(45)],
        }
    )
    pieces = list(csv_pieces(frame, rows=20))
    assert [len(bytes(p).splitlines()) for p in pieces] == [20, 20, 5]
    lines = _lines(pieces)
    assert lines[0] == '"A0",0,'  # a missing value is an unquoted empty field: NULL
    assert lines[1] == '"A1",1,"say ""1"", twice"'
    parsed = list(csv.reader(io.StringIO("\n".join(lines))))
    assert parsed == [
        [f"A{i}", str(i), "" if i % 10 == 0 else f'say "{i}", twice'] for i in range(45)
    ]


def test_a_column_arrow_cannot_type_falls_back_in_pieces_too() -> None:
    frame = pd.DataFrame({"file_id": [7] * 5, "value": [1, "two", 3.5, None, "five"]}, dtype=object)
    pieces = list(csv_pieces(frame, rows=2))
    assert len(pieces) == 3
    assert _lines(pieces) == ["7,1", "7,two", "7,3.5", "7,", "7,five"]


def test_an_empty_frame_sends_nothing() -> None:
    assert list(csv_pieces(pd.DataFrame({"a": pd.Series([], dtype=object)}))) == []
