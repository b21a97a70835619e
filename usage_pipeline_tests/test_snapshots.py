"""SPEC §3 snapshot definitions on a small fixture whose values are computed by hand.

Snapshot date S = 2026-11-20: 1d = Nov 20, 7d = Nov 14..20, 30d = Oct 22..Nov 20,
previous 30d = Sep 22..Oct 21.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.warehouse.engine import get_engine
from usage_pipeline.warehouse.tables import accounts
from usage_pipeline_tests.helpers import drop, rows, run

HEADER = "account_id,user_id,module,activity,count,date"
ACTIVITY = [
    # account A
    "A,u1,Reports,view,5,2026-11-20",
    "A,u1,Admin,login,2,2026-11-18",
    "A,u1,Reports,view,3,2026-11-01",
    "A,u1,Reports,view,10,2026-10-10",  # previous 30 days only
    "A,u2,Admin,login,4,2026-11-14",
    "A,u2,Reports,view,0,2026-11-20",  # a real zero: not active
    # account B: a tie between Admin and Billing (alphabetical first wins)
    "B,u3,Billing,pay,3,2026-11-12",
    "B,u3,Admin,login,3,2026-11-10",
    # account C: activity long before the windows
    "C,u4,Reports,view,2,2026-08-01",
    # account E: activity only after the snapshot date
    "E,u5,Reports,view,9,2026-11-21",
]

ACCOUNT_SNAPSHOT = [
    # snapshot_date, account, users 1d/7d/30d, activity 1d/7d/30d, change %, top module,
    # last activity, days since
    ("2026-11-20", "A", 1, 2, 2, 5, 11, 14, 40.0, "Reports", "2026-11-20", 0),
    ("2026-11-20", "B", 0, 0, 1, 0, 0, 6, None, "Admin", "2026-11-12", 8),
    ("2026-11-20", "C", 0, 0, 0, 0, 0, 0, None, None, "2026-08-01", 111),
    ("2026-11-20", "D", 0, 0, 0, 0, 0, 0, None, None, None, None),
]
USER_SNAPSHOT = [
    # snapshot_date, account, user, last active, days since, activity 7d/30d, top module
    ("2026-11-20", "A", "u1", "2026-11-20", 0, 7, 10, "Reports"),
    ("2026-11-20", "A", "u2", "2026-11-14", 6, 4, 4, "Admin"),
    ("2026-11-20", "B", "u3", "2026-11-12", 8, 0, 6, "Admin"),
    ("2026-11-20", "C", "u4", "2026-08-01", 111, 0, 0, None),
]


def test_snapshots_match_hand_computed_values(inbox: Path, warehouse_url: str) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url)
    with get_engine(warehouse_url).begin() as conn:  # the accounts feed lands in a later issue
        conn.execute(sa.insert(accounts), [{"account_id": "A"}, {"account_id": "D"}])
    drop(inbox, "user_activity/history.csv", ACTIVITY, header=HEADER)

    with dg.DagsterInstance.ephemeral() as instance:
        report = run(config, instance, as_of=datetime(2026, 11, 21, 6, tzinfo=timezone.utc))

    assert report.snapshot_days == ["2026-11-20"]
    assert rows(warehouse_url, "account_usage_snapshot") == ACCOUNT_SNAPSHOT
    assert rows(warehouse_url, "user_usage_snapshot") == USER_SNAPSHOT


def test_late_file_refreshes_existing_snapshots_it_affects(inbox: Path, sqlite_url: str) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=sqlite_url)
    drop(inbox, "user_activity/first.csv", ["A,u1,Reports,view,5,2026-11-19"], header=HEADER)
    with dg.DagsterInstance.ephemeral() as instance:
        run(config, instance, as_of=datetime(2026, 11, 20, 6, tzinfo=timezone.utc))
        run(config, instance, as_of=datetime(2026, 11, 21, 6, tzinfo=timezone.utc))
        drop(inbox, "user_activity/late.csv", ["A,u2,Admin,login,4,2026-11-19"], header=HEADER)

        report = run(config, instance, as_of=datetime(2026, 11, 21, 6, tzinfo=timezone.utc))

    assert report.rollup_days == ["2026-11-19"]
    assert report.snapshot_days == ["2026-11-19", "2026-11-20"]
    assert rows(
        sqlite_url,
        "account_usage_snapshot",
        columns="snapshot_date, active_users_1d, activity_1d, activity_7d",
    ) == [
        ("2026-11-19", 2, 9, 9),
        ("2026-11-20", 0, 0, 9),
    ]


TOP_MODULE_ACTIVITY = [
    # u1: a tie, binary order: "Zeta" before "alpha"
    "A,u1,Zeta,x,7,2026-11-20",
    "A,u1,alpha,x,7,2026-11-19",
    # u2: a tie, binary order: "Zeta" before "Ärger" (UTF-8 bytes 0xC3 0x84)
    "A,u2,Ärger,x,4,2026-11-20",
    "A,u2,Zeta,x,2,2026-11-20",
    "A,u2,Zeta,y,2,2026-11-19",
    # u3: sums beyond 2**53 still compare exactly: "small" has 2**53, "big" 2**53 - 1
    "A,u3,big,x,9007199254740991,2026-11-20",
    "A,u3,small,x,9007199254740990,2026-11-19",
    "A,u3,small,y,2,2026-11-18",
]


def test_top_module_is_the_largest_30d_count_ties_in_binary_order(
    inbox: Path, warehouse_url: str
) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url)
    drop(inbox, "user_activity/top.csv", TOP_MODULE_ACTIVITY, header=HEADER)

    with dg.DagsterInstance.ephemeral() as instance:
        run(config, instance, as_of=datetime(2026, 11, 21, 6, tzinfo=timezone.utc))

    total = 2**54 - 1  # (2**53 - 1) + (2**53 - 2) + 2
    assert rows(warehouse_url, "user_usage_snapshot") == [
        ("2026-11-20", "A", "u1", "2026-11-20", 0, 14, 14, "Zeta"),
        ("2026-11-20", "A", "u2", "2026-11-20", 0, 8, 8, "Zeta"),
        ("2026-11-20", "A", "u3", "2026-11-20", 0, total, total, "small"),
    ]
