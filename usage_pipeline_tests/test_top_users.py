"""SPEC §3 ``account_top_users``: per snapshot date and account, the five users with the most
activity in the 30 days ending on the date (ties: user_id alphabetical; users with 0 left
out), built like the other snapshots and read from the 30-day window only.

Snapshot date S = 2026-11-20: the 30 days are 2026-10-22 .. 2026-11-20.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.definitions import build_definitions
from usage_pipeline.snapshot_sql import windows
from usage_pipeline.top_users import top_users_statement
from usage_pipeline.warehouse.engine import get_engine, read_connection
from usage_pipeline.warehouse.tables import metadata
from usage_pipeline_tests.helpers import drop, rows, run

HEADER = "account_id,user_id,module,activity,count,date"
ACTIVITY = [
    # account A: seven users
    "A,carol,Reports,view,6,2026-11-20",
    "A,carol,Admin,login,6,2026-10-22",  # first day of the window: carol has 12
    "A,dave,Reports,view,12,2026-11-01",  # ties with carol: carol first (alphabetical)
    "A,erin,Reports,view,20,2026-11-19",
    "A,bob,Reports,view,3,2026-11-10",
    "A,bob,Reports,view,2,2026-10-21",  # the day before the window: not counted
    "A,alice,Admin,login,3,2026-11-15",  # ties with bob (3): alice first
    "A,frank,Reports,view,1,2026-11-02",  # sixth: left out
    "A,gina,Reports,view,0,2026-11-20",  # only a real zero: left out
    "A,hank,Reports,view,50,2026-11-21",  # after the snapshot date: not counted
    # account B: one user with activity, one with zero only
    "B,zoe,Billing,pay,4,2026-11-12",
    "B,yann,Billing,pay,0,2026-11-12",
    # account C: nothing in the window
    "C,ivan,Reports,view,9,2026-09-01",
]
TOP_USERS = [
    # snapshot_date, account, rank, user, activity_30d
    ("2026-11-20", "A", 1, "erin", 20),
    ("2026-11-20", "A", 2, "carol", 12),
    ("2026-11-20", "A", 3, "dave", 12),
    ("2026-11-20", "A", 4, "alice", 3),
    ("2026-11-20", "A", 5, "bob", 3),
    ("2026-11-20", "B", 1, "zoe", 4),
]
COLUMNS = "snapshot_date, account_id, rank, user_id, activity_30d"


def test_top_users_rank_ties_alphabetically_and_leave_out_zeros(
    inbox: Path, warehouse_url: str
) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url)
    drop(inbox, "user_activity/history.csv", ACTIVITY, header=HEADER)
    # account-level counts (no user) never make a top user
    drop(
        inbox,
        "account_usage/2026-11-20.csv",
        ["A,2026-11-20,99"],
        header="account_id,date,Reports##view",
    )

    with dg.DagsterInstance.ephemeral() as instance:
        report = run(config, instance, as_of=datetime(2026, 11, 21, 6, tzinfo=timezone.utc))

    assert report.snapshot_days == ["2026-11-20"]
    assert not report.failed_runs
    assert rows(warehouse_url, "account_top_users", columns=COLUMNS) == TOP_USERS
    assert rows(
        warehouse_url,
        "account_activity_daily WHERE source = 'account_usage'",
        columns="account_id, count",
    ) == [("A", 99)]
    assert rows(warehouse_url, "snapshot_dates", columns="snapshot_table, snapshot_date") == [
        ("account_hierarchy_snapshot", "2026-11-20"),
        ("account_top_users", "2026-11-20"),
        ("account_usage_snapshot", "2026-11-20"),
        ("user_usage_snapshot", "2026-11-20"),
    ]


def test_a_late_file_refreshes_the_top_users_it_changes(inbox: Path, warehouse_url: str) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url)
    drop(inbox, "user_activity/history.csv", ACTIVITY, header=HEADER)
    with dg.DagsterInstance.ephemeral() as instance:
        run(config, instance, as_of=datetime(2026, 11, 21, 6, tzinfo=timezone.utc))
        drop(inbox, "user_activity/late.csv", ["A,frank,Reports,view,4,2026-11-19"], header=HEADER)

        report = run(config, instance, as_of=datetime(2026, 11, 21, 7, tzinfo=timezone.utc))

    assert report.snapshot_days == ["2026-11-20"]
    assert rows(warehouse_url, "account_top_users WHERE account_id = 'A'", columns=COLUMNS) == [
        ("2026-11-20", "A", 1, "erin", 20),
        ("2026-11-20", "A", 2, "carol", 12),
        ("2026-11-20", "A", 3, "dave", 12),
        ("2026-11-20", "A", 4, "frank", 5),  # 1 + 4: alice and bob drop to 6th and 7th
        ("2026-11-20", "A", 5, "alice", 3),
    ]


def test_the_sqlite_plan_reads_the_window_by_its_index_without_a_join(sqlite_url: str) -> None:
    with read_connection(get_engine(sqlite_url)) as conn:
        statement, _ = top_users_statement(conn, date(2026, 11, 20))
        compiled = statement.compile(dialect=conn.dialect)
        params = tuple("2026-11-20" for _ in compiled.positiontup)
        plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)]
    reads = [
        line
        for line in plan
        if line.split(" ")[0] in ("SCAN", "SEARCH") and line.split(" ")[1] in metadata.tables
    ]
    # one range read of one table: no join, no nested loop, no correlated subquery
    assert reads == [
        "SEARCH user_activity_daily USING INDEX sqlite_autoindex_user_activity_daily_1"
        " (activity_date>? AND activity_date<?)"
    ], plan
    assert not [line for line in plan if "CORRELATED" in line or "LOOP" in line], plan


def test_the_snapshot_asset_is_defined_with_the_others(tmp_path: Path) -> None:
    config = PipelineConfig(inbox=str(tmp_path), warehouse=f"sqlite:///{tmp_path / 'w.db'}")
    definitions = build_definitions(config)
    job = definitions.resolve_job_def("snapshot_job")
    assert dg.AssetKey("account_top_users") in job.asset_layer.executable_asset_keys
    spec = definitions.resolve_assets_def(dg.AssetKey("account_top_users"))
    assert spec.group_names_by_key[dg.AssetKey("account_top_users")] == "snapshots"
    assert windows(date(2026, 11, 20))["d30"] == date(2026, 10, 22)
    with get_engine(config.warehouse).begin() as conn:
        assert sa.inspect(conn).get_pk_constraint("account_top_users")["constrained_columns"] == [
            "snapshot_date",
            "account_id",
            "rank",
        ]
