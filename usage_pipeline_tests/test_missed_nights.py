"""SPEC §3: after a gap (the machine was down), ``run`` and the snapshot schedule build the
snapshots of every completed day since the last one (up to 60 days back), with exactly the
rows they would have had if every night had run.

America/New_York. The run of 2026-11-18 01:30 builds 2026-11-17; the runs of the 19th, 20th
and 21st are missed; the run (or the 00:30 schedule tick) of the 22nd builds 18..21.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from usage_pipeline.config import PipelineConfig
from usage_pipeline.definitions import build_definitions
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.followups import one_range, rollup_ranges, snapshot_ranges
from usage_pipeline.runner import PipelineRunner, ingest_new_files
from usage_pipeline.snapshots import SNAPSHOT_BUILDERS, build_snapshot_day, missing_snapshot_days
from usage_pipeline.warehouse.engine import get_engine
from usage_pipeline.work_queue import DayRange
from usage_pipeline_tests.helpers import rows, run

NY = ZoneInfo("America/New_York")
HEADER = "account_id,user_id,module,activity,count,timestamp"
NIGHTS = {
    date(2026, 11, 17): "A,u1,Reports,view,5,2026-11-17T10:00:00",
    date(2026, 11, 18): "A,u2,Admin,login,3,2026-11-18T10:00:00",
    date(2026, 11, 19): "B,u3,Reports,view,4,2026-11-19T10:00:00",
    date(2026, 11, 20): "A,u1,Reports,view,2,2026-11-20T10:00:00",
    date(2026, 11, 21): "A,u1,Reports,view,1,2026-11-21T23:30:00",  # 04:30Z on the 22nd
}
BUILT = [f"2026-11-{day}" for day in (17, 18, 19, 20, 21)]
ACCOUNTS = [
    # snapshot_date, account, users 1d/7d, activity 1d/7d, last activity, days since
    ("2026-11-17", "A", 1, 1, 5, 5, "2026-11-17", 0),
    ("2026-11-18", "A", 1, 2, 3, 8, "2026-11-18", 0),
    ("2026-11-19", "A", 0, 2, 0, 8, "2026-11-18", 1),
    ("2026-11-19", "B", 1, 1, 4, 4, "2026-11-19", 0),
    ("2026-11-20", "A", 1, 2, 2, 10, "2026-11-20", 0),
    ("2026-11-20", "B", 0, 1, 0, 4, "2026-11-19", 1),
    ("2026-11-21", "A", 1, 2, 1, 11, "2026-11-21", 0),
    ("2026-11-21", "B", 0, 1, 0, 4, "2026-11-19", 2),
]
ACCOUNT_COLUMNS = (
    "snapshot_date, account_id, active_users_1d, active_users_7d, activity_1d, activity_7d,"
    " last_activity_date, days_since_last_activity"
)
USERS = [
    # snapshot_date, user, last active, activity 30d
    ("2026-11-17", "u1", "2026-11-17", 5),
    ("2026-11-18", "u1", "2026-11-17", 5),
    ("2026-11-18", "u2", "2026-11-18", 3),
    ("2026-11-19", "u1", "2026-11-17", 5),
    ("2026-11-19", "u2", "2026-11-18", 3),
    ("2026-11-19", "u3", "2026-11-19", 4),
    ("2026-11-20", "u1", "2026-11-20", 7),
    ("2026-11-20", "u2", "2026-11-18", 3),
    ("2026-11-20", "u3", "2026-11-19", 4),
    ("2026-11-21", "u1", "2026-11-21", 8),
    ("2026-11-21", "u2", "2026-11-18", 3),
    ("2026-11-21", "u3", "2026-11-19", 4),
]
TOP_USERS = [
    ("2026-11-17", "A", 1, "u1", 5),
    ("2026-11-18", "A", 1, "u1", 5),
    ("2026-11-18", "A", 2, "u2", 3),
    ("2026-11-19", "A", 1, "u1", 5),
    ("2026-11-19", "A", 2, "u2", 3),
    ("2026-11-19", "B", 1, "u3", 4),
    ("2026-11-20", "A", 1, "u1", 7),
    ("2026-11-20", "A", 2, "u2", 3),
    ("2026-11-20", "B", 1, "u3", 4),
    ("2026-11-21", "A", 1, "u1", 8),
    ("2026-11-21", "A", 2, "u2", 3),
    ("2026-11-21", "B", 1, "u3", 4),
]


def morning(day: date) -> datetime:
    return datetime.combine(day, time(1, 30), tzinfo=NY)


def drop_night(inbox: Path, night: date) -> None:
    path = inbox / "user_activity" / f"usage_{night.isoformat()}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{HEADER}\n{NIGHTS[night]}\n", encoding="utf-8")


def assert_every_night_built(url: str) -> None:
    assert rows(url, "snapshot_dates", columns="snapshot_table, snapshot_date") == sorted(
        (table, day) for table in SNAPSHOT_BUILDERS for day in BUILT
    )
    assert rows(url, "account_usage_snapshot", columns=ACCOUNT_COLUMNS) == ACCOUNTS
    assert (
        rows(
            url,
            "user_usage_snapshot",
            columns="snapshot_date, user_id, last_active_date, activity_30d",
        )
        == USERS
    )
    assert (
        rows(
            url,
            "account_top_users",
            columns="snapshot_date, account_id, rank, user_id, activity_30d",
        )
        == TOP_USERS
    )


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def test_run_after_three_missed_nights_builds_each_of_them(
    inbox: Path, warehouse_url: str, instance
) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url, timezone="America/New_York")
    drop_night(inbox, date(2026, 11, 17))
    first = run(config, instance, as_of=morning(date(2026, 11, 18)))
    assert first.snapshot_days == ["2026-11-17"]
    for night in (date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20), date(2026, 11, 21)):
        drop_night(inbox, night)  # the files keep arriving; nobody runs the pipeline

    report = run(config, instance, as_of=morning(date(2026, 11, 22)))

    assert report.rollup_days == ["2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21"]
    assert report.snapshot_days == ["2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21"]
    assert not report.failed_runs
    assert_every_night_built(warehouse_url)
    # The 17th, then one run for the four missed nights: each night's closing run rolls up
    # and snapshots its stretch of days with the drop watch and billing periods.
    assert sorted(
        (
            r.job_name,
            r.tags.get("dagster/partition", ""),
            r.tags.get("dagster/asset_partition_range_start", ""),
            r.tags.get("dagster/asset_partition_range_end", ""),
        )
        for r in instance.get_runs()
    ) == [
        ("end_of_run_job", "", "2026-11-18", "2026-11-21"),
        ("end_of_run_job", "2026-11-17", "", ""),
        ("ingest_files_job", "", "", ""),
        ("ingest_files_job", "", "", ""),
    ]

    again = run(config, instance, as_of=morning(date(2026, 11, 22)))
    assert again.snapshot_days == [] and again.rollup_days == []


def test_a_late_file_for_an_old_day_runs_each_stretch_as_the_daemon_would(
    inbox: Path, sqlite_url: str, instance
) -> None:
    """The 18th's file and a late file for the 15th: rollups of two stretches (15, 18) and
    snapshots of 17..18 cannot share one run, so each stretch is its own run, then the
    closing run holds the drop watch and billing periods only."""
    config = PipelineConfig(inbox=str(inbox), warehouse=sqlite_url, timezone="America/New_York")
    drop_night(inbox, date(2026, 11, 17))
    run(config, instance, as_of=morning(date(2026, 11, 18)))
    drop_night(inbox, date(2026, 11, 18))
    late = inbox / "user_activity" / "late_2026-11-15.csv"
    late.write_text(f"{HEADER}\nA,u9,Admin,login,2,2026-11-15T10:00:00\n", encoding="utf-8")

    report = run(config, instance, as_of=morning(date(2026, 11, 19)))

    assert not report.failed_runs
    assert report.rollup_days == ["2026-11-15", "2026-11-18"]
    assert report.snapshot_days == ["2026-11-17", "2026-11-18"]
    second = [r for r in instance.get_runs() if r.job_name != "ingest_files_job"][:-1]
    assert sorted(
        (
            r.job_name,
            r.tags.get("dagster/partition", ""),
            r.tags.get("dagster/asset_partition_range_start", ""),
        )
        for r in second
    ) == [
        ("end_of_run_job", "", ""),
        ("rollup_job", "2026-11-15", ""),
        ("rollup_job", "2026-11-18", ""),
        ("snapshot_job", "", "2026-11-17"),
    ]
    assert rows(sqlite_url, "account_usage_snapshot", columns=ACCOUNT_COLUMNS) == [
        ("2026-11-17", "A", 1, 2, 5, 7, "2026-11-17", 0),
        ("2026-11-18", "A", 1, 3, 3, 10, "2026-11-18", 0),
    ]
    with get_engine(sqlite_url).connect() as conn:
        assert rollup_ranges(conn) == [] and snapshot_ranges(conn) == []


def test_one_range_joins_only_stretches_of_the_same_days() -> None:
    d18, d19 = date(2026, 11, 18), date(2026, 11, 19)
    rollup = DayRange(d18, d19, ("account_activity_daily", "user_activity_daily"), 7)
    snapshot = DayRange(d18, d19, ("user_usage_snapshot",), 9)
    assert one_range([rollup, snapshot]) == DayRange(
        d18, d19, ("account_activity_daily", "user_activity_daily", "user_usage_snapshot"), 9
    )
    assert one_range([rollup, DayRange(d19, d19, ("user_usage_snapshot",), 9)]) is None
    assert one_range([]) is None


def test_the_schedule_tick_after_the_gap_builds_the_same_snapshots(
    inbox: Path, sqlite_url: str, instance
) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=sqlite_url, timezone="America/New_York")
    drop_night(inbox, date(2026, 11, 17))
    run(config, instance, as_of=morning(date(2026, 11, 18)))
    for night in (date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20), date(2026, 11, 21)):
        drop_night(inbox, night)
    runner = PipelineRunner(config, instance, "WARNING")  # the sensors' work: load, roll up
    ingest_new_files(runner, morning(date(2026, 11, 22)))
    runner.follow_up()
    assert runner.report.snapshot_days == []  # no snapshot of a missed night yet

    definitions = build_definitions(config)
    schedule = definitions.resolve_schedule_def("snapshot_schedule")
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime(2026, 11, 22, 0, 30, tzinfo=NY),
        repository_def=definitions.get_repository_def(),
        resources={"pipeline": PipelineResource.from_config(config)},
    )
    [request] = schedule.evaluate_tick(context).run_requests

    assert (request.job_name, request.partition_key) == (None, None)
    assert request.tags["dagster/asset_partition_range_start"] == "2026-11-18"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-11-21"
    assert sorted(k.to_user_string() for k in request.asset_selection) == sorted(SNAPSHOT_BUILDERS)
    result = definitions.resolve_job_def("snapshot_job").execute_in_process(
        instance=instance, tags=request.tags, asset_selection=request.asset_selection
    )
    assert result.success
    assert_every_night_built(sqlite_url)


def test_a_gap_longer_than_sixty_days_builds_the_last_sixty(sqlite_url: str) -> None:
    with get_engine(sqlite_url).begin() as conn:
        for table in SNAPSHOT_BUILDERS:
            build_snapshot_day(conn, table, date(2026, 8, 1))
        missing = missing_snapshot_days(conn, date(2026, 11, 21))

    first = date(2026, 11, 21) - timedelta(days=59)
    assert first == date(2026, 9, 23)
    assert missing == {
        table: [first + timedelta(days=n) for n in range(60)] for table in SNAPSHOT_BUILDERS
    }
