"""SPEC §2.7: ``events.properties`` keys are the lower-cased column names, so files spelling
a column ``Plan`` and ``plan`` give one key; a warehouse of the previous schema version has
its stored keys lower-cased once when it is opened."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from usage_pipeline.config import PipelineConfig
from usage_pipeline.warehouse import migrations
from usage_pipeline.warehouse.engine import SCHEMA_VERSION, dispose_engines, get_engine
from usage_pipeline_tests.helpers import drop, rows, run

AS_OF = datetime(2026, 11, 21, 12, tzinfo=timezone.utc)


def test_two_spellings_of_a_column_give_one_key(inbox: Path, warehouse_url: str) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url)
    drop(
        inbox,
        "events/a.csv",
        ["ann,Signed In,2026-11-20T08:00:00Z,Pro"],
        "identity,event,timestamp,Plan",
    )
    drop(
        inbox,
        "events/b.csv",
        ["bob,Signed In,2026-11-20T09:00:00Z,Team"],
        "identity,event,timestamp,PLAN",
    )
    drop(
        inbox,
        "events/c.csv",
        ["cy,Signed In,2026-11-20T10:00:00Z,Free"],
        "identity,event,timestamp,plan",
    )

    with dg.DagsterInstance.ephemeral() as instance:
        run(config, instance, as_of=AS_OF)

    assert rows(warehouse_url, "events", columns="identity, properties") == [
        ("ann", '{"plan": "Pro"}'),
        ("bob", '{"plan": "Team"}'),
        ("cy", '{"plan": "Free"}'),
    ]


def test_an_older_warehouse_gets_its_keys_lower_cased(inbox: Path, warehouse_url: str) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url)
    drop(
        inbox,
        "events/a.csv",
        [
            "ann,Signed In,2026-11-20T08:00:00Z,Pro,Edge",
            "bob,Signed In,2026-11-20T09:00:00Z,,Safari",
            "cy,Signed In,2026-11-20T10:00:00Z,,",
        ],
        "identity,event,timestamp,Plan,browser",
    )
    with dg.DagsterInstance.ephemeral() as instance:
        run(config, instance, as_of=AS_OF)
    # what the previous version stored: keys as the file spelled them, in that key order
    old = {
        "ann": '{"Plan": "Pro", "browser": "Edge"}',
        "bob": '{"browser": "Safari"}',
        "cy": "{}",
    }
    with get_engine(warehouse_url).begin() as conn:
        for table in ("events", "event_candidates"):
            for identity, properties in old.items():
                conn.exec_driver_sql(
                    f"UPDATE {table} SET properties = '{properties}' WHERE identity = '{identity}'"
                )
        conn.exec_driver_sql("UPDATE pipeline_state SET value = '2' WHERE name = 'schema_version'")
    dispose_engines()
    batch = migrations.BATCH
    migrations.BATCH = 2  # several batches: the keyset paging is exercised
    try:
        get_engine(warehouse_url)
    finally:
        migrations.BATCH = batch

    expected = [
        ("ann", '{"browser": "Edge", "plan": "Pro"}'),
        ("bob", '{"browser": "Safari"}'),
        ("cy", "{}"),
    ]
    assert rows(warehouse_url, "events", columns="identity, properties") == expected
    assert rows(warehouse_url, "event_candidates", columns="identity, properties") == expected
    assert rows(warehouse_url, "pipeline_state WHERE name = 'schema_version'", columns="value") == [
        (SCHEMA_VERSION,)
    ]


def test_the_demo_export_and_live_tracking_share_their_keys(inbox: Path, sqlite_url: str) -> None:
    from usage_pipeline.demo_data import kissmetrics

    first = date(2026, 11, 14)
    drops = kissmetrics.drops(first, 2, ZoneInfo("UTC"))
    headers = {d.content.split(b"\n", 1)[0] for d in drops}
    assert headers == {
        b"identity,event,timestamp,Plan,Browser",
        b"identity,event,timestamp,plan,browser",
    }
    for item in drops:
        path = inbox / item.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item.content)
    config = PipelineConfig(inbox=str(inbox), warehouse=sqlite_url)
    with dg.DagsterInstance.ephemeral() as instance:
        run(config, instance, as_of=datetime(2026, 11, 16, 6, tzinfo=timezone.utc))

    keys = {
        key
        for (properties,) in rows(sqlite_url, "events", columns="DISTINCT properties")
        for key in json.loads(properties)
    }
    assert keys == {"plan", "browser"}
