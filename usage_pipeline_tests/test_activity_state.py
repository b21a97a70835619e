"""Issue 8: snapshots read their window plus a per-user / per-account state kept by the
rollups. The state must stay exactly what the whole history says, through late files and
corrections that move a first or last active day, and a refreshed snapshot must equal one
built from scratch."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.warehouse.engine import dispose_engines, get_engine, read_connection
from usage_pipeline_tests.helpers import drop, rows, run

HEADER = "account_id,user_id,module,activity,count,date"
MORNING = datetime(2026, 11, 21, 6, tzinfo=timezone.utc)  # snapshots for 2026-11-20
USER_STATE = "account_id, user_id, first_day, last_active_day"
ACCOUNT_STATE = "account_id, first_day, last_active_day"


def from_history(url: str) -> dict[str, list[tuple]]:
    """The state as the whole history defines it (what the rollups must maintain)."""
    engine = get_engine(url)
    queries = {
        "user_activity_state": "SELECT account_id, user_id, MIN(activity_date),"
        " MAX(CASE WHEN count > 0 THEN activity_date END) FROM user_activity_daily"
        " GROUP BY account_id, user_id",
        "account_activity_state": "SELECT account_id, MIN(activity_date),"
        " MAX(CASE WHEN count > 0 THEN activity_date END) FROM account_activity_daily"
        " GROUP BY account_id",
    }
    with read_connection(engine) as conn:
        return {
            name: sorted(
                (tuple(v.isoformat() if hasattr(v, "isoformat") else v for v in row))
                for row in conn.execute(sa.text(sql))
            )
            for name, sql in queries.items()
        }


def months(url: str) -> dict[str, list[tuple]]:
    """The month rows, and what the whole history says they must be."""
    engine = get_engine(url)
    month = (
        "CAST(date_trunc('month', activity_date) AS DATE)"
        if url.startswith("postgresql")
        else "strftime('%Y-%m-01', activity_date)"
    )
    expected = (
        f"SELECT account_id, user_id, {month}, MIN(activity_date),"
        " MAX(CASE WHEN count > 0 THEN activity_date END) FROM user_activity_daily"
        f" GROUP BY account_id, user_id, {month}"
    )
    with read_connection(engine) as conn:
        from_daily = sorted(
            tuple(v.isoformat() if hasattr(v, "isoformat") else v for v in row)
            for row in conn.execute(sa.text(expected))
        )
    kept = rows(
        url, "user_activity_months", columns=f"{USER_STATE.replace('first', 'month, first')}"
    )
    return {"kept": kept, "from_daily": from_daily}


def state(url: str) -> dict[str, list[tuple]]:
    return {
        "user_activity_state": rows(url, "user_activity_state", columns=USER_STATE),
        "account_activity_state": rows(url, "account_activity_state", columns=ACCOUNT_STATE),
    }


def last_active(url: str) -> list[tuple]:
    return rows(
        url,
        "user_usage_snapshot",
        columns="snapshot_date, user_id, last_active_date, days_since_last_active",
    )


def test_state_follows_late_files_and_corrections(inbox: Path, warehouse_url: str) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url)
    with dg.DagsterInstance.ephemeral() as instance:
        drop(
            inbox,
            "user_activity/base.csv",
            [
                "A,u1,Reports,view,2,2026-11-10",
                "A,u2,Reports,view,1,2026-11-12",
                "A,u3,Admin,login,0,2026-11-12",  # only a real zero: a member, never active
            ],
            header=HEADER,
        )
        drop(inbox, "user_activity/latest.csv", ["A,u1,Admin,login,4,2026-11-15"], header=HEADER)
        run(config, instance, as_of=MORNING)
        assert state(warehouse_url) == {
            "user_activity_state": [
                ("A", "u1", "2026-11-10", "2026-11-15"),
                ("A", "u2", "2026-11-12", "2026-11-12"),
                ("A", "u3", "2026-11-12", None),
            ],
            "account_activity_state": [("A", "2026-11-10", "2026-11-15")],
        }

        # A late file with activity before u1's last active day does not move it.
        drop(inbox, "user_activity/late.csv", ["A,u1,Reports,view,1,2026-11-13"], header=HEADER)
        run(config, instance, as_of=MORNING)
        assert rows(warehouse_url, "user_activity_state", columns=USER_STATE)[0] == (
            "A",
            "u1",
            "2026-11-10",
            "2026-11-15",
        )

        # A correction removing u1's only activity on its last active day moves it back.
        drop(inbox, "user_activity/latest.csv", ["A,u2,Admin,login,1,2026-11-16"], header=HEADER)
        report = run(config, instance, as_of=MORNING)
        assert report.rollup_days == ["2026-11-15", "2026-11-16"]
        assert state(warehouse_url) == {
            "user_activity_state": [
                ("A", "u1", "2026-11-10", "2026-11-13"),
                ("A", "u2", "2026-11-12", "2026-11-16"),
                ("A", "u3", "2026-11-12", None),
            ],
            "account_activity_state": [("A", "2026-11-10", "2026-11-16")],
        }
        assert state(warehouse_url) == from_history(warehouse_url)
        kept = months(warehouse_url)
        assert kept["kept"] == kept["from_daily"]
        assert last_active(warehouse_url) == [
            ("2026-11-20", "u1", "2026-11-13", 7),
            ("2026-11-20", "u2", "2026-11-16", 4),
            ("2026-11-20", "u3", None, None),
        ]

        # Corrections removing a user's (and an account's) every row: gone from the state.
        drop(inbox, "user_activity/base.csv", ["B,u9,Reports,view,3,2026-11-11"], header=HEADER)
        drop(inbox, "user_activity/late.csv", ["B,u9,Reports,view,1,2026-11-12"], header=HEADER)
        run(config, instance, as_of=MORNING)
        assert state(warehouse_url) == {
            "user_activity_state": [
                ("A", "u2", "2026-11-16", "2026-11-16"),
                ("B", "u9", "2026-11-11", "2026-11-12"),
            ],
            "account_activity_state": [
                ("A", "2026-11-16", "2026-11-16"),
                ("B", "2026-11-11", "2026-11-12"),
            ],
        }
        assert state(warehouse_url) == from_history(warehouse_url)
        kept = months(warehouse_url)
        assert kept["kept"] == kept["from_daily"]
        assert last_active(warehouse_url) == [
            ("2026-11-20", "u2", "2026-11-16", 4),
            ("2026-11-20", "u9", "2026-11-12", 8),
        ]


def test_refreshed_snapshot_equals_one_built_from_scratch(inbox: Path, tmp_path: Path) -> None:
    """A user back after the snapshot date takes their last active day from before the window
    (read through their own rows); a refresh after a late file equals a fresh build."""
    first = [
        "C,u6,Reports,view,2,2026-07-01",  # long before the windows ...
        "C,u6,Reports,view,5,2026-11-21",  # ... and back after the first snapshot date
        "C,u7,Admin,login,1,2026-11-19",
    ]
    late = ["C,u7,Admin,login,3,2026-11-18", "D,u8,Reports,view,1,2026-09-30"]
    refreshed_url = f"sqlite:///{tmp_path / 'refreshed.db'}"
    scratch_url = f"sqlite:///{tmp_path / 'scratch.db'}"
    refreshed = PipelineConfig(inbox=str(inbox), warehouse=refreshed_url)
    with dg.DagsterInstance.ephemeral() as instance:
        drop(inbox, "user_activity/first.csv", first, header=HEADER)
        run(refreshed, instance, as_of=MORNING)
        run(refreshed, instance, as_of=datetime(2026, 11, 23, 6, tzinfo=timezone.utc))
        drop(inbox, "user_activity/late.csv", late, header=HEADER)
        report = run(refreshed, instance, as_of=datetime(2026, 11, 23, 6, tzinfo=timezone.utc))
    assert report.snapshot_days == ["2026-11-20", "2026-11-21", "2026-11-22"]
    assert last_active(refreshed_url)[:3] == [
        ("2026-11-20", "u6", "2026-07-01", 142),
        ("2026-11-20", "u7", "2026-11-19", 1),
        ("2026-11-20", "u8", "2026-09-30", 51),
    ]

    scratch = PipelineConfig(inbox=str(inbox), warehouse=scratch_url)
    with dg.DagsterInstance.ephemeral() as instance:
        run(scratch, instance, as_of=MORNING)
        run(scratch, instance, as_of=datetime(2026, 11, 23, 6, tzinfo=timezone.utc))
    for table in ("account_usage_snapshot", "user_usage_snapshot"):
        assert rows(refreshed_url, table) == rows(scratch_url, table), table


def test_a_warehouse_of_the_previous_version_is_migrated(inbox: Path, warehouse_url: str) -> None:
    """The state and month tables arrive in a warehouse that already has rollups: they are
    built once from its history."""
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url)
    drop(
        inbox,
        "user_activity/base.csv",
        ["A,u1,Reports,view,2,2026-11-10", "B,u2,Reports,view,0,2026-11-12"],
        header=HEADER,
    )
    with dg.DagsterInstance.ephemeral() as instance:
        run(config, instance, as_of=MORNING)
    expected = state(warehouse_url)
    with get_engine(warehouse_url).begin() as conn:  # back to the previous version's schema
        for name in ("user", "account"):
            conn.exec_driver_sql(f"DROP TABLE {name}_activity_state")
            conn.exec_driver_sql(f"DROP TABLE {name}_activity_months")
        conn.exec_driver_sql("DELETE FROM pipeline_state WHERE name = 'schema_version'")
    dispose_engines()

    engine = get_engine(warehouse_url)

    assert state(warehouse_url) == expected == from_history(warehouse_url)
    assert expected["user_activity_state"] == [
        ("A", "u1", "2026-11-10", "2026-11-10"),
        ("B", "u2", "2026-11-12", None),
    ]
    kept = months(warehouse_url)
    assert (
        kept["kept"]
        == kept["from_daily"]
        == [
            ("A", "u1", "2026-11-01", "2026-11-10", "2026-11-10"),
            ("B", "u2", "2026-11-01", "2026-11-12", None),
        ]
    )
    assert sa.inspect(engine).has_table("user_activity_months")
