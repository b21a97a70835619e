"""SPEC §7 bad input: every malformed file ends as a `rejected` ledger row with a readable
reason and a quarantine copy; invalid rows are rejected one by one under max_reject_ratio;
the other files of the same run still load."""

from __future__ import annotations

import gzip
from pathlib import Path

import dagster as dg
import pytest

from usage_pipeline.config import PipelineConfig
from usage_pipeline_tests.helpers import HEADER, drop, rows, run

GOOD = [f"A1,u{n},Reports,view,{n},2026-11-20T10:00:00Z" for n in range(1, 61)]


def _write_bytes(inbox: Path, key: str, data: bytes) -> None:
    path = inbox / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def bad_inbox(inbox: Path) -> Path:
    csv_text = "\n".join([HEADER, *GOOD]) + "\n"
    _write_bytes(inbox, "user_activity/empty.csv", b"")
    _write_bytes(inbox, "user_activity/header_only.csv", (HEADER + "\n").encode())
    drop(
        inbox,
        "user_activity/missing_column.csv",
        ["A1,u1,Reports,view,2026-11-20T10:00:00Z"],
        header="account_id,user_id,module,activity,timestamp",
    )
    drop(
        inbox,
        "user_activity/unknown_column.csv",
        ["A1,u1,Reports,view,1,x"],
        header="account_id,user_id,module,activity,count,colour",
    )
    _write_bytes(inbox, "user_activity/garbage.csv", bytes(range(256)) * 4)
    _write_bytes(inbox, "user_activity/truncated.csv.gz", gzip.compress(csv_text.encode())[:300])
    _write_bytes(inbox, "user_activity/oversized.csv.gz", gzip.compress(csv_text.encode() * 10))
    drop(
        inbox,
        "user_activity/too_many_bad_rows.csv",
        GOOD[:7]
        + [
            "A1,u1,Reports,view,-1,2026-11-20T10:00:00Z",
            "A1,u2,Reports,view,1.5,2026-11-20T10:00:00Z",
            "A1,u3,Reports,view,N/A,2026-11-20T10:00:00Z",
        ],
    )
    drop(
        inbox,
        "user_activity/few_bad_rows.csv",
        GOOD
        + [
            "A2,u1,Reports,view,-1,2026-11-20T10:00:00Z",
            "A2,u2,Reports,view,2.5,2026-11-20T10:00:00Z",
            "A2,u3,Reports,view,N/A,yesterday",
        ],
    )
    _write_bytes(
        inbox,
        "user_activity/bom_crlf_quoted.csv",
        (
            '\ufeff" Account_ID ",USER_ID,Module,Activity,Count,Timestamp\r\n'
            '"A3","u1","Reports, Pro","view ""fast""",7,2026-11-20T10:00:00Z\r\n'
            '"A3","u2","Multi\nline",view,1,2026-11-20T10:00:00Z\r\n'
        ).encode("utf-8"),
    )
    _write_bytes(inbox, "user_activity/notes.txt", b"not a csv")
    return inbox


EXPECTED_LEDGER = [
    ("user_activity/bom_crlf_quoted.csv", "loaded", 2, 2, 0, None),
    (
        "user_activity/empty.csv",
        "rejected",
        0,
        0,
        0,
        "File user_activity/empty.csv is rejected: the file is empty.",
    ),
    (
        "user_activity/few_bad_rows.csv",
        "loaded",
        63,
        60,
        3,
        "File user_activity/few_bad_rows.csv: 3 of 63 rows rejected (first: row 62, column count:"
        " count '-1' is negative).",
    ),
    (
        "user_activity/garbage.csv",
        "rejected",
        0,
        0,
        0,
        "File user_activity/garbage.csv is rejected: the file is not valid UTF-8 text (bad byte at"
        " offset 128 of a block).",
    ),
    (
        "user_activity/header_only.csv",
        "rejected",
        0,
        0,
        0,
        "File user_activity/header_only.csv is rejected: the file has a header but no data rows.",
    ),
    (
        "user_activity/missing_column.csv",
        "rejected",
        0,
        0,
        0,
        "File user_activity/missing_column.csv is rejected: required column count missing.",
    ),
    (
        "user_activity/notes.txt",
        "rejected",
        0,
        0,
        0,
        "File user_activity/notes.txt is rejected: only .csv and .csv.gz files are accepted.",
    ),
    (
        "user_activity/oversized.csv.gz",
        "rejected",
        0,
        0,
        0,
        "File user_activity/oversized.csv.gz is rejected: the file is larger than the 20,000-byte"
        " limit once decompressed.",
    ),
    (
        "user_activity/too_many_bad_rows.csv",
        "rejected",
        10,
        0,
        3,
        "File user_activity/too_many_bad_rows.csv is rejected: 3 of 10 rows are invalid, more than"
        " the max_reject_ratio of 0.05 (first: row 9, column count: count '-1' is negative).",
    ),
    (
        "user_activity/truncated.csv.gz",
        "rejected",
        0,
        0,
        0,
        "File user_activity/truncated.csv.gz is rejected: the file is a truncated or corrupt gzip"
        " archive.",
    ),
    (
        "user_activity/unknown_column.csv",
        "rejected",
        0,
        0,
        0,
        "File user_activity/unknown_column.csv is rejected: unknown column 'colour' (the"
        " user_activity template is: account_id,user_id,module,activity,count,date,timestamp).",
    ),
]


def test_bad_files_are_rejected_and_good_files_still_load(
    bad_inbox: Path, warehouse_url: str
) -> None:
    config = PipelineConfig(inbox=str(bad_inbox), warehouse=warehouse_url, max_file_bytes=20_000)
    with dg.DagsterInstance.ephemeral() as instance:
        report = run(config, instance)

    assert report.exit_code == 1
    assert (
        rows(
            warehouse_url,
            "ingested_files",
            columns=(
                "source_key, status, COALESCE(rows_total, 0), COALESCE(rows_loaded, 0),"
                " COALESCE(rows_rejected, 0), error"
            ),
        )
        == EXPECTED_LEDGER
    )
    rejected = rows(
        warehouse_url,
        "rejected_rows JOIN ingested_files USING (file_id)",
        columns="source_key, row_number, column_name, value, rejected_rows.error",
    )
    assert rejected == [
        ("user_activity/few_bad_rows.csv", 62, "count", "-1", "count '-1' is negative"),
        ("user_activity/few_bad_rows.csv", 63, "count", "2.5", "count '2.5' is not a whole number"),
        ("user_activity/few_bad_rows.csv", 64, "count", "N/A", "count 'N/A' is not a number"),
        (
            "user_activity/few_bad_rows.csv",
            64,
            "timestamp",
            "yesterday",
            "timestamp 'yesterday' is not an ISO 8601 timestamp or epoch seconds",
        ),
        ("user_activity/too_many_bad_rows.csv", 9, "count", "-1", "count '-1' is negative"),
        (
            "user_activity/too_many_bad_rows.csv",
            10,
            "count",
            "1.5",
            "count '1.5' is not a whole number",
        ),
        ("user_activity/too_many_bad_rows.csv", 11, "count", "N/A", "count 'N/A' is not a number"),
    ]
    totals = rows(
        warehouse_url,
        "user_activity_daily GROUP BY account_id",
        columns="account_id, COUNT(*), SUM(count)",
    )
    assert totals == [("A1", 60, sum(range(1, 61))), ("A3", 2, 8)]
    assert rows(
        warehouse_url,
        "user_activity_daily WHERE account_id = 'A3'",
        columns="module, activity, count",
    ) == [
        ("Multi\nline", "view", 1),
        ("Reports, Pro", 'view "fast"', 7),
    ]


def test_rejected_files_are_quarantined_with_an_errors_csv(
    bad_inbox: Path, sqlite_url: str
) -> None:
    config = PipelineConfig(inbox=str(bad_inbox), warehouse=sqlite_url, max_file_bytes=20_000)
    originals = {p: p.read_bytes() for p in bad_inbox.rglob("*") if p.is_file()}
    with dg.DagsterInstance.ephemeral() as instance:
        run(config, instance)

    quarantine = bad_inbox.parent / "quarantine" / "user_activity"
    assert sorted(p.name for p in quarantine.iterdir()) == sorted(
        [
            f"{name}{suffix}"
            for name in (
                "empty.csv",
                "garbage.csv",
                "header_only.csv",
                "missing_column.csv",
                "notes.txt",
                "oversized.csv.gz",
                "too_many_bad_rows.csv",
                "truncated.csv.gz",
                "unknown_column.csv",
            )
            for suffix in ("", ".errors.csv")
        ]
        + ["few_bad_rows.csv.errors.csv", "few_bad_rows.csv.rejects.csv"]
        + ["too_many_bad_rows.csv.rejects.csv"]  # rejected for its rows: every row
    )
    assert (quarantine / "too_many_bad_rows.csv").read_bytes() == originals[
        bad_inbox / "user_activity" / "too_many_bad_rows.csv"
    ]
    assert (quarantine / "too_many_bad_rows.csv.rejects.csv").read_bytes() == originals[
        bad_inbox / "user_activity" / "too_many_bad_rows.csv"
    ]
    assert (quarantine / "few_bad_rows.csv.rejects.csv").read_text().splitlines() == [
        HEADER,
        "A2,u1,Reports,view,-1,2026-11-20T10:00:00Z",
        "A2,u2,Reports,view,2.5,2026-11-20T10:00:00Z",
        "A2,u3,Reports,view,N/A,yesterday",
    ]
    assert (quarantine / "too_many_bad_rows.csv.errors.csv").read_text().splitlines() == [
        "account_id,user_id,module,activity,count,timestamp,row_number,column,error",
        "A1,u1,Reports,view,-1,2026-11-20T10:00:00Z,9,count,count '-1' is negative",
        "A1,u2,Reports,view,1.5,2026-11-20T10:00:00Z,10,count,count '1.5' is not a whole number",
        "A1,u3,Reports,view,N/A,2026-11-20T10:00:00Z,11,count,count 'N/A' is not a number",
        ',,,,,,,,"3 of 10 rows are invalid, more than the max_reject_ratio of 0.05 (first: row 9,'
        " column count: count '-1' is negative)\"",
    ]
    assert (quarantine / "missing_column.csv.errors.csv").read_text().splitlines() == [
        "account_id,user_id,module,activity,timestamp,row_number,column,error",
        ",,,,,,,required column count missing",
    ]
    assert {p: p.read_bytes() for p in originals} == originals  # sources never modified
