"""SPEC §2 day assignment: instance time zone, offsets converted, naive read in the zone,
drop date from the file name or last-modified time, right across DST changes."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from usage_pipeline.config import PipelineConfig
from usage_pipeline.days import drop_date
from usage_pipeline.definitions import build_definitions
from usage_pipeline.defs.daily.partitions import daily_partitions
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.snapshots import SNAPSHOT_BUILDERS, build_snapshot_day
from usage_pipeline.warehouse.engine import get_engine
from usage_pipeline_tests.helpers import drop, rows, run

NEW_YORK = ZoneInfo("America/New_York")

# (user, timestamp, expected New York day)
DST_CASES = [
    ("spring-1", "2026-03-08T04:30:00Z", "2026-03-07"),  # 23:30 EST
    ("spring-2", "2026-03-08T05:30:00Z", "2026-03-08"),  # 00:30 EST
    ("spring-3", "2026-03-09T03:59:59Z", "2026-03-08"),  # 23:59:59 EDT
    ("spring-4", "2026-03-09T04:00:00Z", "2026-03-09"),  # 00:00 EDT
    ("spring-5", "2026-03-08T02:30:00", "2026-03-08"),  # naive, does not exist locally
    ("spring-6", "2026-03-08T23:30:00-04:00", "2026-03-08"),
    ("fall-1", "2026-11-01T03:59:00Z", "2026-10-31"),  # 23:59 EDT
    ("fall-2", "2026-11-01T04:00:00Z", "2026-11-01"),  # 00:00 EDT
    ("fall-3", "2026-11-01T01:30:00-05:00", "2026-11-01"),  # the second 01:30 (EST)
    ("fall-4", "2026-11-01T01:30:00", "2026-11-01"),  # naive, ambiguous locally
    ("fall-5", "2026-11-02T04:30:00Z", "2026-11-01"),  # 23:30 EST
    ("fall-6", "2026-11-02T05:00:00+00:00", "2026-11-02"),  # 00:00 EST
    ("fall-7", "2026-11-02T00:30:00+01:00", "2026-11-01"),  # 18:30 EST
    ("date-only", "2026-11-20", "2026-11-20"),  # "-20" is not an offset
]


def test_timestamps_land_on_new_york_days_across_dst(inbox: Path, warehouse_url: str) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url, timezone="America/New_York")
    drop(
        inbox,
        "user_activity/history.csv",
        [f"A1,{user},Reports,view,1,{stamp}" for user, stamp, _ in DST_CASES],
    )

    with dg.DagsterInstance.ephemeral() as instance:
        report = run(config, instance, as_of=datetime(2026, 11, 21, 12, tzinfo=timezone.utc))

    assert report.files[0]["rows_loaded"] == len(DST_CASES)
    assert rows(warehouse_url, "user_activity_daily", columns="user_id, activity_date") == sorted(
        (user, day) for user, _, day in DST_CASES
    )


def test_rows_without_date_take_the_drop_date(inbox: Path, sqlite_url: str) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=sqlite_url, timezone="America/New_York")
    header = "account_id,user_id,module,activity,count,date"
    drop(inbox, "user_activity/export_20261030.csv", ["A1,u1,Reports,view,2,"], header=header)
    drop(
        inbox,
        "user_activity/export.csv",
        ["A1,u2,Reports,view,3,2026-10-15"],
        header=header,
        modified=datetime(2026, 11, 2, 3, 0, tzinfo=timezone.utc),
    )  # 22:00 EST on Nov 1
    drop(
        inbox,
        "user_activity/nodate.csv",
        ["A1,u3,Reports,view,4,"],
        header=header,
        modified=datetime(2026, 11, 2, 3, 0, tzinfo=timezone.utc),
    )

    with dg.DagsterInstance.ephemeral() as instance:
        run(config, instance)

    assert rows(sqlite_url, "user_activity_daily", columns="user_id, activity_date, count") == [
        ("u1", "2026-10-30", 2),
        ("u2", "2026-10-15", 3),
        ("u3", "2026-11-01", 4),
    ]


@pytest.mark.parametrize(
    ("name", "modified", "expected"),
    [
        ("usage_2026-03-08.csv", datetime(2026, 3, 9, 12, tzinfo=timezone.utc), date(2026, 3, 8)),
        ("usage_20260308.csv.gz", datetime(2026, 3, 9, 12, tzinfo=timezone.utc), date(2026, 3, 8)),
        (
            "usage_2026-13-40.csv",
            datetime(2026, 11, 2, 4, 30, tzinfo=timezone.utc),
            date(2026, 11, 1),
        ),
        ("usage.csv", datetime(2026, 11, 2, 5, 0, tzinfo=timezone.utc), date(2026, 11, 2)),
    ],
)
def test_drop_date(name: str, modified: datetime, expected: date) -> None:
    assert drop_date(name, modified, NEW_YORK) == expected


def test_daily_partitions_follow_the_instance_zone() -> None:
    partitions = daily_partitions("America/New_York")

    fall = partitions.time_window_for_partition_key("2026-11-01")
    spring = partitions.time_window_for_partition_key("2026-03-08")

    assert fall.start.isoformat() == "2026-11-01T00:00:00-04:00"
    assert fall.end.timestamp() - fall.start.timestamp() == timedelta(hours=25).total_seconds()
    assert spring.end.timestamp() - spring.start.timestamp() == timedelta(hours=23).total_seconds()


def test_snapshot_schedule_targets_the_completed_day_and_missed_nights(sqlite_url: str) -> None:
    config = PipelineConfig(timezone="America/New_York", warehouse=sqlite_url)
    definitions = build_definitions(config)
    schedule = definitions.resolve_schedule_def("snapshot_schedule")
    tick = datetime(2026, 11, 21, 0, 30, tzinfo=NEW_YORK)

    def evaluate() -> dg.ScheduleExecutionData:
        with dg.DagsterInstance.ephemeral() as instance:
            context = dg.build_schedule_context(
                instance=instance,
                scheduled_execution_time=tick,
                repository_def=definitions.get_repository_def(),
                resources={"pipeline": PipelineResource.from_config(config)},
            )
            return schedule.evaluate_tick(context)

    assert schedule.cron_schedule == "30 0 * * *"
    assert schedule.execution_timezone == "America/New_York"
    assert [r.partition_key for r in evaluate().run_requests] == ["2026-11-20"]

    with get_engine(sqlite_url).begin() as conn:  # the machine was down after the 17th
        for table in SNAPSHOT_BUILDERS:
            build_snapshot_day(conn, table, date(2026, 11, 17))
    [missed] = evaluate().run_requests
    assert missed.partition_key is None
    assert missed.tags["dagster/asset_partition_range_start"] == "2026-11-18"
    assert missed.tags["dagster/asset_partition_range_end"] == "2026-11-20"
    assert sorted(k.to_user_string() for k in missed.asset_selection) == [
        "account_hierarchy_snapshot",
        "account_top_users",
        "account_usage_snapshot",
        "user_usage_snapshot",
    ]

    with get_engine(sqlite_url).begin() as conn:
        for day in (18, 19, 20):
            for table in SNAPSHOT_BUILDERS:
                build_snapshot_day(conn, table, date(2026, 11, day))
    skipped = evaluate()
    assert skipped.run_requests == []
    assert skipped.skip_message == "Every snapshot up to 2026-11-20 is built."


def test_a_row_dated_tomorrow_is_rolled_up(inbox: Path, sqlite_url: str) -> None:
    tomorrow = datetime.now(timezone.utc).date() + timedelta(days=1)
    config = PipelineConfig(inbox=str(inbox), warehouse=sqlite_url)
    drop(inbox, "user_activity/early.csv", [f"A1,u1,Reports,view,2,{tomorrow}T01:00:00Z"])

    with dg.DagsterInstance.ephemeral() as instance:
        report = run(config, instance, as_of=datetime.now(timezone.utc))

    assert report.failed_runs == []
    assert report.rollup_days == [tomorrow.isoformat()]
    assert rows(sqlite_url, "user_activity_daily", columns="activity_date, count") == [
        (tomorrow.isoformat(), 2)
    ]
