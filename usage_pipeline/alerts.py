"""Webhook alerts (config ``notifications.webhook_url``): a Slack-compatible JSON POST
``{"text": ...}`` per failing drop watch, rejected file and failed rollup reconciliation.

Every alert has a *cause* (a rejected file version and its reason, a feed's night and the
drop watch's outcome, the failing reconciliation totals). A cause is claimed in
``alerts_sent`` before posting, so concurrent runs never post it twice, and released again
when the post fails, so a later run retries it. Posting never breaks a run: a timeout, a
refused connection or an error status is logged and the run goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.drops import DropStatus
from usage_pipeline.warehouse.tables import alerts_sent

TIMEOUT_SECONDS = 5.0
LOG = logging.getLogger("usage_pipeline.alerts")


@dataclass(frozen=True)
class Alert:
    """One message and the cause it is about (sent at most once per cause)."""

    cause: str
    subject: str
    text: str


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _subject(status: DropStatus) -> str:
    return f"drop {status.feed} {status.day.isoformat()}"


def drop_alerts(conn: sa.Connection, status: DropStatus, config: PipelineConfig) -> list[Alert]:
    """A failing drop watch: one alert per (feed, night, outcome). A night that passes after
    an alert was sent for it gets one "cleared" message."""
    subject = _subject(status)
    if not status.passed:
        where = (
            f"the {status.feed}/ folder of the inbox {config.inbox}, and the missing_drop check"
            f" of {status.feed}_drop_arrivals in the Dagster UI (or 'usage-pipeline status')"
        )
        due = status.due.strftime("%Y-%m-%d %H:%M")
        text = (
            f"usage_pipeline drop watch FAILED ({status.outcome}, due {due} {config.timezone}):"
            f" {status.sentence()} Where to look: {where}."
        )
        return [Alert(f"{subject} {status.outcome}", subject, text)]
    a = alerts_sent.c
    alerted = conn.execute(
        sa.select(sa.func.count()).where(a.subject == subject, a.cause != f"{subject} cleared")
    ).scalar_one()
    if not alerted:
        return []
    text = f"usage_pipeline drop watch cleared: {status.sentence()}"
    return [Alert(f"{subject} cleared", subject, text)]


def rejected_file_alerts(outcomes: Iterable[Any]) -> list[Alert]:
    """One alert per rejected file version and reason (``outcomes``: IngestOutcome)."""
    alerts = []
    for outcome in outcomes:
        if outcome.status != "rejected" or outcome.file_id is None:
            continue
        reason = outcome.error or f"File {outcome.source_key} is rejected."
        if outcome.quarantine:
            where = f"{outcome.quarantine} and {outcome.quarantine}.errors.csv"
        else:
            where = "'usage-pipeline status'"
        text = (
            f"usage_pipeline rejected file: {reason} Where to look: {where} (ledger file_id"
            f" {outcome.file_id})."
        )
        subject = f"file {outcome.file_id}"
        alerts.append(Alert(f"{subject} rejected {_digest(reason)}", subject, text))
    return alerts


def reconciliation_alert(failing: list[Any]) -> list[Alert]:
    """One alert for a failed rollup reconciliation (``failing``: rollups.DayTotals)."""
    if not failing:
        return []
    parts = [
        f"{t.day}: loaded user_activity count {t.contribution_count}, user_activity_daily"
        f" {t.user_count}, account_activity_daily {t.account_count}; loaded account_usage count"
        f" {t.account_usage_loaded}, account_activity_daily {t.account_usage_rolled}"
        for t in failing
    ]
    text = (
        f"usage_pipeline rollup reconciliation FAILED: totals disagree on {'; '.join(parts)}."
        " Where to look: the rollup_reconciliation check of account_activity_daily in the"
        " Dagster UI; re-materialise those days of the rollups."
    )
    subject = "reconciliation " + ",".join(t.day.isoformat() for t in failing)
    return [Alert(f"{subject} {_digest(text)}", subject, text)]


def _claim(engine: sa.Engine, alert: Alert) -> bool:
    try:
        with engine.begin() as conn:
            conn.execute(
                alerts_sent.insert().values(
                    cause=alert.cause,
                    subject=alert.subject,
                    message=alert.text,
                    sent_at=datetime.now(timezone.utc),
                )
            )
    except sa.exc.IntegrityError:
        return False  # sent already (or being sent by another run)
    return True


def _release(engine: sa.Engine, alert: Alert) -> None:
    with engine.begin() as conn:
        conn.execute(alerts_sent.delete().where(alerts_sent.c.cause == alert.cause))


def post(url: str, text: str, log: Any = LOG) -> bool:
    """POST ``{"text": text}``; True on a 2xx answer. Never raises."""
    body = json.dumps({"text": text}).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            if 200 <= response.status < 300:
                return True
            problem = f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        problem = f"HTTP {exc.code}"
    except Exception as exc:  # a timeout, a refused connection, a bad URL: never fatal
        problem = f"{type(exc).__name__}: {exc}"
    log.warning(f"The alert webhook did not take the message ({problem}); a later run retries.")
    return False


def send(engine: sa.Engine, config: PipelineConfig, alerts: list[Alert], log: Any = LOG) -> int:
    """Post each alert whose cause was not sent before; return how many were delivered."""
    url = config.webhook_url
    if not url or not alerts:
        return 0
    delivered = 0
    for alert in alerts:
        try:
            if not _claim(engine, alert):
                continue
            if post(url, alert.text, log):
                delivered += 1
            else:
                _release(engine, alert)
        except sa.exc.SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            log.warning(f"The alert about {alert.subject} could not be recorded ({reason}).")
    return delivered
