"""SPEC §1 re-droppable rejects: beside ``<name>.errors.csv`` the quarantine gets
``<name>.rejects.csv``, the original header and only the rejected rows byte for byte (line
endings, quoting, BOM; decompressed for ``.csv.gz``). A user fixes it and drops it back as
it is, and it loads. A file rejected as a whole for its rows has every data row in it (none
was loaded)."""

from __future__ import annotations

import gzip
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from usage_pipeline.config import PipelineConfig, parse_config
from usage_pipeline.demo import demo_drops
from usage_pipeline_tests.helpers import HEADER, rows, run

BOM = b"\xef\xbb\xbf"
CSV_HEADER = HEADER.encode()
ROW_2 = b'A1,u1,"Reports, Pro",view,3,2026-11-20T10:00:00Z\r\n'
ROW_3 = b'A1,u2,"Multi\nline","say ""hi""",-4,2026-11-20T11:00:00Z\r\n'  # negative count
ROW_4 = b"A1,u3,Admin,login,2,2026-11-20T12:00:00Z\r\n"
ROW_5 = b"A2, u4,Admin,login,N/A,2026-11-20T13:00:00Z"  # the last line has no line ending
SOURCE = BOM + CSV_HEADER + b"\r\n" + ROW_2 + ROW_3 + b"\r\n" + ROW_4 + ROW_5  # blank line
DAILY_COLUMNS = "activity_date, account_id, user_id, module, activity, count"
LEDGER_COLUMNS = "file_id, source_key, status, rows_total, rows_loaded, rows_rejected"


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def put(inbox: Path, key: str, data: bytes) -> Path:
    path = inbox / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def quarantined(inbox: Path, folder: str) -> dict[str, bytes]:
    root = inbox.parent / "quarantine" / folder
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


def test_rejected_rows_come_back_byte_for_byte_and_load_once_fixed(
    inbox: Path, warehouse_url: str, instance
) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url, max_reject_ratio=0.5)
    put(inbox, "user_activity/usage_2026-11-20.csv", SOURCE)
    first = run(config, instance)
    assert [(f["status"], f["rows_loaded"], f["rows_rejected"]) for f in first.files] == [
        ("loaded", 2, 2)
    ]

    files = quarantined(inbox, "user_activity")
    assert sorted(files) == [
        "usage_2026-11-20.csv.errors.csv",
        "usage_2026-11-20.csv.rejects.csv",
    ]
    rejects = files["usage_2026-11-20.csv.rejects.csv"]
    assert rejects == BOM + CSV_HEADER + b"\r\n" + ROW_3 + ROW_5

    # the user fixes the two counts in place and drops the file back as it is
    fixed = rejects.replace(b",-4,", b",4,").replace(b",N/A,", b",5,")
    put(inbox, "user_activity/usage_2026-11-20.csv.rejects.csv", fixed)
    second = run(config, instance)

    assert [(f["status"], f["rows_loaded"], f["rows_rejected"]) for f in second.files] == [
        ("loaded", 2, 0)
    ]
    assert rows(warehouse_url, "ingested_files", columns=LEDGER_COLUMNS) == [
        (1, "user_activity/usage_2026-11-20.csv", "loaded", 4, 2, 2),
        (2, "user_activity/usage_2026-11-20.csv.rejects.csv", "loaded", 2, 2, 0),
    ]
    assert rows(warehouse_url, "user_activity_daily", columns=DAILY_COLUMNS) == [
        ("2026-11-20", "A1", "u1", "Reports, Pro", "view", 3),
        ("2026-11-20", "A1", "u2", "Multi\nline", 'say "hi"', 4),
        ("2026-11-20", "A1", "u3", "Admin", "login", 2),
        ("2026-11-20", "A2", "u4", "Admin", "login", 5),
    ]


def test_a_gzip_file_rejected_for_its_rows_gives_every_row_decompressed(
    inbox: Path, warehouse_url: str, instance
) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url)
    text = (
        f"{HEADER}\n"
        "A1,u1,Reports,view,1,2026-11-20T10:00:00Z\n"
        "A1,u2,Reports,view,x,2026-11-20T10:00:00Z\n"
        "A1,u3,Reports,view,3,2026-11-20T10:00:00Z\n"
    ).encode()
    put(inbox, "user_activity/night_2026-11-20.csv.gz", gzip.compress(text))
    first = run(config, instance)
    assert [f["status"] for f in first.files] == ["rejected"]

    files = quarantined(inbox, "user_activity")
    assert sorted(files) == [
        "night_2026-11-20.csv.gz",
        "night_2026-11-20.csv.gz.errors.csv",
        "night_2026-11-20.csv.gz.rejects.csv",
    ]
    assert files["night_2026-11-20.csv.gz.rejects.csv"] == text  # every row: none was loaded
    fixed = files["night_2026-11-20.csv.gz.rejects.csv"].replace(b",x,", b",2,")
    put(inbox, "user_activity/night_2026-11-20.csv.gz.rejects.csv", fixed)
    second = run(config, instance)

    assert [(f["status"], f["rows_loaded"]) for f in second.files] == [("loaded", 3)]
    assert rows(warehouse_url, "user_activity_daily", columns="user_id, count") == [
        ("u1", 1),
        ("u2", 2),
        ("u3", 3),
    ]


def test_a_strict_usage_events_file_comes_back_whole(
    inbox: Path, warehouse_url: str, instance
) -> None:
    config = parse_config(
        {"inbox": str(inbox), "warehouse": warehouse_url, "usage_events": {"meters": ["calls"]}}
    )
    source = (
        b"customer_ref,event_ref,timestamp,event,calls\n"
        b"C1,e1,2026-11-20T10:00:00Z,api,3\n"
        b"C1,e2,2026-11-20T11:00:00Z,api,12O\n"
    )
    put(inbox, "usage_events/usage.csv", source)
    run(config, instance)
    files = quarantined(inbox, "usage_events")
    assert files["usage.csv.rejects.csv"] == source
    assert files["usage.csv.errors.csv"].splitlines()[1] == (
        b"C1,e2,2026-11-20T11:00:00Z,api,12O,3,calls,calls '12O' is not a number"
    )

    put(inbox, "usage_events/usage.csv.rejects.csv", source.replace(b"12O", b"120"))
    report = run(config, instance)

    assert [(f["status"], f["rows_loaded"]) for f in report.files if "status" in f] == [
        ("loaded", 2)
    ]
    assert rows(warehouse_url, "usage_events", columns="event_ref, meters, file_id") == [
        ("e1", '{"calls": 3}', 2),
        ("e2", '{"calls": 120}', 2),
    ]


def test_unmatched_rows_load_unchanged_once_the_directory_knows_them(
    inbox: Path, warehouse_url: str, instance
) -> None:
    config = parse_config(
        {
            "inbox": str(inbox),
            "warehouse": warehouse_url,
            "products": {"Platform": {"snapshot_period": "monthly"}},
            "imports": {
                "crm": {
                    "identifier": {"column": "customer", "kind": "crm_id"},
                    "mappings": [
                        {
                            "column": "seats",
                            "product": "Platform",
                            "dimension": "Seats",
                            "type": "numeric",
                        },
                    ],
                }
            },
        }
    )
    put(inbox, "accounts/directory.csv", b"account_id,crm_id,domain,name\nA1,CRM-1,,\n")
    put(inbox, "product_usage/crm/export.csv", b"customer,seats\nCRM-1,10\nCRM-2,20\n")
    run(config, instance)
    files = quarantined(inbox, "product_usage/crm")
    assert files["export.csv.rejects.csv"] == b"customer,seats\nCRM-2,20\n"

    put(inbox, "accounts/directory.csv", b"account_id,crm_id,domain,name\nA1,CRM-1,,\nA2,CRM-2,,\n")
    put(inbox, "product_usage/crm/export.csv.rejects.csv", files["export.csv.rejects.csv"])
    run(config, instance)

    assert rows(warehouse_url, "product_usage", columns="account_id, dimension, value_numeric") == [
        ("A1", "Seats", 10.0),
        ("A2", "Seats", 20.0),
    ]


def test_rejects_reach_an_s3_quarantine(s3_bucket, s3_endpoint: str, sqlite_url: str) -> None:
    client, bucket = s3_bucket
    key = "user_activity/usage_2026-11-20.csv"
    client.put_object(Bucket=bucket, Key=f"in/{key}", Body=SOURCE)
    config = PipelineConfig(
        inbox=f"s3://{bucket}/in",
        warehouse=sqlite_url,
        s3_endpoint_url=s3_endpoint,
        max_reject_ratio=0.5,
    )
    with dg.DagsterInstance.ephemeral() as instance:
        run(config, instance)

    body = client.get_object(Bucket=bucket, Key=f"quarantine/{key}.rejects.csv")["Body"].read()
    assert body == BOM + CSV_HEADER + b"\r\n" + ROW_3 + ROW_5


def test_the_demo_drops_back_the_fixed_rejects_of_its_bad_file(
    inbox: Path, sqlite_url: str, instance
) -> None:
    tz = ZoneInfo("UTC")
    config = PipelineConfig(inbox=str(inbox), warehouse=sqlite_url)
    first = date(2026, 11, 10)
    drops = demo_drops(first, 4, tz)
    bad = next(d for d in drops if d.key.endswith("_bad.csv"))
    back = next(d for d in drops if d.key == f"{bad.key}.rejects.csv")
    statuses = {}
    for index in range(4):
        night = first + timedelta(days=index)
        for item in (d for d in drops if d.night == night):
            put(inbox, item.key, item.content)
        report = run(
            config,
            instance,
            as_of=datetime.combine(night + timedelta(days=1), time(1, 30), tzinfo=tz),
        )
        statuses.update({f["file"]: (f["status"], f["rows_loaded"]) for f in report.files})
        if night == bad.night:
            rejects = inbox.parent / "quarantine" / f"{bad.key}.rejects.csv"
            assert rejects.read_bytes() == bad.content  # rejected for its rows: every row
            assert back.content == bad.content.replace(b",-4,", b",4,").replace(b",N/A,", b",3,")

    assert back.night == bad.night + timedelta(days=1)
    assert statuses[bad.key] == ("rejected", 0)
    assert statuses[back.key] == ("loaded", 5)
