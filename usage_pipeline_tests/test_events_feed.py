"""SPEC §2.7 events: back-dated behaviour events, one per (identity, event, timestamp),
throttled per identity and event name whatever the arrival order, rows rejected singly."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from usage_pipeline.config import EventsConfig, PipelineConfig, parse_config
from usage_pipeline.demo_data import kissmetrics
from usage_pipeline.ingest import ingest_file
from usage_pipeline.sources import open_source
from usage_pipeline.throttle import kept_instants
from usage_pipeline.timestamps import parse_instants
from usage_pipeline.warehouse.engine import get_engine, read_connection
from usage_pipeline.warehouse.tables import events
from usage_pipeline_tests.helpers import drop, invoke, rows, run

HEADER = "identity,event,timestamp"
VIEWED = "Viewed Dashboard"
THROTTLE = EventsConfig(throttle=((VIEWED, timedelta(minutes=30)),))
AS_OF = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


@pytest.fixture
def config(inbox: Path, warehouse_url: str) -> PipelineConfig:
    return PipelineConfig(inbox=str(inbox), warehouse=warehouse_url, events=THROTTLE)


def kept(url: str) -> list[tuple]:
    """``events`` as (identity, event, UTC time HH:MM or ISO instant, properties, file_id)."""
    with read_connection(get_engine(url)) as conn:
        found = conn.execute(sa.select(events)).all()
    result = []
    for identity, event, occurred_at, properties, file_id in found:
        moment = (
            occurred_at.replace(tzinfo=timezone.utc)
            if occurred_at.tzinfo is None
            else occurred_at.astimezone(timezone.utc)
        )
        result.append((identity, event, moment.isoformat(), properties, file_id))
    return sorted(result)


def at(clock: str, day: str = "2026-11-20") -> str:
    return f"{day}T{clock}:00+00:00"


def files(report) -> list[tuple]:  # type: ignore[no-untyped-def]
    """(file, status, rows loaded, rows rejected) of each inbox_file materialisation (the
    run also reports an ``events`` materialisation whenever that table changed)."""
    return [
        (f["file"], f["status"], f["rows_loaded"], f["rows_rejected"])
        for f in report.files
        if "status" in f
    ]


def notes(report, key: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    found = next(f for f in report.files if f["file"] == key and "status" in f)
    return {k: v for k, v in found.items() if k.startswith("events_")}


# 10:00 kept; 10:10, 10:25 within 30 min of it; 10:30 exactly 30 min after it: kept;
# 10:50 within 30 min of 10:30; 11:05 is 35 min after 10:30: kept.
EARLY_VISITS = [
    f"alice,{VIEWED},2026-11-20T10:00:00Z",
    f"alice,{VIEWED},2026-11-20T10:10:00Z",
    "alice,Signed In,2026-11-20T10:01:00Z",
]
LATE_VISITS = [
    f"alice,{VIEWED},2026-11-20T10:25:00Z",
    f"alice,{VIEWED},2026-11-20T10:30:00Z",
    f"alice,{VIEWED},2026-11-20T10:50:00Z",
    f"alice,{VIEWED},2026-11-20T11:05:00Z",
    "alice,Signed In,2026-11-20T10:02:00Z",
    f"bob,{VIEWED},2026-11-20T10:05:00Z",
]
EXPECTED_KEPT = [
    ("alice", "Signed In", at("10:01"), "{}", 1),
    ("alice", "Signed In", at("10:02"), "{}", 1),
    ("alice", VIEWED, at("10:00"), "{}", 1),
    ("alice", VIEWED, at("10:30"), "{}", 1),
    ("alice", VIEWED, at("11:05"), "{}", 1),
    ("bob", VIEWED, at("10:05"), "{}", 1),
]
EXPECTED_DAILY = [("2026-11-20", "Signed In", 2, 1), ("2026-11-20", VIEWED, 4, 2)]


def test_throttle_keeps_first_visit_and_the_one_after_the_window(
    inbox: Path, config: PipelineConfig, instance
) -> None:
    drop(inbox, "events/history_2026-11-20.csv", EARLY_VISITS + LATE_VISITS, header=HEADER)

    report = run(config, instance, as_of=AS_OF)

    assert files(report) == [("events/history_2026-11-20.csv", "loaded", 9, 0)]
    assert notes(report, "events/history_2026-11-20.csv") == {
        "events_new": 9,
        "events_repeated": 0,
        "events_throttled": 3,
        "events_kept_added": 6,
        "events_kept_removed": 0,
    }
    assert report.rollup_days == ["2026-11-20"]
    assert kept(config.warehouse) == EXPECTED_KEPT
    assert rows(config.warehouse, "events_daily") == EXPECTED_DAILY


def test_same_kept_set_when_visits_arrive_in_reverse_order(
    inbox: Path, config: PipelineConfig, instance
) -> None:
    drop(inbox, "events/late_2026-11-20.csv", LATE_VISITS, header=HEADER)
    run(config, instance, as_of=AS_OF)
    # Alone, the later visits keep 10:25 (first), not 10:30 or 10:50, and 11:05.
    assert [(i, e, t) for i, e, t, _, _ in kept(config.warehouse)] == [
        ("alice", "Signed In", at("10:02")),
        ("alice", VIEWED, at("10:25")),
        ("alice", VIEWED, at("11:05")),
        ("bob", VIEWED, at("10:05")),
    ]
    assert rows(config.warehouse, "events_daily") == [
        ("2026-11-20", "Signed In", 1, 1),
        ("2026-11-20", VIEWED, 3, 2),
    ]

    drop(inbox, "events/early_2026-11-20.csv", EARLY_VISITS, header=HEADER)
    report = run(config, instance, as_of=AS_OF + timedelta(hours=1))

    assert notes(report, "events/early_2026-11-20.csv") == {
        "events_new": 3,
        "events_repeated": 0,
        "events_throttled": 1,  # 10:10
        "events_kept_added": 3,  # 10:00, 10:30, Signed In 10:01
        "events_kept_removed": 1,  # 10:25
    }
    assert report.rollup_days == ["2026-11-20"]
    # The same kept set as one file with every visit; each event keeps its own file.
    assert kept(config.warehouse) == [
        ("alice", "Signed In", at("10:01"), "{}", 2),
        ("alice", "Signed In", at("10:02"), "{}", 1),
        ("alice", VIEWED, at("10:00"), "{}", 2),
        ("alice", VIEWED, at("10:30"), "{}", 1),
        ("alice", VIEWED, at("11:05"), "{}", 1),
        ("bob", VIEWED, at("10:05"), "{}", 1),
    ]
    assert rows(config.warehouse, "events_daily") == EXPECTED_DAILY


def test_throttle_is_a_function_of_the_set_of_instants() -> None:
    t0 = datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
    minutes = [65, 0, 10, 25, 30, 50, 0]
    instants = [t0 + timedelta(minutes=m) for m in minutes]
    expected = [t0, t0 + timedelta(minutes=30), t0 + timedelta(minutes=65)]

    assert kept_instants(instants, timedelta(minutes=30)) == expected
    assert kept_instants(reversed(instants), timedelta(minutes=30)) == expected
    assert len(kept_instants(instants, None)) == 6  # no throttle: every distinct event


def test_timestamp_forms_name_instants() -> None:
    paris = ZoneInfo("Europe/Paris")
    cells = {
        "1763640000": "2025-11-20T12:00:00+00:00",  # epoch seconds (Kissmetrics)
        "1763640000.25": "2025-11-20T12:00:00.250000+00:00",
        "2025-11-20T13:00:00+01:00": "2025-11-20T12:00:00+00:00",
        "2025-11-20 12:00:00Z": "2025-11-20T12:00:00+00:00",
        "2025-11-20T13:00:00": "2025-11-20T12:00:00+00:00",  # naive: instance zone
        "2026-03-29T02:30:00": "2026-03-29T01:30:00+00:00",  # DST gap: forward by the gap
        "2026-10-25T02:30:00": "2026-10-25T00:30:00+00:00",  # DST repeat: first occurrence
        "2025-11-20": "2025-11-19T23:00:00+00:00",  # a date: local midnight
    }
    parsed = parse_instants(pd.Series([*cells, "20/11/2025", "soon", None]), paris)

    assert [t.isoformat() for t in parsed[: len(cells)]] == list(cells.values())
    assert parsed[len(cells) :].isna().all()


def test_floor_date_and_future_are_row_errors(
    inbox: Path, config: PipelineConfig, instance
) -> None:
    as_of = datetime(2026, 11, 19, 12, 0, tzinfo=timezone.utc)
    good = [f"u{n},Signed In,2026-11-18T{n % 24:02d}:00:00Z" for n in range(76)]
    bad = [
        "u1,Signed In,2008-12-31T23:59:59Z",  # row 79: one second before the floor
        "u1,Signed In,2026-11-20T12:00:01Z",  # row 80: one day and one second after as-of
        ",Signed In,2026-11-18T10:00:00Z",  # row 81: no identity
        "u1,Signed In,yesterday",  # row 82
    ]
    edges = [
        "edge,Signed In,2009-01-01T00:00:00Z",  # exactly the floor: accepted
        "edge,Signed In,1763640000",  # epoch 2025-11-20T12:00:00Z
        "edge,Signed In,2026-11-20T12:00:00Z",  # exactly one day after as-of: accepted
    ]
    drop(inbox, "events/history.csv", good + [edges[0]] + bad + edges[1:], header=HEADER)
    drop(inbox, "events/mostly_bad.csv", ["u1,Signed In,1999-01-01T00:00:00Z"], header=HEADER)

    report = run(config, instance, as_of=as_of)

    assert files(report) == [
        ("events/history.csv", "loaded", 79, 4),
        ("events/mostly_bad.csv", "rejected", 0, 1),
    ]
    history_id = 1
    assert rows(config.warehouse, "rejected_rows") == [
        (
            history_id,
            79,
            "timestamp",
            "2008-12-31T23:59:59Z",
            "timestamp '2008-12-31T23:59:59Z' is before the floor date 2009-01-01"
            " (events.floor_date)",
        ),
        (
            history_id,
            80,
            "timestamp",
            "2026-11-20T12:00:01Z",
            "timestamp '2026-11-20T12:00:01Z' is more than 1 day after the run time"
            " 2026-11-19T12:00:00+00:00",
        ),
        (history_id, 81, "identity", None, "identity is missing"),
        (
            history_id,
            82,
            "timestamp",
            "yesterday",
            "timestamp 'yesterday' is not an ISO 8601 timestamp or epoch seconds",
        ),
        (
            2,
            2,
            "timestamp",
            "1999-01-01T00:00:00Z",
            "timestamp '1999-01-01T00:00:00Z' is before the floor date 2009-01-01"
            " (events.floor_date)",
        ),
    ]
    assert [(i, t) for i, _, t, _, _ in kept(config.warehouse) if i == "edge"] == [
        ("edge", "2009-01-01T00:00:00+00:00"),
        ("edge", "2025-11-20T12:00:00+00:00"),
        ("edge", "2026-11-20T12:00:00+00:00"),
    ]
    daily = rows(config.warehouse, "events_daily")
    assert daily == [
        ("2009-01-01", "Signed In", 1, 1),
        ("2025-11-20", "Signed In", 1, 1),
        ("2026-11-18", "Signed In", 76, 76),
        ("2026-11-20", "Signed In", 1, 1),
    ]


def test_reimporting_the_same_history_adds_nothing(
    inbox: Path, warehouse_url: str, instance
) -> None:
    config = PipelineConfig(
        inbox=str(inbox), warehouse=warehouse_url, timezone="America/New_York", events=THROTTLE
    )
    tz = ZoneInfo("America/New_York")
    history = [
        # (identity, event, epoch seconds, plan)
        ("acme-001-user-1", VIEWED, datetime(2025, 3, 9, 6, 30, tzinfo=timezone.utc), "Pro"),
        ("acme-001-user-1", VIEWED, datetime(2025, 3, 9, 6, 45, tzinfo=timezone.utc), "Pro"),
        ("acme-001-user-1", VIEWED, datetime(2025, 3, 9, 7, 40, tzinfo=timezone.utc), "Pro"),
        ("acme-001-user-2", "Signed In", datetime(2024, 6, 1, 3, 0, tzinfo=timezone.utc), ""),
        ("acme-002-user-1", "Exported Report", datetime(2019, 12, 31, 23, 0, tzinfo=tz), "Free"),
    ]
    epoch_lines = [f"{i},{e},{int(t.timestamp())},{p}" for i, e, t, p in history]
    # A repeat inside the first file is the same event.
    drop(
        inbox,
        "events/kissmetrics/export.csv",
        [*epoch_lines, epoch_lines[0]],
        "identity,event,timestamp,Plan",
    )
    first = run(config, instance, as_of=AS_OF)
    before = {t: rows(config.warehouse, t) for t in ("events_daily",)}
    before_events = kept(config.warehouse)

    assert notes(first, "events/kissmetrics/export.csv") == {
        "events_new": 5,
        "events_repeated": 1,
        "events_throttled": 1,
        "events_kept_added": 4,
        "events_kept_removed": 0,
    }
    # Days are instance-zone days (America/New_York): 2025-03-09 06:30Z is 01:30 EST.
    assert before["events_daily"] == [
        ("2019-12-31", "Exported Report", 1, 1),
        ("2024-05-31", "Signed In", 1, 1),
        ("2025-03-09", VIEWED, 2, 1),
    ]
    assert before_events == [
        ("acme-001-user-1", VIEWED, "2025-03-09T06:30:00+00:00", '{"plan": "Pro"}', 1),
        ("acme-001-user-1", VIEWED, "2025-03-09T07:40:00+00:00", '{"plan": "Pro"}', 1),
        ("acme-001-user-2", "Signed In", "2024-06-01T03:00:00+00:00", "{}", 1),
        ("acme-002-user-1", "Exported Report", "2020-01-01T04:00:00+00:00", '{"plan": "Free"}', 1),
    ]

    # The same history re-exported: other key, rows reversed, ISO 8601 timestamps (with an
    # offset, or naive in the instance zone), other property values: nothing is added.
    iso_lines = [
        f"{i},{e},{t.astimezone(tz).replace(tzinfo=None).isoformat()},Enterprise"
        if n % 2
        else f"{i},{e},{t.isoformat()},Enterprise"
        for n, (i, e, t, _) in enumerate(history)
    ]
    drop(
        inbox, "events/reimport/export_again.csv", iso_lines[::-1], "identity,event,timestamp,Plan"
    )
    second = run(config, instance, as_of=AS_OF + timedelta(days=1))

    assert files(second) == [("events/reimport/export_again.csv", "loaded", 5, 0)]
    assert notes(second, "events/reimport/export_again.csv") == {
        "events_new": 0,
        "events_repeated": 5,
        "events_throttled": 0,
        "events_kept_added": 0,
        "events_kept_removed": 0,
    }
    assert second.rollup_days == []
    assert kept(config.warehouse) == before_events  # properties: the first file's
    assert {t: rows(config.warehouse, t) for t in before} == before


def test_properties_identities_and_a_correction(
    inbox: Path, config: PipelineConfig, instance
) -> None:
    header = "Identity,EVENT,timestamp,Plan,Browser"
    drop(
        inbox,
        "events/a.csv",
        [
            f"ann,{VIEWED},2026-11-20T10:00:00Z,Pro,Firefox",
            "ann,Signed In,2026-11-19T09:00:00Z,,Safari",  # only a.csv has it
            'bob,Signed In,2026-11-20T08:00:00Z,"Team, annual",',
            "cy,Signed In,2026-11-20T08:30:00Z,,",
        ],
        header=header,
    )
    drop(
        inbox,
        "events/b.csv",
        [
            f"ann,{VIEWED},2026-11-20T10:20:00Z,Pro,Chrome",  # throttled by 10:00
            "bob,Signed In,2026-11-20T08:00:00Z,Team,Edge",  # a.csv had it first
            "dee,Signed In,2026-11-20T09:00:00Z,Free,Edge",
        ],
        header="identity,event,timestamp, plan ,BROWSER",  # other spellings: the same keys
    )
    run(config, instance, as_of=AS_OF)

    assert kept(config.warehouse) == [
        ("ann", "Signed In", at("09:00", "2026-11-19"), '{"browser": "Safari"}', 1),
        ("ann", VIEWED, at("10:00"), '{"browser": "Firefox", "plan": "Pro"}', 1),
        ("bob", "Signed In", at("08:00"), '{"plan": "Team, annual"}', 1),
        ("cy", "Signed In", at("08:30"), "{}", 1),
        ("dee", "Signed In", at("09:00"), '{"browser": "Edge", "plan": "Free"}', 2),
    ]
    assert rows(config.warehouse, "events_daily") == [
        ("2026-11-19", "Signed In", 1, 1),
        ("2026-11-20", "Signed In", 3, 3),
        ("2026-11-20", VIEWED, 1, 1),
    ]

    # Correction of a.csv: ann's 2026-11-19 sign-in and 10:00 visit are gone (so the 10:20
    # visit is no longer throttled), bob's sign-in stays (b.csv has it, with b's properties).
    drop(
        inbox,
        "events/a.csv",
        ["cy,Signed In,2026-11-20T08:30:00Z,,", "cy,Signed In,2026-11-20T08:45:00Z,,"],
        header=header,
    )
    report = run(config, instance, as_of=AS_OF + timedelta(hours=1))

    assert files(report) == [("events/a.csv", "loaded", 2, 0)]
    assert notes(report, "events/a.csv") == {
        "events_new": 1,
        "events_repeated": 1,
        "events_throttled": 0,
        "events_kept_added": 2,  # ann 10:20, cy 08:45
        "events_kept_removed": 2,  # ann 2026-11-19 sign-in, ann 10:00
    }
    assert report.rollup_days == ["2026-11-19", "2026-11-20"]
    assert rows(config.warehouse, "ingested_files", columns="file_id, status") == [
        (1, "superseded"),
        (2, "loaded"),
        (3, "loaded"),
    ]
    assert kept(config.warehouse) == [
        ("ann", VIEWED, at("10:20"), '{"browser": "Chrome", "plan": "Pro"}', 2),
        ("bob", "Signed In", at("08:00"), '{"browser": "Edge", "plan": "Team"}', 2),
        ("cy", "Signed In", at("08:30"), "{}", 3),
        ("cy", "Signed In", at("08:45"), "{}", 3),
        ("dee", "Signed In", at("09:00"), '{"browser": "Edge", "plan": "Free"}', 2),
    ]
    assert rows(config.warehouse, "events_daily") == [
        ("2026-11-20", "Signed In", 4, 3),
        ("2026-11-20", VIEWED, 1, 1),
    ]
    assert rows(config.warehouse, "event_candidates", columns="DISTINCT file_id") == [(2,), (3,)]


def test_cli_template_and_check(project: Path) -> None:
    template = invoke("template", "events")
    assert template.exit_code == 0
    assert template.output == "identity,event,timestamp\n"

    good = drop(
        project,
        "events_good.csv",
        [f"u{n},Signed In,2025-06-0{1 + n % 2}T10:00:00Z,Pro" for n in range(40)]
        + ["u9,Signed In,2008-06-01T10:00:00Z,Pro"],
        header="identity,event,timestamp,plan",
    )
    bad = drop(project, "events_bad.csv", ["u1,Signed In"], header="identity,event")

    ok = invoke("check", str(good), "--feed", "events")
    rejected = invoke("check", str(bad), "--feed", "events")

    assert ok.exit_code == 0, ok.output
    assert ok.output.splitlines() == [
        f"File {good} as feed events:",
        "  rows: 41 total, 40 valid, 1 invalid",
        "  days: 2025-06-01, 2025-06-02",
        "  row 42, column timestamp: timestamp '2008-06-01T10:00:00Z' is before the floor"
        " date 2009-01-01 (events.floor_date)",
        "OK: the file would be loaded (invalid rows skipped).",
    ]
    assert rejected.exit_code == 1
    assert rejected.output.splitlines()[-1] == (
        "REJECTED: the file would be rejected: required column timestamp missing."
    )
    assert not (project / "data" / "warehouse.db").exists()


def test_kissmetrics_demo_history_and_reimport(inbox: Path, sqlite_url: str) -> None:
    tz = ZoneInfo("America/New_York")
    settings = parse_config({"events": kissmetrics.CONFIG})
    config = PipelineConfig(
        inbox=str(inbox), warehouse=sqlite_url, timezone=tz.key, events=settings.events
    )
    first_night = date(2026, 11, 14)
    drops = kissmetrics.drops(first_night, 7, tz)
    assert settings.events.window(VIEWED) == timedelta(minutes=30)
    assert len({d.key for d in drops}) == len(drops)
    assert {d.night for d in drops} <= {first_night + timedelta(days=n) for n in range(7)}
    for item in drops:
        path = inbox / item.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item.content)
    source = open_source(str(inbox))
    engine = get_engine(sqlite_url)
    outcomes = {}
    for item in sorted(drops, key=lambda d: (d.night, d.key)):
        morning = datetime.combine(item.night + timedelta(days=1), datetime.min.time(), tz)
        outcome = ingest_file(engine, source, source.stat(item.key), config, as_of=morning)
        outcomes[item.key] = outcome
    history = next(o for k, o in outcomes.items() if k.startswith("events/kissmetrics/kiss"))
    reimport = next(o for k, o in outcomes.items() if "/reexport/" in k)
    assert history.status == "loaded" and history.rows_loaded > 1000
    assert len(history.days_touched) > 30
    assert reimport.status == "loaded" and reimport.rows_loaded == history.rows_loaded
    assert reimport.notes["events_new"] == 0 and reimport.days_touched == []
    nightly = [o for k, o in outcomes.items() if k not in (history.source_key, reimport.source_key)]
    assert len(nightly) == 7 and all(o.status == "loaded" for o in nightly)
    assert all(o.notes["events_new"] > 0 for o in nightly)
