"""Schema 3 migration (issue 10, items 8 and 9): a warehouse created by schema 2 gets the
``row_number`` lineage columns (null for rows loaded before) and the ledger status
``reverted``, keeping every row and id; ``explain`` then shows those rows as ``row ?``."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from usage_pipeline.warehouse.engine import SCHEMA_VERSION, dispose_engines, get_engine
from usage_pipeline.warehouse.migrations import ADDED_COLUMNS
from usage_pipeline_tests.helpers import invoke, rows

OLD_CHECK = "status IN ('processing', 'loaded', 'rejected', 'duplicate', 'superseded')"


def _make_schema_2(url: str) -> None:
    """Today's tables taken back to schema 2, with one loaded file and its rolled-up row."""
    engine = get_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO ingested_files (file_id, feed, source_key, sha256, size_bytes, status,"
            " rows_total, rows_loaded, rows_rejected, received_at, min_day, max_day) VALUES (7,"
            " 'user_activity', 'user_activity/old.csv', 'ab', 10, 'loaded', 1, 1, 0,"
            " '2026-11-20 23:00:00', '2026-11-20', '2026-11-20')"
        )
        conn.exec_driver_sql(
            "INSERT INTO user_activity_contributions (file_id, activity_date, account_id,"
            " user_id, module, activity, count) VALUES (7, '2026-11-20', 'A1', 'u1', 'Reports',"
            " 'view', 3)"
        )
        conn.exec_driver_sql(
            "INSERT INTO user_activity_daily VALUES"
            " ('2026-11-20', 'A1', 'u1', 'Reports', 'view', 3)"
        )
        for table, column in ADDED_COLUMNS:
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "ALTER TABLE ingested_files DROP CONSTRAINT ck_ingested_files_status"
            )
            conn.exec_driver_sql(
                "ALTER TABLE ingested_files ADD CONSTRAINT ck_ingested_files_status"
                f" CHECK ({OLD_CHECK})"
            )
        else:
            ddl = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'ingested_files'"
            ).scalar_one()
            old_ddl = ddl.replace(", 'reverted'", "").replace("ingested_files", "old_files", 1)
            assert old_ddl != ddl and "'reverted'" not in old_ddl
            conn.exec_driver_sql(old_ddl)
            conn.exec_driver_sql("INSERT INTO old_files SELECT * FROM ingested_files")
            conn.exec_driver_sql("DROP TABLE ingested_files")
            conn.exec_driver_sql("ALTER TABLE old_files RENAME TO ingested_files")
            conn.exec_driver_sql(
                "CREATE INDEX ix_ingested_files_feed_sha ON ingested_files (feed, sha256)"
            )
        conn.exec_driver_sql("UPDATE pipeline_state SET value = '2' WHERE name = 'schema_version'")
    dispose_engines()


def test_a_schema_2_warehouse_is_migrated(project: Path, warehouse_url: str) -> None:
    _make_schema_2(warehouse_url)
    (project / "data" / "pipeline.yaml").write_text(yaml.safe_dump({"warehouse": warehouse_url}))
    too_old = invoke("explain", "user_activity_daily", "account_id=A1")

    engine = get_engine(warehouse_url)  # what every writing command does first
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        columns = {t: {c["name"] for c in inspector.get_columns(t)} for t, _ in ADDED_COLUMNS}
        checks = inspector.get_check_constraints("ingested_files")
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE ingested_files SET status = 'reverted' WHERE file_id = 7")
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.exec_driver_sql("UPDATE ingested_files SET status = 'bogus' WHERE file_id = 7")
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE ingested_files SET status = 'loaded' WHERE file_id = 7")
    explained = invoke("explain", "user_activity_daily", "account_id=A1")

    assert too_old.exit_code == 2
    assert "was created by an older version of usage_pipeline (schema 2)" in too_old.output
    assert all(column in columns[table] for table, column in ADDED_COLUMNS)
    assert [c["name"] for c in checks] == ["ck_ingested_files_status"]
    assert rows(warehouse_url, "ingested_files", columns="file_id, source_key, status") == [
        (7, "user_activity/old.csv", "loaded")
    ]
    assert rows(warehouse_url, "user_activity_contributions", columns="file_id, row_number") == [
        (7, None)
    ]
    assert rows(warehouse_url, "pipeline_state WHERE name = 'schema_version'", columns="value") == [
        (SCHEMA_VERSION,)
    ]
    assert explained.output.splitlines() == [
        "user_activity_daily activity_date=2026-11-20 account_id=A1 user_id=u1 module=Reports"
        " activity=view: count 3",
        "  file 7 user_activity/old.csv row ?: count 3",
        "From 1 row of 1 file version.",
    ]
