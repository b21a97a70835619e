"""PostgreSQL (COPY) and SQLite (executemany, and the JSON inserts of its writer thread)
produce identical tables for the same inbox (a week of the demo's drops of every feed), and
the analyst queries of docs/queries.md give the same answers on both."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from usage_pipeline.config import load_config
from usage_pipeline.demo import all_demo_drops
from usage_pipeline.warehouse import sqlite_append
from usage_pipeline.warehouse.engine import get_engine, read_connection
from usage_pipeline.warehouse.tables import metadata
from usage_pipeline_tests.helpers import rows, run

VOLATILE = {
    "ingested_files": "file_id, feed, source_key, sha256, size_bytes, status,"
    " rows_total, rows_loaded, rows_rejected, error, min_day, max_day",
    "pipeline_state": "name",
    "snapshot_dates": "snapshot_table, snapshot_date",
    # every run refreshes it (end_of_run_job); closes_at comes back as text on SQLite
    "billing_periods": "period, status",
}


def test_postgres_and_sqlite_tables_are_identical(
    inbox: Path, sqlite_url: str, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zoneinfo import ZoneInfo

    # every SQLite chunk of integers and text goes through the writer thread, as a large
    # file's do (the others, with decimals, stay executemany)
    monkeypatch.setattr(sqlite_append, "BACKGROUND_MIN_ROWS", 1)
    json_inserts: list[str] = []
    sa.event.listen(
        get_engine(sqlite_url),
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: (
            json_inserts.append(statement) if "json_each" in statement else None
        ),
    )

    for item in all_demo_drops(datetime(2026, 11, 14).date(), 7, ZoneInfo("Europe/Berlin")):
        path = inbox / item.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item.content)
    as_of = datetime(2026, 11, 21, 6, tzinfo=timezone.utc)
    results = {}
    for url in (sqlite_url, pg_url):
        config = load_config(DEMO_CONFIG, environ={}).with_overrides(
            inbox=str(inbox), warehouse=url, timezone="Europe/Berlin"
        )
        with dg.DagsterInstance.ephemeral() as instance:
            report = run(config, instance, as_of=as_of)
        results[url] = {
            table: [
                tuple(_instant(v) for v in row)
                for row in rows(url, table, columns=VOLATILE.get(table, "*"))
            ]
            for table in sorted(metadata.tables)
        }
        assert report.files, "the inbox must not be empty"

    answers = {url: doc_queries(url) for url in (sqlite_url, pg_url)}
    for n, (a, b) in enumerate(zip(answers[sqlite_url], answers[pg_url], strict=True)):
        assert a == b, (n, [r for r in a if r not in b][:3], [r for r in b if r not in a][:3])
    assert all(answers[sqlite_url]), "every query answers something on the demo week"

    sqlite_tables, pg_tables = results[sqlite_url], results[pg_url]
    assert len(json_inserts) >= 30  # the user_activity, accounts and events files, at least
    assert len(sqlite_tables["user_activity_daily"]) > 100
    assert len(sqlite_tables["account_usage_snapshot"]) == 9  # 8 active + 1 directory-only
    assert sqlite_tables["pending_work"] == []  # every rollup and refresh was done
    for table in sqlite_tables:
        assert pg_tables[table] == sqlite_tables[table], table


REPO = Path(__file__).resolve().parents[1]
QUERIES = REPO / "docs" / "queries.md"
DEMO_CONFIG = REPO / "data" / "pipeline.yaml"


def doc_queries(url: str) -> list[list[tuple]]:
    """Every ``sql`` block of docs/queries.md, run on ``url`` (values made comparable)."""
    text = QUERIES.read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 6
    answers = []
    with read_connection(get_engine(url)) as conn:
        for sql in blocks:
            found = conn.execute(sa.text(sql)).all()
            answers.append([tuple(_comparable(v) for v in row) for row in found])
    return answers


def _instant(value: object) -> object:
    """Timestamps as SQLite stores them (naive UTC text): PostgreSQL returns aware values."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _comparable(value: object) -> object:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 6)
    if value is not None and type(value).__name__ == "Decimal":
        return round(float(value), 6)
    return value
