"""SPEC §4/§5 drop watch per feed (issue 10, item 5) and the volume check (item 12): the
missing_drop check tells no file, a rejected file, an empty file and a loaded one apart; a
late arrival clears it; only the configured feeds are watched; weekdays-only nights; the
volume check warns at 40 % of the median of the previous 14 loaded nights."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from usage_pipeline.config import DropWatch, PipelineConfig
from usage_pipeline.definitions import build_definitions
from usage_pipeline.drops import due_day
from usage_pipeline_tests.helpers import drop, run

NEW_YORK = ZoneInfo("America/New_York")
NIGHT = date(2026, 11, 20)
AS_OF = datetime(2026, 11, 21, 1, 30, tzinfo=NEW_YORK)  # 23:00 + 2 h has passed
ARRIVALS = dg.AssetKey("user_activity_drop_arrivals")


def _evening(day: date) -> datetime:
    return datetime.combine(day, time(23, 0), tzinfo=NEW_YORK)


def _drop_night(inbox: Path, name: str, day: date, lines: list[str]) -> None:
    drop(inbox, f"user_activity/{name}", lines, modified=_evening(day))


def _drop_checks(report) -> list[str]:  # type: ignore[no-untyped-def]
    return [c for c in report.failed_checks if "_drop_arrivals:" in c]


def _latest(instance: dg.DagsterInstance, check: str) -> dg.AssetCheckEvaluation:
    key = dg.AssetCheckKey(ARRIVALS, check)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    return record.event.dagster_event.event_specific_data


def test_due_day_daily_and_weekdays() -> None:
    deadline, grace = time(23, 0), timedelta(hours=2)
    friday_night_due = datetime(2026, 11, 21, 1, 0, tzinfo=NEW_YORK)  # a Saturday, 01:00
    monday_morning = datetime(2026, 11, 23, 9, 0, tzinfo=NEW_YORK)
    assert due_day(friday_night_due - timedelta(minutes=1), NEW_YORK, deadline, grace) == date(
        2026, 11, 19
    )
    assert due_day(friday_night_due, NEW_YORK, deadline, grace) == date(2026, 11, 20)
    assert due_day(monday_morning, NEW_YORK, deadline, grace) == date(2026, 11, 22)
    assert due_day(monday_morning, NEW_YORK, deadline, grace, "weekdays") == date(2026, 11, 20)
    assert due_day(monday_morning, NEW_YORK, time(6, 0), timedelta(hours=1), "weekdays") == date(
        2026, 11, 23
    )


def test_only_configured_feeds_are_watched_on_their_days() -> None:
    default = build_definitions(PipelineConfig())
    custom = build_definitions(
        PipelineConfig(
            drops=(
                DropWatch("usage_events", time(6, 0), timedelta(hours=1), "weekdays"),
                DropWatch("user_activity", days="weekdays"),
            )
        )
    )
    nothing = build_definitions(PipelineConfig(drops=()))

    def watched(defs: dg.Definitions) -> list[str]:
        keys = defs.resolve_all_asset_keys()
        return sorted(k.to_user_string() for k in keys if k.path[0].endswith("_drop_arrivals"))

    assert watched(default) == ["user_activity_drop_arrivals"]
    assert default.resolve_schedule_def("missing_drop_schedule").cron_schedule == "0 1 * * *"
    assert watched(custom) == ["usage_events_drop_arrivals", "user_activity_drop_arrivals"]
    # 06:00 + 1 h on Monday..Friday; 23:00 + 2 h falls on Tuesday..Saturday
    assert sorted(custom.resolve_schedule_def("missing_drop_schedule").cron_schedule) == [
        "0 1 * * 2,3,4,5,6",
        "0 7 * * 1,2,3,4,5",
    ]
    assert watched(nothing) == []
    assert [s.name for s in nothing.schedules if s.name == "missing_drop_schedule"] == []


def test_the_four_outcomes_then_a_late_file_clears_it(inbox: Path, warehouse_url: str) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url, timezone="America/New_York")
    as_of = AS_OF.astimezone(timezone.utc)
    header_only = "account_id,user_id,module,activity,count,timestamp\n"

    with dg.DagsterInstance.ephemeral() as instance:
        missing = run(config, instance, as_of=as_of)
        drop(inbox, "user_activity/usage_2026-11-20_a.csv", header_only, modified=_evening(NIGHT))
        empty = run(config, instance, as_of=as_of)
        _drop_night(
            inbox, "usage_2026-11-20_b.csv", NIGHT, ["A1,u1,Reports,view,-3,2026-11-20T10:00:00"]
        )
        rejected = run(config, instance, as_of=as_of)
        _drop_night(
            inbox, "usage_2026-11-20_c.csv", NIGHT, ["A1,u1,Reports,view,3,2026-11-20T10:00:00"]
        )
        loaded = run(config, instance, as_of=as_of)
        evaluation = _latest(instance, "missing_drop")

    check = "user_activity_drop_arrivals:missing_drop"
    assert _drop_checks(missing) == [f"{check} No user_activity file for 2026-11-20 has arrived."]
    assert _drop_checks(empty) == [
        f"{check} The user_activity drop for 2026-11-20 arrived empty:"
        " user_activity/usage_2026-11-20_a.csv had no data rows."
    ]
    assert _drop_checks(rejected) == [
        f"{check} The user_activity drop for 2026-11-20 arrived but was not loaded:"
        " user_activity/usage_2026-11-20_b.csv was rejected (1 of 1 rows are invalid, more than"
        " the max_reject_ratio of 0.05 (first: row 2, column count: count '-3' is negative))."
    ]
    assert _drop_checks(loaded) == []
    assert loaded.exit_code == 0
    assert evaluation.passed
    assert evaluation.description == (
        "The user_activity drop for 2026-11-20 was loaded: user_activity/usage_2026-11-20_c.csv."
    )
    assert evaluation.metadata["outcome"].value == "loaded"


def test_a_deployment_without_user_activity_is_not_failing(inbox: Path, warehouse_url: str) -> None:
    watch = DropWatch("usage_events", time(6, 0), timedelta(hours=1), "weekdays")
    config = PipelineConfig(
        inbox=str(inbox), warehouse=warehouse_url, timezone="America/New_York", drops=(watch,)
    )
    config = dataclasses.replace(
        config, usage_events=dataclasses.replace(config.usage_events, meters=("api_calls",))
    )
    drop(
        inbox,
        "usage_events/upload_2026-11-20.csv",
        ["c1,,e1,2026-11-20T10:00:00,api.call,3"],
        header="customer_ref,subscription_ref,event_ref,timestamp,event,api_calls",
        modified=datetime(2026, 11, 21, 5, 0, tzinfo=NEW_YORK),
    )
    sunday = datetime(2026, 11, 22, 12, 0, tzinfo=NEW_YORK).astimezone(timezone.utc)

    with dg.DagsterInstance.ephemeral() as instance:
        report = run(config, instance, as_of=sunday)
        key = dg.AssetCheckKey(dg.AssetKey("usage_events_drop_arrivals"), "missing_drop")
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]

    assert report.failed_checks == [] and report.exit_code == 0
    assert record.event.dagster_event.event_specific_data.description == (
        "The usage_events drop for 2026-11-20 was loaded: usage_events/upload_2026-11-20.csv."
    )


def test_volume_warns_at_40_percent_of_the_median(inbox: Path, warehouse_url: str) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url, timezone="America/New_York")
    first = NIGHT - timedelta(days=15)
    for offset in range(15):  # an old busy night, then 14 nights of 6..19 rows
        night = first + timedelta(days=offset)
        count = 100 if offset == 0 else offset + 5
        lines = [f"A1,u{n},Reports,view,1,{night}T12:00:00" for n in range(count)]
        _drop_night(inbox, f"usage_{night}.csv", night, lines)
    _drop_night(  # median of 6..19 is 12.5; 5 rows are 40 % of it
        inbox,
        "usage_2026-11-20.csv",
        NIGHT,
        [f"A1,u{n},Reports,view,1,{NIGHT}T12:00:00" for n in range(5)],
    )

    with dg.DagsterInstance.ephemeral() as instance:
        report = run(config, instance, as_of=AS_OF.astimezone(timezone.utc))
        evaluation = _latest(instance, "volume")

    assert _drop_checks(report) == [
        "user_activity_drop_arrivals:volume The user_activity drop for 2026-11-20 loaded 5 rows,"
        " 40% of the median 12.5 of the previous 14 loaded nights: outside the band 50% to 200%."
    ]
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert {k: evaluation.metadata[k].value for k in ("rows_loaded", "median_rows")} == {
        "rows_loaded": 5,
        "median_rows": 12.5,
    }
    assert evaluation.metadata["previous_nights"].value == 14
