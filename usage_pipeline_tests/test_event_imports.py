"""Imports of existing tables into ``events`` (``events/<import>/``, ``events.imports``): the
seed's billing table read through a value map plus an extra ``Billed`` event per row, a fixed
event with renamed properties, row errors, settings errors, ``template`` and ``check``, and
the events landing under the plain feed's dedupe and throttle rules on both databases."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import yaml

from usage_pipeline.config import ConfigError, parse_config
from usage_pipeline.feeds import FEEDS
from usage_pipeline.feeds.events.imports import import_rows
from usage_pipeline.ingest import ingest_file
from usage_pipeline.sources import open_source
from usage_pipeline.warehouse.engine import get_engine, read_connection
from usage_pipeline.warehouse.tables import events
from usage_pipeline_tests.helpers import drop, invoke, rows
from usage_pipeline_tests.test_feed_rows import chunk, prepared, records

BILLING_HEADER = "id,user_id,amount,plan_id,type,created_at"
BILLING = [
    "1,1,100,1,signup,2009-10-01 00:00:00",
    "2,2,100,1,signup,2009-10-05 00:00:00",
    "3,1,150,2,upgrade,2009-11-01 00:00:00",
]
BILLING_IMPORT = {
    "identity": "user_id",
    "timestamp": "created_at",
    "event": {
        "column": "type",
        "names": {"signup": "Signed Up", "upgrade": "Upgraded", "downgrade": "Downgraded"},
    },
    "properties": {"plan_id": "Plan"},
    "also": [{"event": "Billed", "properties": {"amount": "amount"}}],
}
VIEWS_IMPORT = {
    "identity": "user_id",
    "timestamp": "viewed_at",
    "event": "Viewed Dashboard",
    "properties": {"url": "Page"},
}
SETTINGS = {
    "events": {
        "throttle": {"Viewed Dashboard": "30m"},
        "imports": {"billing": BILLING_IMPORT, "page_views": VIEWS_IMPORT},
    }
}
UNMAPPED = (
    "type 'refund' is not mapped to an event (events.imports.billing.event.names maps"
    " 'downgrade', 'signup', 'upgrade')"
)
AS_OF = datetime(2026, 11, 21, 12, tzinfo=timezone.utc)


def _cells(header: str, lines: list[str]):  # type: ignore[no-untyped-def]
    return chunk(header.split(","), *[line.split(",") for line in lines])


# --- the pure transform ---------------------------------------------------------------------


def test_the_billing_table_makes_its_events_and_refuses_an_unmapped_type() -> None:
    context = prepared("events", parse_config(SETTINGS), import_name="billing")
    raw = _cells(BILLING_HEADER, [*BILLING, "4,3,50,1,refund,2009-11-02 00:00:00"])

    result = import_rows(raw, context)
    found, errors = records(result)

    def event(row: int, who: str, name: str, at: str, properties: str) -> dict:
        return {
            "row_number": row,
            "identity": who,
            "event": name,
            "occurred_at": f"{at} 00:00:00.000000",
            "day": at,
            "properties": properties,
        }

    assert found == [
        event(2, "1", "Signed Up", "2009-10-01", '{"amount": "100", "id": "1", "plan": "1"}'),
        event(2, "1", "Billed", "2009-10-01", '{"amount": "100"}'),
        event(3, "2", "Signed Up", "2009-10-05", '{"amount": "100", "id": "2", "plan": "1"}'),
        event(3, "2", "Billed", "2009-10-05", '{"amount": "100"}'),
        event(4, "1", "Upgraded", "2009-11-01", '{"amount": "150", "id": "3", "plan": "2"}'),
        event(4, "1", "Billed", "2009-11-01", '{"amount": "150"}'),
    ]
    assert errors == [
        {"row_number": 5, "column_name": "type", "value": "refund", "error": UNMAPPED}
    ]
    assert (result.loaded_rows, result.invalid_rows) == (3, 1)


def test_a_fixed_event_keeps_every_other_column_under_its_key() -> None:
    context = prepared("events", parse_config(SETTINGS), import_name="page_views")
    raw = chunk(
        ["user_id", "viewed_at", "url", "Browser"],
        ["u1", "2026-11-20 10:00:00", "/dashboard", "Edge"],
        [None, "2026-11-20 10:05:00", "/dashboard", None],
        ["u2", "yesterday", None, None],
    )

    found, errors = records(import_rows(raw, context))

    assert [(r["identity"], r["event"], r["properties"]) for r in found] == [
        ("u1", "Viewed Dashboard", '{"browser": "Edge", "page": "/dashboard"}')
    ]
    assert errors == [
        {"row_number": 3, "column_name": "user_id", "value": None, "error": "user_id is missing"},
        {
            "row_number": 4,
            "column_name": "viewed_at",
            "value": "yesterday",
            "error": "viewed_at 'yesterday' is not an ISO 8601 timestamp or epoch seconds",
        },
    ]


def test_headers_of_imports_and_of_folders_that_are_not_imports() -> None:
    config = parse_config(SETTINGS)
    feed = FEEDS["events"]

    def problem(header: str, folder: str | None) -> str | None:
        context = prepared("events", config, import_name=folder)
        return feed.header_problem(header.split(","), context)

    assert problem(BILLING_HEADER, "billing") is None
    assert problem("user_id,created_at,type", "billing") == (
        "required columns plan_id, amount of events import 'billing' missing (its template is:"
        " user_id,created_at,type,plan_id,amount)"
    )
    assert problem(f"{BILLING_HEADER},plan", "billing") == (
        "columns 'plan_id' and 'plan' would both be property 'plan' of the row's event:"
        " rename one in events.imports.billing.properties"
    )
    # a plain events file may sit in any sub-folder; a typo in an import folder says so
    assert problem("identity,event,timestamp", "2026") is None
    assert problem(BILLING_HEADER, "biling") == (
        "required columns identity, event, timestamp missing (folder 'biling' under events/ is"
        " not a configured events import, so the file was read as plain events (configured"
        " events imports: billing, page_views))"
    )


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("billing", "message"),
    [
        (
            {**BILLING_IMPORT, "event": None},
            "Config key 'events.imports.billing.event' is missing: give an event name (event:"
            " Signed Up) or a column and its value map (event: {column: type, names: {signup:"
            " Signed Up}}).",
        ),
        (
            {**BILLING_IMPORT, "event": {"column": "type"}},
            "Config key 'events.imports.billing.event' needs both column and names: give an"
            " event name (event: Signed Up) or a column and its value map (event: {column:"
            " type, names: {signup: Signed Up}}).",
        ),
        (
            {**BILLING_IMPORT, "event": {"column": "type", "names": {}}},
            "Config key 'events.imports.billing.event.names' must be a non-empty mapping of"
            " column values to event names (names: {signup: Signed Up}), got {}.",
        ),
        (
            {**BILLING_IMPORT, "event": {"colum": "type"}},
            "Unknown config key 'events.imports.billing.event.colum' (known keys: column, name,"
            " names).",
        ),
        (
            {**BILLING_IMPORT, "timestamp": "User_ID"},
            "Config key 'events.imports.billing' uses column 'user_id' as both its identity and"
            " its timestamp column: they must differ.",
        ),
        (
            {**BILLING_IMPORT, "also": [{"event": "Upgraded"}]},
            "Config key 'events.imports.billing' gives a row two events named 'Upgraded' (event"
            " and also[0].event): the events of one row need distinct names.",
        ),
        (
            {**BILLING_IMPORT, "properties": {"plan": "tier", "Plan ": "level"}},
            "Config key 'events.imports.billing.properties' names column 'plan' twice.",
        ),
        (
            {**BILLING_IMPORT, "properties": {"plan_id": "plan", "tier": "PLAN"}},
            "Config key 'events.imports.billing.properties' renames columns 'plan_id' and"
            " 'tier' both to property 'plan'.",
        ),
        (
            {**BILLING_IMPORT, "also": [{"event": "Billed", "props": {}}]},
            "Unknown config key 'events.imports.billing.also[0].props' (known keys: event,"
            " properties).",
        ),
        (
            {key: v for key, v in BILLING_IMPORT.items() if key != "identity"},
            "Config key 'events.imports.billing.identity' must be a non-empty string, got None.",
        ),
    ],
)
def test_bad_settings_are_one_sentence_naming_the_key(billing: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({"events": {"imports": {"billing": billing}}})
    assert str(error.value) == message


def test_settings_survive_the_dagster_resource() -> None:
    from usage_pipeline.defs.resources import PipelineResource

    config = parse_config(SETTINGS)
    imp = config.events.import_config("billing")
    assert imp is not None and imp.names[0] == ("signup", "Signed Up")
    assert (imp.properties, imp.also[0].properties) == (
        (("plan_id", "plan"),),
        (("amount", "amount"),),
    )
    assert PipelineResource.from_config(config).settings() == config


# --- template and check ---------------------------------------------------------------------


def _config_file(project: Path, **extra: object) -> str:
    path = project / "pipeline.yaml"
    path.write_text(yaml.safe_dump({**SETTINGS, **extra}), encoding="utf-8")
    return str(path)


def test_template_prints_the_import_header(project: Path) -> None:
    config = _config_file(project)

    billing = invoke("template", "events", "--import", "billing", "--config", config)
    views = invoke("template", "events", "--import", "page_views", "--config", config)
    plain = invoke("template", "events", "--config", config)
    unknown = invoke("template", "events", "--import", "users", "--config", config)

    assert billing.exit_code == 0
    assert billing.output == "user_id,created_at,type,plan_id,amount\n"
    assert views.output == "user_id,viewed_at,url\n"
    assert plain.output == "identity,event,timestamp\n"
    assert unknown.exit_code == 2
    assert unknown.output == (
        "error: The events import 'users' is not configured (configured events imports:"
        " billing, page_views).\n"
    )


def test_check_shows_the_events_of_each_row(project: Path) -> None:
    config = _config_file(project, max_reject_ratio=0.5)
    path = drop(
        project, "billing.csv", [*BILLING, "4,3,50,1,refund,2009-11-02 00:00:00"], BILLING_HEADER
    )
    views = drop(
        project,
        "views.csv",
        ["u1,2026-11-20 10:00:00,/dashboard", "u1,2026-11-20 10:10:00,/dashboard"],
        "user_id,viewed_at,url",
    )

    result = invoke(
        "check", str(path), "--feed", "events", "--import", "billing", "--config", config
    )
    throttled = invoke(
        "check", str(views), "--feed", "events", "--import", "page_views", "--config", config
    )
    unknown = invoke("check", str(path), "--feed", "events", "--import", "x", "--config", config)

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"File {path} as feed events:",
        "  rows: 4 total, 3 valid, 1 invalid",
        "  days: 2009-10-01, 2009-10-05, 2009-11-01",
        '  row 2: user_id \'1\' at 2009-10-01 00:00:00+00:00 -> Signed Up {"amount": "100",'
        ' "id": "1", "plan": "1"}; Billed {"amount": "100"}',
        '  row 3: user_id \'2\' at 2009-10-05 00:00:00+00:00 -> Signed Up {"amount": "100",'
        ' "id": "2", "plan": "1"}; Billed {"amount": "100"}',
        '  row 4: user_id \'1\' at 2009-11-01 00:00:00+00:00 -> Upgraded {"amount": "150",'
        ' "id": "3", "plan": "2"}; Billed {"amount": "150"}',
        "  row 5: invalid, no events",
        f"  row 5, column type: {UNMAPPED}",
        "OK: the file would be loaded (invalid rows skipped).",
    ]
    assert throttled.output.splitlines()[3:6] == [
        "  Viewed Dashboard is throttled: per identity, one event per 30m is kept",
        "  row 2: user_id 'u1' at 2026-11-20 10:00:00+00:00 -> Viewed Dashboard"
        ' {"page": "/dashboard"}',
        "  row 3: user_id 'u1' at 2026-11-20 10:10:00+00:00 -> Viewed Dashboard"
        ' {"page": "/dashboard"}',
    ]
    assert unknown.exit_code == 2
    assert unknown.output == (
        "error: The events import 'x' is not configured (configured events imports: billing,"
        " page_views).\n"
    )


# --- the warehouse: dedupe, throttle, rejected rows -----------------------------------------


def _kept(url: str) -> list[tuple]:
    """``events`` as (identity, event, UTC instant, properties)."""
    with read_connection(get_engine(url)) as conn:
        found = conn.execute(sa.select(events.c[:4])).all()
    result = []
    for identity, event, moment, properties in found:
        aware = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
        result.append((identity, event, aware.astimezone(timezone.utc).isoformat(), properties))
    return sorted(result)


def test_imports_land_in_events_once_and_throttled(inbox: Path, warehouse_url: str) -> None:
    settings = {**SETTINGS, "inbox": str(inbox), "warehouse": warehouse_url}
    config = parse_config({**settings, "max_reject_ratio": 0.2})
    # the export, an unmapped row, and the export again inside the same file
    lines = [*BILLING, "4,3,50,1,refund,2009-11-02 00:00:00", *BILLING]
    drop(inbox, "events/billing/billing_2026-11-20.csv", lines, BILLING_HEADER)
    drop(inbox, "events/billing/again/billing_copy.csv", BILLING[::-1], BILLING_HEADER)
    views = ["u1,2026-11-20 10:00:00,/a", "u1,2026-11-20 10:10:00,/b", "u1,2026-11-20 10:31:00,/c"]
    drop(inbox, "events/page_views/views.csv", views, "user_id,viewed_at,url")
    source, engine = open_source(str(inbox)), get_engine(warehouse_url)

    outcomes = [
        ingest_file(engine, source, source.stat(key), config, as_of=AS_OF)
        for key in (
            "events/billing/billing_2026-11-20.csv",
            "events/billing/again/billing_copy.csv",
            "events/page_views/views.csv",
        )
    ]

    assert [(o.status, o.rows_loaded, o.rows_rejected) for o in outcomes] == [
        ("loaded", 6, 1),
        ("loaded", 3, 0),
        ("loaded", 3, 0),
    ]
    assert outcomes[1].notes["events_new"] == 0 and outcomes[1].days_touched == []
    assert outcomes[2].notes["events_throttled"] == 1
    assert _kept(warehouse_url) == [
        ("1", "Billed", "2009-10-01T00:00:00+00:00", '{"amount": "100"}'),
        ("1", "Billed", "2009-11-01T00:00:00+00:00", '{"amount": "150"}'),
        (
            "1",
            "Signed Up",
            "2009-10-01T00:00:00+00:00",
            '{"amount": "100", "id": "1", "plan": "1"}',
        ),
        ("1", "Upgraded", "2009-11-01T00:00:00+00:00", '{"amount": "150", "id": "3", "plan": "2"}'),
        ("2", "Billed", "2009-10-05T00:00:00+00:00", '{"amount": "100"}'),
        (
            "2",
            "Signed Up",
            "2009-10-05T00:00:00+00:00",
            '{"amount": "100", "id": "2", "plan": "1"}',
        ),
        ("u1", "Viewed Dashboard", "2026-11-20T10:00:00+00:00", '{"page": "/a"}'),
        ("u1", "Viewed Dashboard", "2026-11-20T10:31:00+00:00", '{"page": "/c"}'),
    ]
    assert rows(
        warehouse_url, "rejected_rows", columns="row_number, column_name, value, error"
    ) == [(5, "type", "refund", UNMAPPED)]


def test_the_demo_tables_load_with_one_unmapped_row(inbox: Path, sqlite_url: str) -> None:
    from usage_pipeline.demo_data import kissmetrics, kissmetrics_tables

    tz = ZoneInfo("UTC")
    config = parse_config(
        {"inbox": str(inbox), "warehouse": sqlite_url, "events": kissmetrics.CONFIG}
    )
    first = date(2026, 11, 14)
    drops = kissmetrics_tables.drops(first, 7, tz)
    for item in drops:
        (inbox / item.key).parent.mkdir(parents=True, exist_ok=True)
        (inbox / item.key).write_bytes(item.content)
    source, engine = open_source(str(inbox)), get_engine(sqlite_url)
    as_of = datetime(2026, 11, 15, 1, 30, tzinfo=timezone.utc)

    outcomes = {
        d.key.split("/")[1]: ingest_file(engine, source, source.stat(d.key), config, as_of=as_of)
        for d in drops
    }

    assert {name: (o.status, o.rows_rejected) for name, o in outcomes.items()} == {
        "users": ("loaded", 0),
        "billing": ("loaded", 1),
        "page_views": ("loaded", 0),
    }
    assert outcomes["users"].rows_loaded == 24
    # billing's 24 sign-ups carry the users' own sign-up times: one Signed Up per user
    assert outcomes["billing"].notes["events_repeated"] == 24
    assert rows(sqlite_url, "events WHERE event = 'Signed Up'", columns="COUNT(*)") == [(24,)]
    assert outcomes["page_views"].notes["events_throttled"] > 0
