"""SPEC §5 alerts (issue 10, item 6): with notifications.webhook_url, a failing drop watch, a
rejected file and a failed rollup reconciliation each post one Slack-compatible message
({"text": ...}) to a real HTTP server on loopback; the same cause never posts twice; a
webhook that fails never breaks a run and is retried by the next one."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from usage_pipeline import alerts, rollups
from usage_pipeline.config import PipelineConfig
from usage_pipeline.definitions import build_definitions
from usage_pipeline_tests.helpers import drop, rows, run
from usage_pipeline_tests.webhook_server import webhook_server

NEW_YORK = ZoneInfo("America/New_York")
AS_OF = datetime(2026, 11, 21, 1, 30, tzinfo=NEW_YORK).astimezone(timezone.utc)
EVENING = datetime(2026, 11, 20, 23, 0, tzinfo=NEW_YORK)
BAD = "user_activity/usage_2026-11-20_a.csv"
GOOD = "user_activity/usage_2026-11-20_b.csv"


def _config(inbox: Path, warehouse_url: str, url: str) -> PipelineConfig:
    return PipelineConfig(
        inbox=str(inbox), warehouse=warehouse_url, timezone="America/New_York", webhook_url=url
    )


def _where(inbox: Path) -> str:
    return (
        f"Where to look: the user_activity/ folder of the inbox {inbox}, and the missing_drop"
        " check of user_activity_drop_arrivals in the Dagster UI (or 'usage-pipeline status')."
    )


def test_one_message_per_cause_never_repeated(inbox: Path, warehouse_url: str) -> None:
    with webhook_server() as hook, dg.DagsterInstance.ephemeral() as instance:
        config = _config(inbox, warehouse_url, hook.url)
        run(config, instance, as_of=AS_OF)
        run(config, instance, as_of=AS_OF)  # still missing: no second message
        after_missing = list(hook.texts)
        drop(inbox, BAD, ["A1,u1,Reports,view,-3,2026-11-20T10:00:00"], modified=EVENING)
        run(config, instance, as_of=AS_OF)
        run(config, instance, as_of=AS_OF)
        after_rejected = list(hook.texts)
        drop(inbox, GOOD, ["A1,u1,Reports,view,3,2026-11-20T10:00:00"], modified=EVENING)
        run(config, instance, as_of=AS_OF)
        run(config, instance, as_of=AS_OF)

    quarantine = inbox.parent / "quarantine" / BAD
    reason = (
        "1 of 1 rows are invalid, more than the max_reject_ratio of 0.05 (first: row 2, column"
        " count: count '-3' is negative)"
    )
    missing = (
        "usage_pipeline drop watch FAILED (missing, due 2026-11-21 01:00 America/New_York):"
        f" No user_activity file for 2026-11-20 has arrived. {_where(inbox)}"
    )
    rejected_file = (
        f"usage_pipeline rejected file: File {BAD} is rejected: {reason}. Where to look:"
        f" {quarantine} and {quarantine}.errors.csv (ledger file_id 1)."
    )
    rejected_drop = (
        "usage_pipeline drop watch FAILED (rejected, due 2026-11-21 01:00 America/New_York):"
        f" The user_activity drop for 2026-11-20 arrived but was not loaded: {BAD} was rejected"
        f" ({reason}). {_where(inbox)}"
    )
    cleared = (
        "usage_pipeline drop watch cleared: The user_activity drop for 2026-11-20 was loaded:"
        f" {GOOD}."
    )
    assert after_missing == [missing]
    assert after_rejected == [missing, rejected_file, rejected_drop]
    assert hook.texts == [missing, rejected_file, rejected_drop, cleared]
    assert len(hook.received) == 4
    assert rows(warehouse_url, "alerts_sent", columns="cause") == [
        ("drop user_activity 2026-11-20 cleared",),
        ("drop user_activity 2026-11-20 missing",),
        ("drop user_activity 2026-11-20 rejected",),
        (f"file 1 rejected {alerts._digest(f'File {BAD} is rejected: {reason}.')}",),
    ]


def test_a_failed_reconciliation_posts_once(
    inbox: Path, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = rollups.day_totals

    def off_by_one(conn, day: date) -> rollups.DayTotals:  # type: ignore[no-untyped-def]
        totals = real(conn, day)
        return dataclasses.replace(totals, user_count=totals.user_count - 1)

    monkeypatch.setattr(rollups, "day_totals", off_by_one)
    drop(inbox, GOOD, ["A1,u1,Reports,view,3,2026-11-20T10:00:00"], modified=EVENING)
    with webhook_server() as hook, dg.DagsterInstance.ephemeral() as instance:
        config = _config(inbox, warehouse_url, hook.url)
        report = run(config, instance, as_of=AS_OF)
        again = (
            build_definitions(config)
            .resolve_job_def("rollup_job")
            .execute_in_process(instance=instance, partition_key="2026-11-20", raise_on_error=False)
        )  # the same day rolled up again: the same totals, the same cause

    assert (
        "account_activity_daily:rollup_reconciliation [2026-11-20] Totals disagree on 2026-11-20."
        in report.failed_checks
    )
    assert [e.passed for e in again.get_asset_check_evaluations()] == [False]
    assert hook.texts == [
        "usage_pipeline rollup reconciliation FAILED: totals disagree on 2026-11-20: loaded"
        " user_activity count 3, user_activity_daily 2, account_activity_daily 3; loaded"
        " account_usage count 0, account_activity_daily 0. Where to look: the"
        " rollup_reconciliation check of account_activity_daily in the Dagster UI;"
        " re-materialise those days of the rollups."
    ]


def test_a_failing_webhook_never_breaks_a_run_and_is_retried(
    inbox: Path, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerts, "TIMEOUT_SECONDS", 0.5)
    with dg.DagsterInstance.ephemeral() as instance:
        refused = run(_config(inbox, warehouse_url, "http://127.0.0.1:9/hook"), instance, AS_OF)
        with webhook_server() as hook:
            hook.statuses = [500]
            config = _config(inbox, warehouse_url, hook.url)
            answered_500 = run(config, instance, as_of=AS_OF)
            retried = run(config, instance, as_of=AS_OF)
            done = run(config, instance, as_of=AS_OF)

    for report in (refused, answered_500, retried, done):
        assert report.failed_runs == []
        assert report.exit_code == 1  # the drop is missing: the check fails, the run does not
    assert [body["_status"] for body in hook.received] == [500, 200]
    assert hook.texts == [hook.received[0]["text"]]
    assert hook.texts[0].startswith("usage_pipeline drop watch FAILED (missing")


def test_posting_times_out_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setattr(alerts, "TIMEOUT_SECONDS", 0.3)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    port = listener.getsockname()[1]
    warnings: list[str] = []

    class Log:
        def warning(self, message: str) -> None:
            warnings.append(message)

    started = datetime.now(timezone.utc)
    delivered = alerts.post(f"http://127.0.0.1:{port}/hook", "hello", Log())
    elapsed = (datetime.now(timezone.utc) - started).total_seconds()
    listener.close()

    assert delivered is False and elapsed < 5
    assert warnings == [
        "The alert webhook did not take the message (TimeoutError: timed out); a later run retries."
    ]


def test_no_webhook_no_record(inbox: Path, warehouse_url: str) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url)
    with dg.DagsterInstance.ephemeral() as instance:
        run(config, instance, as_of=datetime.combine(date(2026, 11, 21), time(12), timezone.utc))
    assert rows(warehouse_url, "alerts_sent") == []
