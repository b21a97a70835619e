"""PostgreSQL (COPY) and SQLite (executemany) produce identical tables for the same inbox."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from usage_pipeline.config import PipelineConfig
from usage_pipeline.demo import demo_drops
from usage_pipeline.warehouse.tables import metadata
from usage_pipeline_tests.helpers import rows, run

VOLATILE = {
    "ingested_files": "file_id, feed, source_key, sha256, size_bytes, status,"
    " rows_total, rows_loaded, rows_rejected, error, min_day, max_day",
    "pipeline_state": "name",
    "snapshot_dates": "snapshot_table, snapshot_date",
}


def test_postgres_and_sqlite_tables_are_identical(
    inbox: Path, sqlite_url: str, pg_url: str
) -> None:
    from zoneinfo import ZoneInfo

    for item in demo_drops(datetime(2026, 11, 14).date(), 7, ZoneInfo("Europe/Berlin")):
        path = inbox / item.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item.content)
    as_of = datetime(2026, 11, 21, 6, tzinfo=timezone.utc)
    results = {}
    for url in (sqlite_url, pg_url):
        config = PipelineConfig(inbox=str(inbox), warehouse=url, timezone="Europe/Berlin")
        with dg.instance_for_test() as instance:
            report = run(config, instance, as_of=as_of)
        results[url] = {
            table: rows(url, table, columns=VOLATILE.get(table, "*"))
            for table in sorted(metadata.tables)
        }
        assert report.files, "the inbox must not be empty"

    sqlite_tables, pg_tables = results[sqlite_url], results[pg_url]
    assert len(sqlite_tables["user_activity_daily"]) > 100
    assert len(sqlite_tables["account_usage_snapshot"]) == 8
    assert sqlite_tables["pending_work"] == []  # every rollup and refresh was done
    for table in sqlite_tables:
        assert pg_tables[table] == sqlite_tables[table], table
