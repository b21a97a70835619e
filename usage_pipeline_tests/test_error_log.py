"""The error log of one file: nothing on disk until an error or a path is asked for, and
then the same files as ever."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from usage_pipeline.quarantine import ErrorLog, file_error_log

HEADER = ["account_id", "user_id", "count"]


class Folders:
    """A folder factory that counts its calls."""

    def __init__(self, root: Path) -> None:
        self.root, self.made = root, 0

    def __call__(self) -> Path:
        self.made += 1
        folder = self.root / f"log{self.made}"
        folder.mkdir()
        return folder


def test_a_log_without_errors_makes_no_folder(tmp_path: Path) -> None:
    folders = Folders(tmp_path)
    log = ErrorLog(folders)
    log.start(HEADER)
    log.add(pd.DataFrame({"account_id": ["A1"]}), pd.DataFrame())
    log.close()
    assert (folders.made, log.count, log.first) == (0, 0, None)
    assert list(tmp_path.iterdir()) == []


def test_a_closed_log_asked_for_its_paths_writes_the_headers_only(tmp_path: Path) -> None:
    folders = Folders(tmp_path)
    log = ErrorLog(folders)
    log.start(HEADER)
    log.close()
    assert log.errors_path.read_bytes() == b"account_id,user_id,count,row_number,column,error\r\n"
    assert log.rows_path.read_bytes() == b"row_number,column_name,value,error\r\n"
    assert log.numbers_path.read_bytes() == b""
    assert folders.made == 1


def test_errors_are_written_on_the_first_one(tmp_path: Path) -> None:
    folders = Folders(tmp_path)
    log = ErrorLog(folders)
    log.start(HEADER)
    raw = pd.DataFrame({"account_id": ["A1", "A2"], "user_id": ["u1", None], "count": ["x", "2"]})
    errors = pd.DataFrame(
        {
            "row_number": [2, 3],
            "column_name": ["count", "user_id"],
            "value": ["x", ""],
            "error": ["not a whole number", "missing"],
        },
        index=[0, 1],
    )
    log.add(raw.set_axis([2, 3]), errors)
    log.close()
    assert folders.made == 1
    assert log.errors_path.read_text().splitlines() == [
        "account_id,user_id,count,row_number,column,error",
        "A1,u1,x,2,count,not a whole number",
        "A2,,2,3,user_id,missing",
    ]
    assert log.rows_path.read_text().splitlines() == [
        "row_number,column_name,value,error",
        "2,count,x,not a whole number",
        "3,user_id,,missing",
    ]
    assert list(log.rejected_row_numbers() or []) == [2, 3]
    assert (log.count, log.first) == (2, "row 2, column count: not a whole number")


def test_a_file_error_log_holds_its_one_sentence(tmp_path: Path) -> None:
    log = file_error_log(Folders(tmp_path), "File a.csv is empty.")
    assert log.errors_path.read_text().splitlines() == [
        "row_number,column,error",
        ",,File a.csv is empty.",
    ]
