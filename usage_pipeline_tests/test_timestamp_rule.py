"""SPEC §2 (one timestamp rule, issue 9 item 11): one table of timestamp cells and the instant
each names, in America/New_York, checked against the rule itself and against every feed that
has a timestamp column (user_activity, events, usage_events, product_usage's date column),
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest

from usage_pipeline.config import parse_config
from usage_pipeline.timestamps import TIMESTAMP_KIND, parse_instants
from usage_pipeline_tests.helpers import drop, rows, run

NY = ZoneInfo("America/New_York")
UTC = timezone.utc
AS_OF = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 20, 23, 0, tzinfo=NY)  # the files' mtime: 04:00Z on 11-21
BLANK = "blank"  # a missing cell: each feed's own rule applies (drop date, receipt time, …)

# cell -> the instant it names (None: not a timestamp, a row error in every feed)
CASES: list[tuple[str, str | None]] = [
    ("2026-03-08T02:30:00", "2026-03-08T07:30:00+00:00"),  # spring-forward gap: 03:30 EDT
    ("2026-11-01T01:30:00", "2026-11-01T05:30:00+00:00"),  # fall-back overlap: first (EDT)
    ("1795168800", "2026-11-20T10:00:00+00:00"),  # epoch seconds
    ("1795168800.5", "2026-11-20T10:00:00.500000+00:00"),  # epoch seconds with a fraction
    ("2026-11-20T10:00:00+01:00", "2026-11-20T09:00:00+00:00"),  # an offset
    ("2026-11-20T10:00:00Z", "2026-11-20T10:00:00+00:00"),  # Z
    ("2026-11-20 10:00:00", "2026-11-20T15:00:00+00:00"),  # naive: New York (EST)
    ("2026-11-20", "2026-11-20T05:00:00+00:00"),  # a date: New York midnight
    ("-1", None),  # a sign: not epoch seconds, not a timestamp
    ("20/11/2026", None),
]
VALID = [(cell, instant) for cell, instant in CASES if instant is not None]
INVALID = [cell for cell, instant in CASES if instant is None]


def _day(instant: str) -> str:
    return datetime.fromisoformat(instant).astimezone(NY).date().isoformat()


def _utc(value: object) -> str:
    """A stored instant as ISO UTC (SQLite returns naive UTC text, PostgreSQL aware)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat()


def _error(cell: str) -> str:
    return f"timestamp {cell!r} is not {TIMESTAMP_KIND}"


def _config(inbox: Path, url: str, **extra: object):  # type: ignore[no-untyped-def]
    raw = {"timezone": "America/New_York", "inbox": str(inbox), "warehouse": url}
    return parse_config({**raw, "max_reject_ratio": 0.5, **extra})


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def test_the_rule_itself() -> None:
    cells = pd.Series([cell for cell, _ in CASES] + [None], dtype=object)
    parsed = parse_instants(cells, NY)
    assert [None if pd.isna(t) else t.isoformat() for t in parsed] == [
        *(instant for _, instant in CASES),
        None,
    ]


def test_utc_cells_read_alike_with_or_without_blanks_or_other_values() -> None:
    clean = ["2026-11-20T10:00:00Z", "2026-11-20 10:00:01.123456789Z", "2026-11-20T10:00Z"]
    expected = [
        "2026-11-20T10:00:00+00:00",
        "2026-11-20T10:00:01.123456+00:00",  # kept to the microsecond
        "2026-11-20T10:00:00+00:00",
    ]
    for cells in (clean, [f"{clean[0]} ", *clean[1:]], [*clean, 5]):
        parsed = parse_instants(pd.Series(cells, dtype=object), NY)
        extra = ["1970-01-01T00:00:05+00:00"] if len(cells) == 4 else []  # 5: epoch seconds
        assert [t.isoformat() for t in parsed] == expected + extra


def test_user_activity(inbox: Path, warehouse_url: str, instance) -> None:
    lines = [f"A1,u{n},Reports,view,1,{cell}" for n, (cell, _) in enumerate(CASES)]
    key = "user_activity/usage_2026-11-19.csv"
    drop(inbox, key, [*lines, "A1,blank,Reports,view,1,"], modified=RECEIVED)

    run(_config(inbox, warehouse_url), instance, as_of=AS_OF)

    days = rows(warehouse_url, "user_activity_daily", columns="user_id, activity_date")
    expected = [(f"u{n}", _day(instant)) for n, (_, instant) in enumerate(CASES) if instant]
    assert days == sorted([*expected, ("blank", "2026-11-19")])  # blank: the drop date
    assert rows(warehouse_url, "rejected_rows", columns="row_number, error") == [
        (n + 2, _error(cell)) for n, (cell, instant) in enumerate(CASES) if instant is None
    ]


def test_events(inbox: Path, warehouse_url: str, instance) -> None:
    lines = [f"id{n},Signed In,{cell}" for n, (cell, _) in enumerate(CASES)]
    drop(
        inbox, "events/history.csv", [*lines, "blank,Signed In,"], header="identity,event,timestamp"
    )

    run(_config(inbox, warehouse_url), instance, as_of=AS_OF)

    stored = rows(warehouse_url, "events", columns="identity, occurred_at")
    assert sorted((identity, _utc(at)) for identity, at in stored) == sorted(
        (f"id{n}", instant) for n, (_, instant) in enumerate(CASES) if instant
    )
    assert rows(warehouse_url, "rejected_rows", columns="row_number, error") == sorted(
        [(n + 2, _error(cell)) for n, (cell, instant) in enumerate(CASES) if instant is None]
        + [(len(CASES) + 2, "timestamp is missing")]
    )


def test_usage_events(inbox: Path, warehouse_url: str, instance) -> None:
    header = "customer_ref,event_ref,timestamp,event,api_calls"
    lines = [f"C1,e{n},{cell},api_request,1" for n, (cell, _) in enumerate(VALID)]
    drop(inbox, "usage_events/good.csv", [*lines, "C1,blank,,api_request,1"], header, RECEIVED)
    bad = [f"C1,x{n},{cell},api_request,1" for n, cell in enumerate(INVALID)]
    drop(inbox, "usage_events/bad.csv", bad, header, RECEIVED)
    usage = {"meters": ["api_calls"], "on_hold": ["2026-03"]}  # March stays open for the gap

    run(_config(inbox, warehouse_url, usage_events=usage), instance, as_of=AS_OF)

    stored = rows(warehouse_url, "usage_events", columns="event_ref, occurred_at")
    assert sorted((ref, _utc(at)) for ref, at in stored) == sorted(
        [(f"e{n}", instant) for n, (_, instant) in enumerate(VALID)]
        + [("blank", RECEIVED.astimezone(UTC).isoformat())]  # blank: the receipt time
    )
    assert rows(warehouse_url, "rejected_rows", columns="row_number, error") == [
        (n + 2, _error(cell)) for n, cell in enumerate(INVALID)
    ]


def test_product_usage_date_column(inbox: Path, warehouse_url: str, instance) -> None:
    drop(inbox, "accounts/directory.csv", ["A1,a.example.com,A"], "account_id,domain,name")
    cells = [cell for cell, _ in CASES]
    lines = [f"A1,{n},{cell}" for n, cell in enumerate(cells)]
    drop(inbox, "product_usage/daily/export.csv", lines, "account,mau,day", RECEIVED)
    imports = {
        "daily": {
            "identifier": {"column": "account", "kind": "account_id"},
            "date_column": "day",
            "mappings": [{"column": "mau", "product": "P", "dimension": "MAU", "type": "numeric"}],
        }
    }
    config = _config(
        inbox, warehouse_url, products={"P": {"snapshot_period": "daily"}}, imports=imports
    )

    run(config, instance, as_of=AS_OF)

    stored = rows(warehouse_url, "product_usage", columns="value_numeric, period_start")
    by_day: dict[str, list[float]] = {}
    for n, (_, instant) in enumerate(CASES):
        if instant:
            by_day.setdefault(_day(instant), []).append(float(n))
    # one value per (product, account, dimension, period): the latest row of a day wins
    assert sorted((value, str(day)[:10]) for value, day in stored) == sorted(
        (values[-1], day) for day, values in by_day.items()
    )
    kind = f"a YYYY-MM-DD date or {TIMESTAMP_KIND}"
    assert rows(warehouse_url, "rejected_rows", columns="row_number, error") == [
        (n + 2, f"day {cell!r} is not {kind}")
        for n, (cell, instant) in enumerate(CASES)
        if instant is None
    ]
