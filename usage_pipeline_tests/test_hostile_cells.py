"""SPEC §2 and §7 (issue 9 items 3, 4, 6), in every feed on SQLite and PostgreSQL: a NUL byte
in a cell rejects its row (the value is never stored cut short); a column name given twice
(after trimming and case folding) rejects the file with a reason naming it; a reason stays
one readable sentence however many names or however long a value it quotes."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from usage_pipeline.config import parse_config
from usage_pipeline.wording import capped, name_list, shown
from usage_pipeline_tests.helpers import HEADER, drop, rows, run

AS_OF = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
RECEIVED = datetime(2026, 11, 21, 4, 0, tzinfo=timezone.utc)
EVENTS = "identity,event,timestamp,plan"
USAGE = "customer_ref,event_ref,timestamp,event,api_calls"
IMPORTS = {
    "crm": {
        "identifier": {"column": "account", "kind": "account_id"},
        "mappings": [{"column": "plan", "product": "P", "dimension": "Plan", "type": "text"}],
    }
}

# feed folder -> (header, good row, the same row with a NUL byte in one cell, that column)
FEEDS = {
    "user_activity": (HEADER, "A1,u1,Reports,view,3,2026-11-20T10:00:00Z", "user_id", "nu\0l"),
    "events": (EVENTS, "u1,Signed In,2026-11-20T10:00:00Z,Pro", "plan", "P\0ro"),
    "account_usage": ("account_id,date,Reports##View", "A1,2026-11-20,3", "account_id", "A\x002"),
    "account_attributes": ("account_id,date,plan", "A1,2026-11-19,Pro", "plan", "P\0ro"),
    "accounts": ("account_id,domain,name", "A1,a.example.com,A", "name", "B\0"),
    "product_usage/crm": ("account,plan", "A1,Pro", "plan", "P\0ro"),
    "usage_events": (USAGE, "C1,e1,2026-11-20T10:00:00Z,api_request,1", "event_ref", "e\x002"),
}


def _with(header: str, row: str, column: str, value: str) -> str:
    cells = row.split(",")
    cells[header.lower().split(",").index(column)] = value
    return ",".join(cells)


def _config(inbox: Path, url: str):  # type: ignore[no-untyped-def]
    return parse_config(
        {
            "inbox": str(inbox),
            "warehouse": url,
            "max_reject_ratio": 0.5,
            "products": {"P": {"snapshot_period": "single"}},
            "imports": IMPORTS,
            "usage_events": {"meters": ["api_calls"]},
        }
    )


def _put(inbox: Path, key: str, header: str, lines: list[str]) -> None:
    drop(inbox, key, lines, header=header, modified=RECEIVED)


def _good_tables(url: str) -> dict[str, list[tuple]]:
    """What the good rows of every feed left in the feed's main table."""
    return {
        "user_activity": rows(url, "user_activity_daily", columns="account_id, user_id, count"),
        "events": rows(url, "events", columns="identity, event"),
        "account_usage": rows(
            url,
            "account_activity_daily WHERE source = 'account_usage'",
            columns="account_id, count",
        ),
        "account_attributes": rows(url, "account_attribute_history", columns="account_id, value"),
        "accounts": rows(url, "accounts", columns="account_id, name"),
        "product_usage": rows(url, "product_usage", columns="account_id, value_text"),
        "usage_events": rows(url, "usage_events", columns="event_ref, customer_ref"),
    }


GOOD_TABLES = {
    "user_activity": [("A1", "u1", 3)],
    "events": [("u1", "Signed In")],
    "account_usage": [("A1", 3)],
    "account_attributes": [("A1", "Pro")],
    "accounts": [("A1", "A")],
    "product_usage": [("A1", "Pro")],
    "usage_events": [("e1", "C1")],
}


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def test_a_nul_byte_rejects_its_row_in_every_feed(
    inbox: Path, warehouse_url: str, instance
) -> None:
    for folder, (header, good, column, value) in FEEDS.items():
        bad = _with(header, good, column, value)
        if folder == "usage_events":  # strict: its good rows come in a file of their own
            _put(inbox, f"{folder}/good.csv", header, [good])
            _put(inbox, f"{folder}/nul.csv", header, [bad.replace("e1", "e9")])
        else:
            _put(inbox, f"{folder}/nul.csv", header, [good, bad])

    report = run(_config(inbox, warehouse_url), instance, as_of=AS_OF)

    def nul_row(folder: str, row: int) -> tuple:
        _header, _good, column, value = FEEDS[folder]
        shown_value = value.replace("\0", "\\x00")
        return (f"{folder}/nul.csv", row, column, shown_value, f"{column} has a NUL byte")

    expected_rejects = sorted(
        nul_row(folder, 2 if folder == "usage_events" else 3) for folder in FEEDS
    )
    assert (
        rows(
            warehouse_url,
            "rejected_rows JOIN ingested_files USING (file_id)",
            columns="source_key, row_number, column_name, value, rejected_rows.error",
        )
        == expected_rejects
    )
    ledger = rows(warehouse_url, "ingested_files", columns="source_key, status, error")
    loaded = [
        (
            f"{folder}/nul.csv",
            "loaded",
            f"File {folder}/nul.csv: 1 of 2 rows rejected (first:"
            f" row 3, column {FEEDS[folder][2]}: {FEEDS[folder][2]} has a NUL byte).",
        )
        for folder in FEEDS
        if folder != "usage_events"
    ]
    strict = (
        "usage_events/nul.csv",
        "rejected",
        "File usage_events/nul.csv is rejected: 1 of 1 rows are invalid and usage_events files"
        " are strict: nothing is loaded until every row is valid (first: row 2, column"
        " event_ref: event_ref has a NUL byte).",
    )
    assert ledger == sorted([*loaded, strict, ("usage_events/good.csv", "loaded", None)])
    assert _good_tables(warehouse_url) == GOOD_TABLES  # nothing cut short beside them
    assert report.exit_code == 1


# feed folder -> header with one name given twice, and the name the reason gives
DUPLICATES = {
    "user_activity": (HEADER + ",Count", "Count"),
    "events": (EVENTS + ",Plan", "Plan"),
    "account_usage": ("account_id,date,Reports##View, reports##view ", "reports##view"),
    "account_attributes": ("account_id,date,plan,PLAN", "PLAN"),
    "accounts": ("account_id,domain,name,Name", "Name"),
    "product_usage/crm": ("account,plan,Plan", "Plan"),
    "usage_events": (USAGE + ",API_Calls", "API_Calls"),
}


def test_a_column_given_twice_rejects_the_file_in_every_feed(
    inbox: Path, warehouse_url: str, instance
) -> None:
    for folder, (header, good, _column, _value) in FEEDS.items():
        _put(inbox, f"{folder}/good.csv", header, [good])
        twice, _name = DUPLICATES[folder]
        _put(inbox, f"{folder}/twice.csv", twice, [f"{good},x"])

    run(_config(inbox, warehouse_url), instance, as_of=AS_OF)

    ledger = rows(warehouse_url, "ingested_files", columns="source_key, status, error")
    expected = []
    for folder in FEEDS:
        name = DUPLICATES[folder][1]
        expected += [
            (f"{folder}/good.csv", "loaded", None),
            (
                f"{folder}/twice.csv",
                "rejected",
                f"File {folder}/twice.csv is rejected: column {name!r} appears more than once"
                " in the header (names are compared trimmed and ignoring case).",
            ),
        ]
    assert ledger == sorted(expected)
    assert _good_tables(warehouse_url) == GOOD_TABLES


def test_reasons_stay_readable(inbox: Path, warehouse_url: str, instance) -> None:
    columns = ",".join(f"c{n}" for n in range(5000))
    _put(
        inbox,
        "user_activity/wide.csv",
        f"{HEADER},{columns}",
        ["A1,u1,R,v,1,2026-11-20" + "," * 5000],
    )
    long_cell = "9" * 10_000
    lines = [f"A1,u{n},R,v,1,2026-11-20T10:00:00Z" for n in range(30)]
    _put(inbox, "user_activity/long_cell.csv", HEADER, [*lines, f"A1,ux,R,v,{long_cell}x,"])

    run(_config(inbox, warehouse_url), instance, as_of=AS_OF)

    cut = "'" + "9" * 57 + "…'"
    assert rows(warehouse_url, "ingested_files", columns="source_key, error") == [
        (
            "user_activity/long_cell.csv",
            f"File user_activity/long_cell.csv: 1 of 31 rows rejected (first: row 32, column"
            f" count: count {cut} is not a number).",
        ),
        (
            "user_activity/wide.csv",
            "File user_activity/wide.csv is rejected: unknown columns 'c0', 'c1', 'c2', 'c3',"
            " 'c4' … and 4,995 more (the user_activity template is:"
            " account_id,user_id,module,activity,count,date,timestamp).",
        ),
    ]
    assert rows(warehouse_url, "rejected_rows", columns="value, error") == [
        (f"{long_cell}x", f"count {cut} is not a number")  # the value itself is kept whole
    ]


def test_wording_helpers() -> None:
    assert shown("abc") == "'abc'"
    assert shown("x" * 100, limit=10) == "'xxxxxxx…'"
    assert name_list(["a", "b"]) == "'a', 'b'"
    assert name_list([f"n{i}" for i in range(8)], limit=3) == "'n0', 'n1', 'n2' … and 5 more"
    assert name_list(["a", "b"], quoted=False) == "a, b"
    sentence = "File x is rejected: " + "word " * 200 + "end."
    assert capped("short.") == "short."
    short = capped(sentence, limit=50)
    assert short == "File x is rejected: word word word word word word … (975 more characters)."
