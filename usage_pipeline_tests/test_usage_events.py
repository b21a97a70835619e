"""SPEC §2.6 usage_events: strict files, event_ref idempotency, timestamps, billing periods,
usage_meter_daily, the billing_periods asset."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from usage_pipeline import billing
from usage_pipeline.cli import main
from usage_pipeline.config import PipelineConfig, parse_config
from usage_pipeline.definitions import build_definitions
from usage_pipeline.defs.tags import AS_OF_TAG
from usage_pipeline.defs.watch.billing import BILLING_JOB, HOLD_CHECK
from usage_pipeline.feeds import FEEDS
from usage_pipeline.feeds.usage_events import SeenRefs
from usage_pipeline.timestamps import parse_instants
from usage_pipeline.warehouse.engine import get_engine, read_connection
from usage_pipeline.warehouse.tables import usage_events
from usage_pipeline_tests.helpers import drop, rows, run

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
HEADER = "customer_ref,subscription_ref,event_ref,timestamp,event,api_calls,storage_gb,region,plan"
USAGE = {"meters": ["api_calls", "storage_gb"], "properties": ["region", "plan"]}
AS_OF = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # 07:00 in New York
DROPPED = datetime(2026, 11, 20, 23, 0, tzinfo=NY)  # the files' receipt time: 04:00Z on 11-21


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def settings(inbox: Path, url: str, **usage: object) -> PipelineConfig:
    raw = {"timezone": "America/New_York", "inbox": str(inbox), "warehouse": url}
    chunk_rows = usage.pop("chunk_rows", None)
    if chunk_rows:
        raw["chunk_rows"] = chunk_rows
    return parse_config({**raw, "usage_events": {**USAGE, **usage}})


def put(inbox: Path, name: str, lines: list[str], header: str = HEADER) -> Path:
    return drop(inbox, f"usage_events/{name}", lines, header=header, modified=DROPPED)


def _utc(value: object) -> str:
    """A stored instant as ISO UTC (SQLite returns naive UTC text, PostgreSQL aware)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")


def stored_events(url: str) -> list[tuple]:
    """usage_events rows: (event_ref, customer_ref, subscription_ref, event, occurred_at UTC,
    billing_period, properties, meters, file_id)."""
    with read_connection(get_engine(url)) as conn:
        found = conn.execute(sa.select(usage_events).order_by(usage_events.c.event_ref)).all()
    return [(*r[:4], _utc(r[4]), *r[5:]) for r in found]


def stored_periods(url: str) -> list[tuple[str, str, str]]:
    return [(p, s, _utc(c)) for p, s, c in rows(url, "billing_periods")]


def ingested(report) -> list[dict]:  # type: ignore[no-untyped-def]
    """The inbox_file materialisations of a run (not the usage_events table events)."""
    return [f for f in report.files if "status" in f]


def ledger(url: str) -> list[tuple]:
    return rows(url, "ingested_files", columns="file_id, status, rows_total, rows_loaded, error")


# --- strictness ----------------------------------------------------------------------------


def test_one_bad_row_rejects_the_whole_file(inbox: Path, warehouse_url: str, instance) -> None:
    config = settings(inbox, warehouse_url)
    put(
        inbox,
        "bad.csv",
        [
            "C1,S1,e1,2026-11-20T10:00:00Z,api_request,3,,eu,pro",
            "C1,S1,e2,2026-11-20T11:00:00Z,api_request,abc,,eu,pro",
            "C2,,e3,2026-11-20T12:00:00Z,,5,,us,",
            "C2,,e1,2026-11-20T13:00:00Z,api_request,1,-2,us,",
        ],
    )

    report = run(config, instance, as_of=AS_OF)

    [info] = ingested(report)
    assert (info["status"], info["rows_total"], info["rows_loaded"], info["rows_rejected"]) == (
        "rejected",
        4,
        0,
        3,
    )
    assert info["error"] == (
        "File usage_events/bad.csv is rejected: 3 of 4 rows are invalid and usage_events files"
        " are strict: nothing is loaded until every row is valid (first: row 3, column"
        " api_calls: api_calls 'abc' is not a number)."
    )
    for table in ("usage_events", "usage_event_rows", "usage_event_meters", "usage_meter_daily"):
        assert rows(warehouse_url, table) == [], table
    assert rows(warehouse_url, "rejected_rows") == [
        (1, 3, "api_calls", "abc", "api_calls 'abc' is not a number"),
        (1, 4, "event", None, "event is missing"),
        (
            1,
            5,
            "event_ref",
            "e1",
            "event_ref 'e1' repeats row 2: an event_ref must be unique in a file",
        ),
        (1, 5, "storage_gb", "-2", "storage_gb '-2' is negative"),
    ]
    errors = pd.read_csv(
        inbox.parent / "quarantine" / "usage_events" / "bad.csv.errors.csv", dtype=str
    )
    assert errors["row_number"].dropna().tolist() == ["3", "4", "5", "5"]
    assert report.exit_code == 1


def test_a_repeat_is_found_across_chunks(inbox: Path, sqlite_url: str, instance) -> None:
    config = settings(inbox, sqlite_url, chunk_rows=2)
    put(
        inbox,
        "chunks.csv",
        [f"C1,S1,e{n},2026-11-20T10:00:00Z,api_request,1,,eu,pro" for n in (1, 2, 3, 4, 1, 3)],
    )

    report = run(config, instance, as_of=AS_OF)

    assert ingested(report)[0]["status"] == "rejected"
    assert rows(sqlite_url, "rejected_rows", columns="row_number, error") == [
        (6, "event_ref 'e1' repeats row 2: an event_ref must be unique in a file"),
        (7, "event_ref 'e3' repeats row 4: an event_ref must be unique in a file"),
    ]


def test_seen_refs_name_the_first_row() -> None:
    seen = SeenRefs()
    first = seen.first_rows(pd.Series(["a", "b", None, "a"], index=[2, 3, 4, 5], dtype=object))
    again = seen.first_rows(pd.Series(["c", "b", "c", "a"], index=[6, 7, 8, 9], dtype=object))

    assert first.to_dict() == {2: -1, 3: -1, 5: 2}
    assert again.to_dict() == {6: -1, 7: 3, 8: 6, 9: 2}


# --- idempotency ---------------------------------------------------------------------------

FIRST = [
    "C1,S1,e1,2026-11-20T10:00:00Z,api_request,3,,eu,pro",
    "C1,,e2,2026-11-20T11:00:00Z,storage_snapshot,,2.5,eu,",
]


def test_known_event_refs_are_skipped_and_counted(
    inbox: Path, warehouse_url: str, instance
) -> None:
    config = settings(inbox, warehouse_url)
    put(inbox, "first.csv", FIRST)
    run(config, instance, as_of=AS_OF)
    put(inbox, "resent.csv", list(reversed(FIRST)))  # the same events, other bytes, other key

    resent = run(config, instance, as_of=AS_OF)
    put(
        inbox,
        "mixed.csv",
        [
            "C1,S1,e1,2026-11-20T10:00:00Z,api_request,9,,eu,pro",  # known ref, other value
            "C2,S2,e3,2026-11-20T12:00:00Z,api_request,4,,us,",
        ],
    )
    mixed = run(config, instance, as_of=AS_OF)

    [first_info] = ingested(resent)
    assert first_info["status"] == "loaded"
    assert (first_info["events_added"], first_info["duplicate_event_refs"]) == (0, 2)
    assert first_info["tables_updated"] == []
    assert resent.rollup_days == []
    [mixed_info] = ingested(mixed)
    assert (mixed_info["events_added"], mixed_info["duplicate_event_refs"]) == (1, 1)
    assert mixed_info["duplicates_with_other_values"] == 1
    assert mixed_info["tables_updated"] == ["usage_events"]
    assert ledger(warehouse_url) == [
        (1, "loaded", 2, 2, None),
        (
            2,
            "loaded",
            2,
            0,
            "File usage_events/resent.csv: 2 of 2 rows skipped as duplicates, their event_ref"
            " already ingested (first: row 2: event_ref 'e2' is already stored from file 1).",
        ),
        (
            3,
            "loaded",
            2,
            1,
            "File usage_events/mixed.csv: 1 of 2 rows skipped as duplicates, their event_ref"
            " already ingested (first: row 2: event_ref 'e1' is already stored from file 1).",
        ),
    ]
    assert stored_events(warehouse_url) == [
        (
            "e1",
            "C1",
            "S1",
            "api_request",
            "2026-11-20T10:00:00Z",
            "2026-11",
            '{"region": "eu", "plan": "pro"}',
            '{"api_calls": 3}',
            1,
        ),
        (
            "e2",
            "C1",
            None,
            "storage_snapshot",
            "2026-11-20T11:00:00Z",
            "2026-11",
            '{"region": "eu"}',
            '{"storage_gb": 2.5}',
            1,
        ),
        (
            "e3",
            "C2",
            "S2",
            "api_request",
            "2026-11-20T12:00:00Z",
            "2026-11",
            '{"region": "us"}',
            '{"api_calls": 4}',
            3,
        ),
    ]
    assert rows(warehouse_url, "usage_meter_daily") == [
        ("2026-11-20", "C1", "", "storage_snapshot", "storage_gb", 2.5, 1),
        ("2026-11-20", "C1", "S1", "api_request", "api_calls", 3.0, 1),
        ("2026-11-20", "C2", "S2", "api_request", "api_calls", 4.0, 1),
    ]
    assert rows(warehouse_url, "usage_event_rows") == []


def test_a_correction_replaces_the_files_events(inbox: Path, warehouse_url: str, instance) -> None:
    config = settings(inbox, warehouse_url)
    put(
        inbox,
        "nightly.csv",
        [*FIRST, "C1,S1,e9,2026-11-19T10:00:00Z,api_request,5,,eu,pro"],
    )
    run(config, instance, as_of=AS_OF)
    put(
        inbox,
        "nightly.csv",
        [
            "C1,S1,e1,2026-11-20T10:00:00Z,api_request,7,,eu,pro",
            "C1,S1,e4,2026-11-20T15:00:00Z,api_request,1,,eu,pro",
        ],
    )

    report = run(config, instance, as_of=AS_OF)

    [info] = ingested(report)
    assert (info["events_removed"], info["events_added"], info["duplicate_event_refs"]) == (3, 2, 0)
    assert report.rollup_days == ["2026-11-19", "2026-11-20"]
    assert [(e[0], e[7], e[8]) for e in stored_events(warehouse_url)] == [
        ("e1", '{"api_calls": 7}', 2),
        ("e4", '{"api_calls": 1}', 2),
    ]
    assert rows(warehouse_url, "usage_meter_daily") == [
        ("2026-11-20", "C1", "S1", "api_request", "api_calls", 8.0, 2),
    ]
    assert rows(warehouse_url, "ingested_files", columns="file_id, status") == [
        (1, "superseded"),
        (2, "loaded"),
    ]


# --- billing periods -----------------------------------------------------------------------

LATE_OCTOBER = [
    "C1,S1,e1,2026-10-31T23:30:00,api_request,3,,eu,pro",  # naive: New York time
    "C1,S1,e2,2026-11-01T03:30:00Z,api_request,4,,eu,pro",  # 23:30 EDT on 10-31
    "C1,S1,e3,2026-11-20T10:00:00Z,api_request,5,,eu,pro",
]


def test_events_in_a_final_period_are_errors(inbox: Path, warehouse_url: str, instance) -> None:
    config = settings(inbox, warehouse_url)
    put(inbox, "late.csv", LATE_OCTOBER)

    report = run(config, instance, as_of=AS_OF)

    assert ingested(report)[0]["status"] == "rejected"
    assert rows(warehouse_url, "usage_events") == []
    closed = "is in billing period 2026-10, final since 2026-11-01T12:00:00Z"
    assert rows(warehouse_url, "rejected_rows", columns="row_number, column_name, error") == [
        (
            2,
            "timestamp",
            f"timestamp '2026-10-31T23:30:00' {closed}: events of a final period are not accepted",
        ),
        (
            3,
            "timestamp",
            f"timestamp '2026-11-01T03:30:00Z' {closed}: events of a final period are not accepted",
        ),
    ]
    [check] = [c for c in report.failed_checks if c.startswith("inbox_file:closed_period_events")]
    assert "2 event(s) are dated in final billing periods (2026-10: 2)" in check


def test_on_hold_keeps_a_period_from_becoming_final(
    inbox: Path, warehouse_url: str, instance
) -> None:
    config = settings(inbox, warehouse_url, on_hold=["2026-10"])
    put(inbox, "late.csv", LATE_OCTOBER)

    report = run(config, instance, as_of=AS_OF)

    [info] = ingested(report)
    assert info["status"] == "loaded"
    assert info["billing_periods"] == {"2026-10": "on_hold", "2026-11": "open"}
    assert [(e[0], e[4], e[5]) for e in stored_events(warehouse_url)] == [
        ("e1", "2026-11-01T03:30:00Z", "2026-10"),
        ("e2", "2026-11-01T03:30:00Z", "2026-10"),
        ("e3", "2026-11-20T10:00:00Z", "2026-11"),
    ]
    assert rows(warehouse_url, "usage_meter_daily", columns="day, total, events") == [
        ("2026-10-31", 7.0, 2),
        ("2026-11-20", 5.0, 1),
    ]
    assert stored_periods(warehouse_url) == [
        ("2026-10", "on_hold", "2026-11-01T12:00:00Z"),
        ("2026-11", "open", "2026-12-01T13:00:00Z"),
    ]


def test_draft_becomes_final_at_period_end_plus_grace_across_dst() -> None:
    # October 2026 in New York ends at 00:00 EDT on 11-01 (04:00Z); DST ends at 02:00 that
    # night, so 8 elapsed hours of grace end at 07:00 EST = 12:00Z (not 08:00 local).
    end = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
    closes = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    tick = timedelta(microseconds=1)

    assert billing.period_start("2026-10", NY) == datetime(2026, 10, 1, 4, 0, tzinfo=UTC)
    assert billing.period_end("2026-10", NY) == end
    assert billing.closes_at("2026-10", NY, 8) == closes
    assert billing.status("2026-10", end - tick, NY, 8) == "open"
    assert billing.status("2026-10", end, NY, 8) == "draft"
    assert billing.status("2026-10", closes - tick, NY, 8) == "draft"
    assert billing.status("2026-10", closes, NY, 8) == "final"
    assert billing.status("2026-10", closes + timedelta(days=400), NY, 8, ["2026-10"]) == "on_hold"
    assert billing.status("2026-10", closes, NY, 8, ["2026-09"]) == "final"
    # March 2026 (DST starts 03-08): begins at 05:00Z (EST), ends at 04:00Z (EDT).
    assert billing.period_start("2026-03", NY) == datetime(2026, 3, 1, 5, 0, tzinfo=UTC)
    assert billing.closes_at("2026-03", NY, 0) == datetime(2026, 4, 1, 4, 0, tzinfo=UTC)
    assert billing.status("2026-03", datetime(2026, 4, 1, 4, 0, tzinfo=UTC), NY, 0) == "final"
    assert billing.period_of(end - tick, NY) == "2026-10"
    assert billing.period_of(end, NY) == "2026-11"
    assert billing.period_of(datetime(2026, 12, 31, 23, 30, tzinfo=NY), NY) == "2026-12"


def test_a_correction_may_not_change_a_final_period(
    inbox: Path, warehouse_url: str, instance
) -> None:
    config = settings(inbox, warehouse_url)
    october = [line.replace("2026-11-20", "2026-10-30") for line in FIRST]
    put(inbox, "nightly.csv", october)
    run(config, instance, as_of=datetime(2026, 10, 31, 12, 0, tzinfo=UTC))
    put(inbox, "nightly.csv", ["C1,S1,e7,2026-11-20T15:00:00Z,api_request,1,,eu,pro"])

    report = run(config, instance, as_of=AS_OF)

    [info] = ingested(report)
    assert info["status"] == "rejected"
    assert info["error"] == (
        "File usage_events/nightly.csv is rejected: it corrects file 1 (same key), whose 2"
        " event(s) in billing period 2026-10 are final, and a final period cannot change;"
        " send new events under a new file name instead."
    )
    assert [(e[0], e[8]) for e in stored_events(warehouse_url)] == [("e1", 1), ("e2", 1)]


# --- template and timestamps ---------------------------------------------------------------


def test_template_comes_from_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("USAGE_PIPELINE_CONFIG", "USAGE_PIPELINE_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"usage_events": USAGE}), encoding="utf-8")

    result = CliRunner().invoke(main, ["template", "usage_events", "--config", str(path)])

    assert result.exit_code == 0
    assert result.output == f"{HEADER}\n"
    assert FEEDS["usage_events"].template(PipelineConfig()) == (
        "customer_ref,subscription_ref,event_ref,timestamp,event"
    )


def test_a_column_outside_the_template_rejects_the_file(
    inbox: Path, sqlite_url: str, instance
) -> None:
    config = settings(inbox, sqlite_url)
    line = "C1,S1,e1,2026-11-20T10:00:00Z,api_request,3,,eu,pro"
    put(inbox, "extra.csv", [f"{line},10%"], header=f"{HEADER},discount")
    put(
        inbox,
        "no_meter.csv",
        [line[: line.rindex(",,")] + ",eu,pro"],
        header=HEADER.replace(",storage_gb", ""),
    )

    report = run(config, instance, as_of=AS_OF)

    errors = {f["file"]: f["error"] for f in ingested(report)}
    assert errors == {
        "usage_events/extra.csv": "File usage_events/extra.csv is rejected: unknown column"
        f" 'discount' (the usage_events template is: {HEADER}).",
        "usage_events/no_meter.csv": "File usage_events/no_meter.csv is rejected: required"
        " column storage_gb missing.",
    }
    assert rows(sqlite_url, "usage_events") == []


def test_optional_columns_may_be_left_out_and_receipt_time_is_used(
    inbox: Path, warehouse_url: str, instance
) -> None:
    config = settings(inbox, warehouse_url)
    put(
        inbox,
        "short.csv",
        ["C1,e1,storage_snapshot,,4,eu,pro"],
        header="Customer_Ref, EVENT_REF,event,api_calls,storage_gb,region,plan",
    )
    put(
        inbox,
        "stamps.csv",
        [
            "C1,,e2,1795168800,api_request,1,,,",  # epoch seconds: 2026-11-20T10:00:00Z
            "C1,,e3,1795168800.25,api_request,1,,,",
            "C1,,e4,,api_request,1,,,",  # blank: the receipt time
            "C1,,e5,2026-11-20 08:00,api_request,1,,,",  # naive: New York time
            "C1,,e6,2026-11-20T08:00:00+01:00,api_request,1,,,",
        ],
    )

    report = run(config, instance, as_of=AS_OF)

    assert [f["status"] for f in ingested(report)] == ["loaded", "loaded"]
    assert [(e[0], e[2], e[4]) for e in stored_events(warehouse_url)] == [
        ("e1", None, "2026-11-21T04:00:00Z"),
        ("e2", None, "2026-11-20T10:00:00Z"),
        ("e3", None, "2026-11-20T10:00:00.250000Z"),
        ("e4", None, "2026-11-21T04:00:00Z"),
        ("e5", None, "2026-11-20T13:00:00Z"),
        ("e6", None, "2026-11-20T07:00:00Z"),
    ]
    assert rows(
        warehouse_url, "usage_meter_daily", columns="day, subscription_ref, meter, total"
    ) == [
        ("2026-11-20", "", "api_calls", 5.0),
        ("2026-11-20", "", "storage_gb", 4.0),
    ]


def test_more_than_a_day_in_the_future_is_an_error(inbox: Path, sqlite_url: str, instance) -> None:
    config = settings(inbox, sqlite_url)
    put(
        inbox,
        "future.csv",
        [
            "C1,,e1,2026-11-22T12:00:00Z,api_request,1,,,",  # exactly one day ahead: fine
            "C1,,e2,2026-11-22T12:00:01Z,api_request,1,,,",
        ],
    )
    run(config, instance, as_of=AS_OF)
    put(
        inbox,
        "unstamped.csv",
        ["C1,e3,api_request,1,,,"],
        header="customer_ref,event_ref,event,api_calls,storage_gb,region,plan",
    )

    run(config, instance, as_of=datetime(2026, 11, 19, 12, 0, tzinfo=UTC))

    assert rows(sqlite_url, "rejected_rows", columns="file_id, row_number, error") == [
        (
            1,
            3,
            "timestamp '2026-11-22T12:00:01Z' is more than 1 day in the future"
            " (after 2026-11-22T12:00:00Z)",
        ),
        (
            2,
            2,
            "timestamp is missing, so the file's receipt time 2026-11-21T04:00:00Z is used, which"
            " is more than 1 day in the future (after 2026-11-20T12:00:00Z)",
        ),
    ]
    assert rows(sqlite_url, "usage_events") == []


def test_timestamp_parsing_rules() -> None:
    cells = pd.Series(
        [
            "2026-11-01T01:30:00",  # repeated at the DST change: the earlier (EDT) reading
            "2026-03-08T02:30:00",  # skipped by the DST change: forward by the gap (03:30 EDT)
            "2026-11-20",  # a date: midnight in New York
            "1795168800",
            "2026-11-20T10:00:00+01:00",
            "20/11/2026",
            None,
        ],
        dtype=object,
    )

    parsed = parse_instants(cells, NY)

    assert [None if pd.isna(t) else t.isoformat() for t in parsed] == [
        "2026-11-01T05:30:00+00:00",
        "2026-03-08T07:30:00+00:00",
        "2026-11-20T05:00:00+00:00",
        "2026-11-20T10:00:00+00:00",
        "2026-11-20T09:00:00+00:00",
        None,
        None,
    ]


# --- rollup and period tables ----------------------------------------------------------------


def test_meter_totals_per_day_and_period_states(inbox: Path, warehouse_url: str, instance) -> None:
    config = settings(inbox, warehouse_url, on_hold=["2026-09"])
    put(
        inbox,
        "halloween.csv",
        [
            "C1,S1,e1,2026-10-31T10:00:00-04:00,api_request,3,,eu,pro",
            "C1,S1,e2,2026-10-31T20:00:00-04:00,api_request,4.5,10,eu,pro",
            "C1,,e3,2026-10-31T23:30:00-04:00,storage_snapshot,,2,eu,",
            "C1,S1,e4,2026-11-01T00:30:00-04:00,api_request,0,,eu,pro",  # a real zero
            "C2,,e5,2026-10-31 22:00,api_request,1,,us,",
        ],
    )
    as_of = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)  # October is draft until 12:00Z

    report = run(config, instance, as_of=as_of)

    assert [f["status"] for f in ingested(report)] == ["loaded"]
    assert report.rollup_days == ["2026-10-31", "2026-11-01"]
    assert rows(warehouse_url, "usage_meter_daily") == [
        ("2026-10-31", "C1", "", "storage_snapshot", "storage_gb", 2.0, 1),
        ("2026-10-31", "C1", "S1", "api_request", "api_calls", 7.5, 2),
        ("2026-10-31", "C1", "S1", "api_request", "storage_gb", 10.0, 1),
        ("2026-10-31", "C2", "", "api_request", "api_calls", 1.0, 1),
        ("2026-11-01", "C1", "S1", "api_request", "api_calls", 0.0, 1),
    ]
    assert [e[7] for e in stored_events(warehouse_url)] == [
        '{"api_calls": 3}',
        '{"api_calls": 4.5, "storage_gb": 10}',
        '{"storage_gb": 2}',
        '{"api_calls": 0}',
        '{"api_calls": 1}',
    ]
    assert stored_periods(warehouse_url) == [
        ("2026-09", "on_hold", "2026-10-01T12:00:00Z"),
        ("2026-10", "draft", "2026-11-01T12:00:00Z"),
        ("2026-11", "open", "2026-12-01T13:00:00Z"),
    ]

    definitions = build_definitions(config)
    result = definitions.resolve_job_def(BILLING_JOB).execute_in_process(
        instance=instance, tags={AS_OF_TAG: "2026-11-01T12:00:00+00:00"}
    )

    assert result.success
    assert stored_periods(warehouse_url) == [
        ("2026-09", "on_hold", "2026-10-01T12:00:00Z"),
        ("2026-10", "final", "2026-11-01T12:00:00Z"),
        ("2026-11", "open", "2026-12-01T13:00:00Z"),
    ]
    [materialization] = result.get_asset_materialization_events()
    metadata = materialization.materialization.metadata
    assert metadata["periods"].value.splitlines()[2:] == [
        "| 2026-09 | on_hold | 2026-10-01T08:00-04:00 | 0 |",
        "| 2026-10 | final | 2026-11-01T07:00-05:00 | 4 |",
        "| 2026-11 | open | 2026-12-01T08:00-05:00 | 1 |",
    ]
    [check] = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == (HOLD_CHECK, False)
    assert check.description.startswith("On hold past their close: 2026-09;")
    schedule = definitions.resolve_schedule_def("billing_periods_schedule")
    assert (schedule.cron_schedule, schedule.default_status) == (
        "0 * * * *",
        dg.DefaultScheduleStatus.RUNNING,
    )


def test_check_reports_every_problem_without_a_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in (
        "USAGE_PIPELINE_CONFIG",
        "USAGE_PIPELINE_WAREHOUSE_URL",
        "USAGE_PIPELINE_TIMEZONE",
    ):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"usage_events": USAGE}), encoding="utf-8")
    # an hour ago: its billing period is always still open (check has no warehouse and
    # judges periods by the clock)
    stamp = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bad = drop(
        tmp_path,
        "usage.csv",
        [f"C1,S1,e1,{stamp},api_request,x,,eu,pro", "C1,S1,e1,,api_request,1,,eu,pro"],
        header=HEADER,
    )

    result = CliRunner().invoke(
        main, ["check", str(bad), "--feed", "usage_events", "--config", str(path)]
    )

    assert result.exit_code == 1
    assert result.output.splitlines()[1:4] == [
        "  rows: 2 total, 0 valid, 2 invalid",
        "  row 2, column api_calls: api_calls 'x' is not a number",
        "  row 3, column event_ref: event_ref 'e1' repeats row 2: an event_ref must be unique in"
        " a file",
    ]
    assert not (tmp_path / "data").exists()
