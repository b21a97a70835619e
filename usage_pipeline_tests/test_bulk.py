"""The CSV PostgreSQL's COPY receives: every row once, in order, NULLs unquoted."""

from __future__ import annotations

import csv
import io

import pandas as pd

from usage_pipeline.warehouse.bulk import csv_buffer


def _lines(frame: pd.DataFrame) -> list[str]:
    return bytes(csv_buffer(frame)).decode().splitlines()


def test_every_row_once_in_order_strings_quoted_nulls_unquoted() -> None:
    frame = pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(45)],
            "count": list(range(45)),
            "note": [None if i % 10 == 0 else f'say "{i}", twice' for i in range(45)],
        }
    )
    lines = _lines(frame)
    assert len(lines) == 45
    assert lines[0] == '"A0",0,'  # a missing value is an unquoted empty field: NULL
    assert lines[1] == '"A1",1,"say ""1"", twice"'
    parsed = list(csv.reader(io.StringIO("\n".join(lines))))
    assert parsed == [
        [f"A{i}", str(i), "" if i % 10 == 0 else f'say "{i}", twice'] for i in range(45)
    ]


def test_a_column_arrow_cannot_type_falls_back() -> None:
    frame = pd.DataFrame({"file_id": [7] * 5, "value": [1, "two", 3.5, None, "five"]}, dtype=object)
    assert _lines(frame) == ["7,1", "7,two", "7,3.5", "7,", "7,five"]


def test_an_empty_frame_is_no_bytes() -> None:
    assert bytes(csv_buffer(pd.DataFrame({"a": pd.Series([], dtype=object)}))) == b""
