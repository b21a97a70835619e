"""SPEC §6 ``explain TABLE COLUMN=VALUE…`` (issue 10, item 9): the exact lines naming the file
versions and row numbers behind one row of each daily table and of product_usage, with each
one's contribution; a read-only command that never creates or changes anything."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
import yaml

from usage_pipeline.drops import due_day
from usage_pipeline_tests.helpers import drop, invoke, rows

UA = "account_id,user_id,module,activity,count,timestamp"
FILES = [
    (
        "user_activity/usage_2026-11-20_a.csv",
        UA,
        [
            "A1,u1,Reports,view,3,2026-11-20T10:00:00Z",
            "A1,u2,Reports,view,2,2026-11-20T10:30:00Z",
        ],
    ),
    ("user_activity/usage_2026-11-20_b.csv", UA, ["A1,u1,Reports,view,4,2026-11-20T11:00:00Z"]),
    ("account_usage/acct_2026-11-20.csv", "account_id,Reports##View", ["A1,1", "A1,5"]),
    (
        "usage_events/ue_2026-11-20.csv",
        "customer_ref,event_ref,timestamp,event,api_calls",
        ["c1,e1,2026-11-20T10:00:00Z,api.call,3", "c1,e2,2026-11-20T12:00:00Z,api.call,2.5"],
    ),
    (
        "events/ev_2026-11-20.csv",
        "identity,event,timestamp",
        [
            "alice,Viewed Dashboard,2026-11-20T10:00:00Z",
            "bob,Viewed Dashboard,2026-11-20T11:00:00Z",
            "alice,Viewed Dashboard,2026-11-20T10:10:00Z",  # throttled: not kept
        ],
    ),
    ("accounts/accounts.csv", "account_id,crm_id,domain,name", ["A1,CRM1,a1.com,Acme"]),
    ("product_usage/crm/pu_a.csv", "customer_id,mau", ["CRM1,10"]),
    ("product_usage/crm/pu_b.csv", "customer_id,mau", ["CRM1,12"]),
]


def _setup(project: Path, warehouse_url: str) -> dict[str, int]:
    inbox = project / "data" / "inbox"
    config = {
        "warehouse": warehouse_url,
        "products": {"Platform": {"snapshot_period": "monthly"}},
        "imports": {
            "crm": {
                "identifier": {"column": "customer_id", "kind": "crm_id"},
                "mappings": [
                    {"column": "mau", "product": "Platform", "dimension": "MAU", "type": "numeric"}
                ],
            }
        },
        "usage_events": {"meters": ["api_calls"]},
        "events": {"throttle": {"Viewed Dashboard": "30m"}},
    }
    (project / "data" / "pipeline.yaml").write_text(yaml.safe_dump(config))
    for key, header, lines in FILES:
        drop(inbox, key, lines, header=header)
    assert invoke("run", "--as-of", "2026-11-21T12:00:00+00:00").exit_code in (0, 1)
    return {
        key: file_id
        for file_id, key in rows(warehouse_url, "ingested_files", columns="file_id, source_key")
    }


def test_explain_prints_the_rows_behind_each_table(project: Path, warehouse_url: str) -> None:
    ids = _setup(project, warehouse_url)
    a, b = (f"file {ids[k]} {k}" for k in (FILES[0][0], FILES[1][0]))
    acct, ue, ev = (f"file {ids[k]} {k}" for k in (FILES[2][0], FILES[3][0], FILES[4][0]))
    pu_a, pu_b = (f"file {ids[k]} {k}" for k in (FILES[6][0], FILES[7][0]))
    day = "activity_date=2026-11-20 account_id=A1"

    def explain(*args: str) -> list[str]:
        result = invoke("explain", *args)
        assert result.exit_code == 0, result.output
        return result.output.splitlines()

    assert explain(
        "user_activity_daily", *day.split(), "user_id=u1", "module=Reports", "activity=view"
    ) == [
        f"user_activity_daily {day} user_id=u1 module=Reports activity=view: count 7",
        f"  {a} row 2: count 3",
        f"  {b} row 2: count 4",
        "From 2 rows of 2 file versions.",
    ]
    assert explain("account_activity_daily", *day.split(), "module=Reports", "activity=view") == [
        f"account_activity_daily {day} module=Reports activity=view source=user_activity: count 9,"
        " active_users 2",
        f"  {a} row 2: count 3 (user u1)",
        f"  {a} row 3: count 2 (user u2)",
        f"  {b} row 2: count 4 (user u1)",
        "From 3 rows of 2 file versions.",
    ]
    assert explain("account_activity_daily", *day.split(), "source=account_usage") == [
        f"account_activity_daily {day} module=Reports activity=View source=account_usage: count 5",
        f"  {acct} row 3: count 5",
        "From 1 row of 1 file version.",
    ]
    assert explain("usage_meter_daily", "day=2026-11-20", "customer_ref=c1", "meter=api_calls") == [
        "usage_meter_daily day=2026-11-20 customer_ref=c1 subscription_ref= event=api.call"
        " meter=api_calls: total 5.5, events 2",
        f"  {ue} row 2: total 3, events 1 (event_ref e1)",
        f"  {ue} row 3: total 2.5, events 1 (event_ref e2)",
        "From 2 rows of 1 file version.",
    ]
    assert explain("events_daily", "day=2026-11-20", "event=Viewed Dashboard") == [
        "events_daily day=2026-11-20 event=Viewed Dashboard: events 2, identities 2",
        f"  {ev} row 2: events 1 (identity alice at 2026-11-20T10:00:00+00:00)",
        f"  {ev} row 3: events 1 (identity bob at 2026-11-20T11:00:00+00:00)",
        "From 2 rows of 1 file version.",
    ]
    assert explain("product_usage", "product=Platform", "account_id=A1", "dimension=MAU") == [
        "product_usage product=Platform account_id=A1 dimension=MAU period_start=2026-10-01"
        f" seq=0: period monthly, value_numeric 12, file_id {ids[FILES[7][0]]}",
        f"  {pu_b} row 2: value_numeric 12 (this row's value)",
        f"  {pu_a} row 2: value_numeric 10 (overridden by a later value)",
        "From 2 rows of 2 file versions.",
    ]


def test_explain_errors_are_one_sentence(project: Path, warehouse_url: str) -> None:
    _setup(project, warehouse_url)
    cases = {
        ("nonsense", "x=1"): "error: Table 'nonsense' cannot be explained (tables:"
        " user_activity_daily, account_activity_daily, usage_meter_daily, events_daily,"
        " product_usage).",
        ("user_activity_daily", "account_id=A1"): "error: 2 rows of user_activity_daily have"
        " account_id=A1; name one with COLUMN=VALUE for activity_date, account_id, user_id,"
        " module, activity.",
        ("user_activity_daily", "account_id=ZZ"): "error: No row of user_activity_daily has"
        " account_id=ZZ.",
        ("events_daily", "day=yesterday"): "error: Value 'yesterday' of column day is not a"
        " valid DATE.",
        ("events_daily", "colour=red"): "error: Table events_daily has no column 'colour'"
        " (columns: day, event, events, identities).",
    }
    for args, message in cases.items():
        result = invoke("explain", *args)
        assert (result.exit_code, result.output) == (2, message + "\n")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_explain_and_status_never_write(project: Path) -> None:
    database = project / "data" / "warehouse.db"
    for verb in (["explain", "events_daily", "day=2026-11-20"], ["status"]):
        missing = invoke(*verb)
        assert (missing.exit_code, missing.output) == (
            2,
            "error: There is no warehouse at sqlite:///data/warehouse.db (no such SQLite"
            " file): check the warehouse URL, or run 'usage-pipeline run' to create it.\n",
        )
    assert not database.exists()

    sqlite3.connect(database).close()  # an empty database: not the project's
    before = _digest(database)
    for verb in (["explain", "events_daily", "day=2026-11-20"], ["status"]):
        empty = invoke(*verb)
        assert (empty.exit_code, empty.output) == (
            2,
            "error: The warehouse sqlite:///data/warehouse.db holds none of the project's"
            " tables: check the warehouse URL, or run 'usage-pipeline run' to create them.\n",
        )
    assert _digest(database) == before

    _setup(project, "sqlite:///data/warehouse.db")
    before = _digest(database)
    assert (
        invoke("explain", "events_daily", "day=2026-11-20", "event=Viewed Dashboard").exit_code == 0
    )
    invoke("status")
    assert _digest(database) == before


def test_status_on_an_empty_postgres_schema(project: Path, pg_url: str) -> None:
    (project / "data" / "pipeline.yaml").write_text(yaml.safe_dump({"warehouse": pg_url}))
    result = invoke("status")
    assert result.exit_code == 2
    assert result.output.endswith(
        " holds none of the project's tables: check the warehouse URL, or run"
        " 'usage-pipeline run' to create them.\n"
    )
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
    engine.dispose()


def test_status_lists_the_failing_drop_watch(project: Path, warehouse_url: str) -> None:
    _setup(project, warehouse_url)
    night = due_day(datetime.now(timezone.utc), timezone.utc, time(23, 0), timedelta(hours=2))
    due = f"{night + timedelta(days=1)} 01:00"
    missing = f"No user_activity file for {night} has arrived."

    result = invoke("status")

    lines = result.output.splitlines()
    assert result.exit_code == 1
    assert lines[lines.index("Drop watch:") + 1] == (
        f"  user_activity (due {due}): {missing} Volume not checked: nothing of user_activity is"
        f" loaded for {night}."
    )
    assert f"  - missing_drop [user_activity]: {missing}" in lines
