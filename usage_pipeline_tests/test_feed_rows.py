"""Feed transforms on plain DataFrames: text cells in, rows and row errors out.

No warehouse, no Dagster: each feed's state is made by ``prepare`` with no connection (a dry
run), and chunks are built the way the reader hands them over (text cells, blank = NaN,
index = the row number in the file, the header being row 1). The run's "now" is
2026-11-21 12:00 UTC; the file was received 2026-11-21 06:00 UTC and dropped 2026-11-20.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pytest

from usage_pipeline.config import PipelineConfig, parse_config
from usage_pipeline.feeds import FEEDS
from usage_pipeline.feeds.base import ChunkResult, FileContext
from usage_pipeline.feeds.common import as_date, json_objects, json_values, merge_errors
from usage_pipeline.feeds.events.rows import event_rows
from usage_pipeline.feeds.product_usage.rows import product_usage_rows
from usage_pipeline.feeds.usage_events import FileState
from usage_pipeline.feeds.usage_events.rows import usage_event_rows

NOW = datetime(2026, 11, 21, 12, tzinfo=timezone.utc)
RECEIVED = datetime(2026, 11, 21, 6, tzinfo=timezone.utc)


def chunk(columns: list[str], *rows: list[str | None]) -> pd.DataFrame:
    """A chunk as the reader makes it: text cells, blank -> NaN, rows numbered from 2."""
    frame = pd.DataFrame([list(r) for r in rows], columns=columns, dtype=object)
    frame = frame.where(frame.notna(), np.nan)
    frame.index = pd.RangeIndex(2, 2 + len(rows))
    return frame


def prepared(feed: str, config: PipelineConfig, import_name: str | None = None) -> FileContext:
    context = FileContext(
        key=f"{feed}/file.csv",
        drop_day=date(2026, 11, 20),
        received_at=RECEIVED,
        tz=config.tz,
        config=config,
        as_of=NOW,
        import_name=import_name,
    )
    return FEEDS[feed].prepare(None, context)


def records(result: ChunkResult) -> tuple[list[dict], list[dict]]:
    return result.rows.to_dict("records"), result.errors.to_dict("records")


# --- user_activity ---------------------------------------------------------------------------


def test_user_activity_rows() -> None:
    context = prepared("user_activity", parse_config({}))
    raw = chunk(
        ["account_id", "user_id", "module", "activity", "count", "date"],
        ["a1", "u1", "Reports", "View", "3", "2026-11-19"],
        ["a1", "u1", "Reports", "View", "2.5", None],
        ["a2", "u2", "Reports", "Export", "0", "2026-13-01"],
        ["a3", None, "Reports", "View", "1", None],
        ["a4", "u4", "Admin", "Login", "7", None],  # no date: the drop date
    )
    result = FEEDS["user_activity"].process_chunk(raw, context)
    rows, errors = records(result)
    assert rows == [
        {
            "row_number": 2,
            "activity_date": "2026-11-19",
            "account_id": "a1",
            "user_id": "u1",
            "module": "Reports",
            "activity": "View",
            "count": 3,
        },
        {
            "row_number": 6,
            "activity_date": "2026-11-20",
            "account_id": "a4",
            "user_id": "u4",
            "module": "Admin",
            "activity": "Login",
            "count": 7,
        },
    ]
    assert errors == [
        {
            "row_number": 3,
            "column_name": "count",
            "value": "2.5",
            "error": "count '2.5' is not a whole number",
        },
        {
            "row_number": 4,
            "column_name": "date",
            "value": "2026-13-01",
            "error": "date '2026-13-01' is not a YYYY-MM-DD date",
        },
        {"row_number": 5, "column_name": "user_id", "value": None, "error": "user_id is missing"},
    ]
    assert dict(result.failures) == {
        "user_id: missing": 1,
        "count: is not a whole number": 1,
        "date: unparseable": 1,
    }
    assert (result.loaded_rows, result.invalid_rows) == (2, 3)


# --- usage_events ----------------------------------------------------------------------------

USAGE_EVENTS_CONFIG = {"usage_events": {"meters": ["Calls", "GB"], "properties": ["Region"]}}
USAGE_EVENTS_HEADER = [
    "customer_ref",
    "subscription_ref",
    "event_ref",
    "timestamp",
    "event",
    "calls",
    "gb",
    "region",
]


def test_usage_events_rows_and_errors() -> None:
    context = prepared("usage_events", parse_config(USAGE_EVENTS_CONFIG))
    assert isinstance(context.state, FileState)
    raw = chunk(
        USAGE_EVENTS_HEADER,
        ["c1", "s1", "e1", "2026-11-20T10:00:00Z", "api", "3", "1.5", "eu"],
        ["c1", None, "e2", "2026-11-20 23:30", "api", None, "2", None],
        ["c2", "s2", "e1", "2026-11-20T11:00:00Z", "api", "1", "1", "us"],
        ["c2", "s2", "e3", "2026-10-15T00:00:00Z", "api", "1", "1", "us"],
        ["c3", None, "e4", None, "api", "-1", "x", "us"],
    )
    result = usage_event_rows(raw, context)
    rows, errors = records(result)
    assert rows == [
        {
            "row_number": 2,
            "event_ref": "e1",
            "customer_ref": "c1",
            "subscription_ref": "s1",
            "event": "api",
            "occurred_at": "2026-11-20 10:00:00.000000",
            "day": "2026-11-20",
            "billing_period": "2026-11",
            "properties": '{"Region": "eu"}',
            "meters": '{"Calls": 3, "GB": 1.5}',
        },
        {  # a blank meter is missing, not zero; a blank property is left out
            "row_number": 3,
            "event_ref": "e2",
            "customer_ref": "c1",
            "subscription_ref": None,
            "event": "api",
            "occurred_at": "2026-11-20 23:30:00.000000",
            "day": "2026-11-20",
            "billing_period": "2026-11",
            "properties": "{}",
            "meters": '{"GB": 2}',
        },
    ]
    assert errors == [
        {
            "row_number": 4,
            "column_name": "event_ref",
            "value": "e1",
            "error": "event_ref 'e1' repeats row 2: an event_ref must be unique in a file",
        },
        {
            "row_number": 5,
            "column_name": "timestamp",
            "value": "2026-10-15T00:00:00Z",
            "error": "timestamp '2026-10-15T00:00:00Z' is in billing period 2026-10, final since"
            " 2026-11-01T08:00:00Z: events of a final period are not accepted",
        },
        {"row_number": 6, "column_name": "calls", "value": "-1", "error": "calls '-1' is negative"},
        {"row_number": 6, "column_name": "gb", "value": "x", "error": "gb 'x' is not a number"},
    ]
    assert dict(result.failures) == {
        "calls: is negative": 1,
        "gb: unparseable": 1,
        "event_ref: repeated in the file": 1,
        "timestamp: in final billing period 2026-10": 1,
    }
    # the state the closed_period_events check reads: a typed count per final period
    assert dict(context.state.final_periods) == {"2026-10": 1}
    [check] = FEEDS["usage_events"].checks(None, context.state)
    assert (check.name, check.passed) == ("closed_period_events", False)
    assert check.metadata == {"events_in_final_periods": 1, "periods": {"2026-10": 1}}


def test_usage_events_repeats_are_found_across_chunks() -> None:
    context = prepared("usage_events", parse_config(USAGE_EVENTS_CONFIG))
    first = chunk(USAGE_EVENTS_HEADER, ["c1", None, "e1", None, "api", "1", None, None])
    second = chunk(USAGE_EVENTS_HEADER, ["c1", None, "e1", None, "api", "1", None, None])
    second.index = pd.RangeIndex(3, 4)
    assert len(usage_event_rows(first, context).rows) == 1
    _, errors = records(usage_event_rows(second, context))
    assert errors == [
        {
            "row_number": 3,
            "column_name": "event_ref",
            "value": "e1",
            "error": "event_ref 'e1' repeats row 2: an event_ref must be unique in a file",
        }
    ]


def test_rows_need_the_prepared_state() -> None:
    config = parse_config(USAGE_EVENTS_CONFIG)
    context = FileContext("usage_events/x.csv", date(2026, 11, 20), RECEIVED, config.tz, config)
    with pytest.raises(RuntimeError, match=r"Feed.prepare\(\) must run before the rows of"):
        usage_event_rows(chunk(USAGE_EVENTS_HEADER), context)


# --- events ----------------------------------------------------------------------------------


def test_event_rows() -> None:
    context = prepared("events", parse_config({"events": {"floor_date": "2020-01-01"}}))
    raw = chunk(
        ["identity", "event", "timestamp", "Plan", "Amount"],
        ["alice", "Signed Up", "2024-03-01T09:00:00Z", "pro", None],
        ["bob", "Billed", "1709283600", None, "12.50"],  # epoch seconds
        [None, "Billed", "2024-03-01T09:00:00Z", "x", "1"],
        ["carol", "Billed", "2019-12-31T23:59:59Z", None, None],
        ["dave", "Viewed", "soon", None, None],
    )
    rows, errors = records(event_rows(raw, context))
    assert rows == [
        {
            "row_number": 2,
            "identity": "alice",
            "event": "Signed Up",
            "occurred_at": "2024-03-01 09:00:00.000000",
            "day": "2024-03-01",
            "properties": '{"plan": "pro"}',
        },
        {
            "row_number": 3,
            "identity": "bob",
            "event": "Billed",
            "occurred_at": "2024-03-01 09:00:00.000000",
            "day": "2024-03-01",
            "properties": '{"amount": "12.50"}',
        },
    ]
    assert errors == [
        {"row_number": 4, "column_name": "identity", "value": None, "error": "identity is missing"},
        {
            "row_number": 5,
            "column_name": "timestamp",
            "value": "2019-12-31T23:59:59Z",
            "error": "timestamp '2019-12-31T23:59:59Z' is before the floor date 2020-01-01"
            " (events.floor_date)",
        },
        {
            "row_number": 6,
            "column_name": "timestamp",
            "value": "soon",
            "error": "timestamp 'soon' is not an ISO 8601 timestamp or epoch seconds",
        },
    ]


# --- product_usage ---------------------------------------------------------------------------


def test_product_usage_rows() -> None:
    config = parse_config(
        {
            "products": {
                "Seats": {"snapshot_period": "monthly"},
                "Plan": {"snapshot_period": "single"},
            },
            "imports": {
                "crm": {
                    "identifier": {"column": "Account", "kind": "account_id"},
                    "date_column": "Date",
                    "mappings": [
                        {
                            "column": "Seats",
                            "product": "Seats",
                            "dimension": "seats",
                            "type": "numeric",
                        },
                        {
                            "column": "Active",
                            "product": "Seats",
                            "dimension": "active",
                            "type": "boolean",
                        },
                        {"column": "Tier", "product": "Plan", "dimension": "tier", "type": "text"},
                    ],
                }
            },
        }
    )
    context = prepared("product_usage", config, import_name="crm")
    raw = chunk(
        ["account", "seats", "active", "tier", "date"],
        ["a1", "10", "yes", " Gold ", "2026-10-15"],
        ["a2", "N/A", "no", None, None],  # no date: the as-of rule (monthly -> 2026-10-01)
        [None, "3", "1", "Silver", "2026-11-02"],
        ["a3", None, "maybe", "Bronze", "2026-11-31"],
    )
    result = product_usage_rows(raw, context)
    rows, errors = records(result)
    base = {"value_numeric": None, "value_text": None, "value_boolean": None}
    seats = {"product": "Seats", "period": "monthly", "period_start": "2026-10-01"}
    assert [{**r, "value_numeric": None if pd.isna(r["value_numeric"]) else r["value_numeric"]}
            for r in rows] == [
        {**base, **seats, "row_number": 2, "account_id": "a1", "dimension": "seats",
         "value_numeric": 10.0},
        {**base, **seats, "row_number": 2, "account_id": "a1", "dimension": "active",
         "value_boolean": True},
        {**base, **seats, "row_number": 3, "account_id": "a2", "dimension": "active",
         "value_boolean": False},
        {**base, "product": "Plan", "period": "single", "period_start": "2026-10-15",
         "row_number": 2, "account_id": "a1", "dimension": "tier", "value_text": "Gold"},
    ]  # fmt: skip
    assert errors == [
        {
            "row_number": 3,
            "column_name": "seats",
            "value": "N/A",
            "error": "seats 'N/A' is not a number",
        },
        {"row_number": 4, "column_name": "account", "value": None, "error": "account is missing"},
        {
            "row_number": 5,
            "column_name": "active",
            "value": "maybe",
            "error": "active 'maybe' is not a boolean (true/false, yes/no, 1/0)",
        },
        {
            "row_number": 5,
            "column_name": "date",
            "value": "2026-11-31",
            "error": "date '2026-11-31' is not a YYYY-MM-DD date or an ISO 8601 timestamp or"
            " epoch seconds",
        },
    ]
    assert (result.loaded_rows, result.invalid_rows) == (1, 3)
    assert result.report == [
        "column account holds the account id itself (kind account_id: no accounts directory"
        " needed)",
        "row 2: account 'a1' matched account a1 -> Seats (monthly) 2026-10-01, Plan (single)"
        " 2026-10-15",
        "row 3: account 'a2' matched account a2 -> Seats (monthly) 2026-10-01, Plan (single)"
        " 2026-11-21; 1 cell rejected",
        "row 4: invalid (account is missing), not loaded",
        "row 5: invalid (active 'maybe' is not a boolean (true/false, yes/no, 1/0)), not loaded",
    ]


# --- shared helpers --------------------------------------------------------------------------


def test_merge_errors_joins_messages_per_row_and_column() -> None:
    columns = ["row_number", "column_name", "value", "error"]
    first = pd.DataFrame([(5, "b", "x", "b bad"), (3, "a", None, "a missing")], columns=columns)
    second = pd.DataFrame([(5, "b", "x", "b again")], columns=columns)
    assert merge_errors([first, pd.DataFrame(columns=columns), second]).to_dict("records") == [
        {"row_number": 3, "column_name": "a", "value": None, "error": "a missing"},
        {"row_number": 5, "column_name": "b", "value": "x", "error": "b bad; b again"},
    ]
    assert list(merge_errors([]).columns) == columns


def test_json_builders_match_json_dumps() -> None:
    numbers = json_values(pd.Series([3.0, np.nan, 0.25]), numbers=True)
    texts = json_values(pd.Series(["é", 'a"b', None]))
    assert list(json_objects([("n", numbers), ("t", texts)], 3)) == [
        '{"n": 3, "t": "é"}',
        '{"t": "a\\"b"}',
        '{"n": 0.25}',
    ]


def test_as_date() -> None:
    assert as_date("2026-11-20") == as_date(date(2026, 11, 20)) == date(2026, 11, 20)
