"""SPEC §5 missing-drop check: no user_activity file for day D by the deadline (23:00) plus
grace (2h) fails loudly; once D's file is loaded it passes."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from usage_pipeline.config import PipelineConfig
from usage_pipeline.drops import due_day
from usage_pipeline_tests.helpers import drop, run

NEW_YORK = ZoneInfo("America/New_York")


def test_due_day_is_the_last_day_past_deadline_and_grace() -> None:
    deadline, grace = time(23, 0), timedelta(hours=2)
    just_before = datetime(2026, 11, 21, 0, 59, tzinfo=NEW_YORK)
    at_due = datetime(2026, 11, 21, 1, 0, tzinfo=NEW_YORK)
    assert due_day(just_before, NEW_YORK, deadline, grace) == date(2026, 11, 19)
    assert due_day(at_due, NEW_YORK, deadline, grace) == date(2026, 11, 20)
    assert due_day(at_due, NEW_YORK, time(6, 0), timedelta(0)) == date(2026, 11, 20)


def test_missing_drop_fails_then_passes(inbox: Path, sqlite_url: str) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=sqlite_url, timezone="America/New_York")
    drop(inbox, "user_activity/usage_2026-11-19.csv", ["A1,u1,Reports,view,1,2026-11-19T12:00:00"])
    as_of = datetime(2026, 11, 21, 1, 30, tzinfo=NEW_YORK).astimezone(timezone.utc)

    with dg.DagsterInstance.ephemeral() as instance:
        missing = run(config, instance, as_of=as_of)
        drop(
            inbox,
            "user_activity/usage_2026-11-20.csv",
            ["A1,u1,Reports,view,1,2026-11-20T12:00:00"],
        )
        arrived = run(config, instance, as_of=as_of)
        evaluations = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("user_activity_drop_arrivals"), "missing_drop")]
        )

    assert missing.failed_checks == [
        "user_activity_drop_arrivals:missing_drop No user_activity file for 2026-11-20 has arrived."
    ]
    assert missing.exit_code == 1
    assert arrived.failed_checks == [] and arrived.exit_code == 0
    assert list(evaluations.values())[0].status.value == "SUCCEEDED"
