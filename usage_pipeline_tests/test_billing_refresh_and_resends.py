"""SPEC §2.6: ``billing_periods`` is refreshed by every ``usage-pipeline run`` (in the one
end-of-run Dagster run, beside the drop watch), whether or not anything loaded; a re-sent
file's events that are already stored are duplicates also when their period has become
``final``, and only new events of a final period are errors.

Europe/Amsterdam, grace 8 h: October 2026 ends at 2026-11-01 00:00 CET (23:00Z on 10-31),
is draft until 08:00 CET (07:00Z) and final from then on.
"""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import yaml

from usage_pipeline.config import PipelineConfig, parse_config
from usage_pipeline.definitions import build_definitions
from usage_pipeline.defs.watch.run_end import END_OF_RUN_JOB
from usage_pipeline.demo_data import solvimon
from usage_pipeline_tests.helpers import drop, invoke, rows, run

AMS = ZoneInfo("Europe/Amsterdam")
UTC = timezone.utc
HEADER = "customer_ref,subscription_ref,event_ref,timestamp,event,api_calls"
OCTOBER = [
    "C1,S1,e1,2026-10-30T10:00:00,api_request,3",  # naive: Amsterdam time
    "C1,S1,e2,2026-10-31T22:30:00Z,api_request,4",  # 23:30 CET on 10-31
]


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def settings(inbox: Path, url: str) -> PipelineConfig:
    return parse_config(
        {
            "timezone": "Europe/Amsterdam",
            "inbox": str(inbox),
            "warehouse": url,
            "usage_events": {"meters": ["api_calls"], "grace_hours": 8},
        }
    )


def put(inbox: Path, name: str, lines: list[str], dropped: datetime) -> None:
    drop(inbox, f"usage_events/{name}", lines, header=HEADER, modified=dropped)


def periods(url: str) -> list[tuple[str, str, str]]:
    """billing_periods as (period, status, closes_at in UTC ISO)."""
    found = []
    for period, status, closes in rows(url, "billing_periods"):
        moment = closes if isinstance(closes, datetime) else datetime.fromisoformat(str(closes))
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        found.append((period, status, moment.strftime("%Y-%m-%dT%H:%M:%SZ")))
    return found


def job_names(instance: dg.DagsterInstance) -> list[str]:
    return sorted(r.job_name for r in instance.get_runs())


def test_a_run_whose_only_file_was_rejected_still_moves_october_to_final(
    inbox: Path, warehouse_url: str, instance
) -> None:
    config = settings(inbox, warehouse_url)
    put(inbox, "october.csv", OCTOBER, datetime(2026, 10, 31, 23, tzinfo=AMS))
    run(config, instance, as_of=datetime(2026, 11, 1, 7, 59, tzinfo=AMS))
    assert periods(warehouse_url) == [
        ("2026-10", "draft", "2026-11-01T07:00:00Z"),
        ("2026-11", "open", "2026-12-01T07:00:00Z"),
    ]
    put(
        inbox,
        "november.csv",
        ["C1,S1,e3,2026-11-01T07:30:00,api_request,x"],
        datetime(2026, 11, 1, 7, 45, tzinfo=AMS),
    )

    report = run(config, instance, as_of=datetime(2026, 11, 1, 8, 0, 1, tzinfo=AMS))

    assert [(f["file"], f["status"]) for f in report.files if "status" in f] == [
        ("usage_events/november.csv", "rejected")
    ]
    assert periods(warehouse_url) == [
        ("2026-10", "final", "2026-11-01T07:00:00Z"),
        ("2026-11", "open", "2026-12-01T07:00:00Z"),
    ]
    # one end-of-run Dagster run per CLI pass refreshes the drop watch and the periods
    assert job_names(instance).count(END_OF_RUN_JOB) == 2
    assert "billing_periods_job" not in job_names(instance)
    assert "drop_watch_job" not in job_names(instance)
    [record] = instance.fetch_materializations(dg.AssetKey("billing_periods"), limit=1).records
    assert record.asset_materialization.metadata["as_of"].value == "2026-11-01T08:00:01+01:00"


def test_a_run_with_no_files_at_all_refreshes_the_periods(
    inbox: Path, warehouse_url: str, instance
) -> None:
    config = settings(inbox, warehouse_url)
    put(inbox, "october.csv", OCTOBER, datetime(2026, 10, 31, 23, tzinfo=AMS))
    run(config, instance, as_of=datetime(2026, 10, 31, 23, 30, tzinfo=AMS))
    assert periods(warehouse_url) == [("2026-10", "open", "2026-11-01T07:00:00Z")]

    report = run(config, instance, as_of=datetime(2026, 12, 1, 8, 0, 1, tzinfo=AMS))

    assert report.files == []
    assert periods(warehouse_url) == [
        ("2026-10", "final", "2026-11-01T07:00:00Z"),
        ("2026-12", "open", "2027-01-01T07:00:00Z"),  # the current period; November is gone
    ]


def test_the_end_of_run_job_selects_the_drop_watch_and_billing_periods(tmp_path: Path) -> None:
    config = PipelineConfig(inbox=str(tmp_path), warehouse=f"sqlite:///{tmp_path / 'w.db'}")
    definitions = build_definitions(config)

    job = definitions.resolve_job_def(END_OF_RUN_JOB)

    assert dg.AssetKey("billing_periods") in job.asset_layer.executable_asset_keys
    watched = definitions.resolve_job_def("drop_watch_job").asset_layer.executable_asset_keys
    assert watched and watched <= job.asset_layer.executable_asset_keys
    # the daemon keeps both jobs and their schedules
    schedule = definitions.resolve_schedule_def("billing_periods_schedule")
    assert (schedule.job_name, schedule.cron_schedule) == ("billing_periods_job", "0 * * * *")
    assert definitions.resolve_schedule_def("missing_drop_schedule").job_name == "drop_watch_job"


# --- re-sent files and final periods ------------------------------------------------------


def test_a_resent_file_of_a_final_period_is_skipped_not_rejected(
    inbox: Path, warehouse_url: str, instance
) -> None:
    config = settings(inbox, warehouse_url)
    put(inbox, "october.csv", OCTOBER, datetime(2026, 10, 31, 23, 45, tzinfo=AMS))
    run(config, instance, as_of=datetime(2026, 11, 1, 1, 0, tzinfo=AMS))
    # re-sent the next week under another name, with one new November event
    resent = [*reversed(OCTOBER), "C2,,e3,2026-11-02T09:00:00,api_request,5"]
    put(inbox, "resend/october_again.csv", resent, datetime(2026, 11, 2, 23, tzinfo=AMS))

    report = run(config, instance, as_of=datetime(2026, 11, 3, 1, 0, tzinfo=AMS))

    [info] = [f for f in report.files if "status" in f]
    assert (info["status"], info["events_added"], info["duplicate_event_refs"]) == ("loaded", 1, 2)
    assert not [c for c in report.failed_checks if "closed_period_events" in c]
    assert rows(
        warehouse_url, "ingested_files", columns="file_id, status, rows_total, rows_loaded, error"
    ) == [
        (1, "loaded", 2, 2, None),
        (
            2,
            "loaded",
            3,
            1,
            "File usage_events/resend/october_again.csv: 2 of 3 rows skipped as duplicates,"
            " their event_ref already ingested (first: row 2: event_ref 'e2' is already stored"
            " from file 1).",
        ),
    ]
    assert rows(
        warehouse_url, "usage_events", columns="event_ref, customer_ref, billing_period, file_id"
    ) == [("e1", "C1", "2026-10", 1), ("e2", "C1", "2026-10", 1), ("e3", "C2", "2026-11", 2)]
    assert rows(warehouse_url, "usage_meter_daily", columns="day, customer_ref, total, events") == [
        ("2026-10-30", "C1", 3.0, 1),
        ("2026-10-31", "C1", 4.0, 1),
        ("2026-11-02", "C2", 5.0, 1),
    ]
    assert rows(warehouse_url, "rejected_rows") == []
    assert periods(warehouse_url) == [
        ("2026-10", "final", "2026-11-01T07:00:00Z"),
        ("2026-11", "open", "2026-12-01T07:00:00Z"),
    ]


def test_only_new_events_of_a_final_period_are_errors(
    inbox: Path, warehouse_url: str, instance
) -> None:
    config = settings(inbox, warehouse_url)
    put(inbox, "october.csv", OCTOBER, datetime(2026, 10, 31, 23, 45, tzinfo=AMS))
    run(config, instance, as_of=datetime(2026, 11, 1, 1, 0, tzinfo=AMS))
    late = [OCTOBER[0], "C1,S1,e9,2026-10-29T12:00:00,api_request,7"]  # e9 is new
    put(inbox, "late.csv", late, datetime(2026, 11, 2, 23, tzinfo=AMS))

    report = run(config, instance, as_of=datetime(2026, 11, 3, 1, 0, tzinfo=AMS))

    [info] = [f for f in report.files if "status" in f]
    assert (info["status"], info["rows_total"], info["rows_rejected"]) == ("rejected", 2, 1)
    assert rows(
        warehouse_url, "rejected_rows", columns="file_id, row_number, column_name, error"
    ) == [
        (
            2,
            3,
            "timestamp",
            "timestamp '2026-10-29T12:00:00' is in billing period 2026-10, final since"
            " 2026-11-01T07:00:00Z: events of a final period are not accepted",
        )
    ]
    [check] = [c for c in report.failed_checks if "closed_period_events" in c]
    assert "1 event(s) are dated in final billing periods (2026-10: 1)" in check
    assert rows(warehouse_url, "usage_events", columns="event_ref, file_id") == [
        ("e1", 1),
        ("e2", 1),
    ]


def test_check_of_a_resent_file_reports_only_new_events_of_final_periods(
    tmp_path: Path, sqlite_url: str, instance
) -> None:
    inbox = tmp_path / "inbox"
    config = settings(inbox, sqlite_url)
    january = ["C1,S1,e1,2020-01-30T10:00:00,api_request,3"]  # final long ago (check: now)
    put(inbox, "january.csv", january, datetime(2020, 1, 30, 23, tzinfo=AMS))
    run(config, instance, as_of=datetime(2020, 1, 31, 1, 0, tzinfo=AMS))
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text(yaml.safe_dump(config.to_raw()), encoding="utf-8")
    resent = drop(tmp_path, "resent.csv", january, header=HEADER)
    late = drop(tmp_path, "late.csv", [*january, "C1,S1,e2,2020-01-29T10:00:00,api,1"], HEADER)

    ok = invoke("check", str(resent), "--feed", "usage_events", "--config", str(config_file))
    refused = invoke("check", str(late), "--feed", "usage_events", "--config", str(config_file))

    assert ok.exit_code == 0, ok.output
    assert ok.output.splitlines() == [
        f"File {resent} as feed usage_events:",
        "  rows: 1 total, 1 valid, 0 invalid",
        "  days: 2020-01-30",
        "OK: the file would be loaded.",
    ]
    assert refused.exit_code == 1
    assert refused.output.splitlines()[1:4] == [
        "  rows: 2 total, 1 valid, 1 invalid",
        "  days: 2020-01-30",
        "  row 3, column timestamp: timestamp '2020-01-29T10:00:00' is in billing period"
        " 2020-01, final since 2020-02-01T07:00:00Z: events of a final period are not accepted",
    ]


def test_the_demo_resend_crosses_a_final_period_and_adds_nothing(
    inbox: Path, sqlite_url: str, instance
) -> None:
    tz = ZoneInfo("UTC")
    config = parse_config(
        {"inbox": str(inbox), "warehouse": sqlite_url, "usage_events": solvimon.CONFIG}
    )
    first = date(2026, 10, 26)  # the last night is 11-01: October is final by its run
    drops = solvimon.drops(first, 7, tz)
    resend = next(d for d in drops if "/resend/" in d.key)
    assert resend.night == date(2026, 11, 1)
    files: dict[str, dict] = {}
    for index in range(7):  # each night's files, then the next morning's run
        night = first + timedelta(days=index)
        for item in (d for d in drops if d.night == night):
            path = inbox / item.key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(item.content)
            dropped = datetime.combine(night, time(23), tzinfo=tz).timestamp()
            os.utime(path, (dropped, dropped))
        morning = datetime.combine(night + timedelta(days=1), time(1, 30), tzinfo=tz)
        report = run(config, instance, as_of=morning)
        files.update({f["file"]: f for f in report.files if "status" in f})

    assert [key for key, f in files.items() if f["status"] != "loaded"] == [
        next(d.key for d in drops if d.key.endswith("_late.csv"))  # the strict rejection
    ]
    info = files[resend.key]
    assert (info["status"], info["events_added"], info["duplicate_event_refs"]) == (
        "loaded",
        0,
        solvimon.RESENT_ROWS,
    )
    assert periods(sqlite_url)[0][:2] == ("2026-10", "final")
