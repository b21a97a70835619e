"""SPEC §5: the pipeline on a Dagster instance stored in PostgreSQL (dagster-postgres), with a
PostgreSQL warehouse: runs, materialisations and dynamic partitions land in that instance."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage

from usage_pipeline.config import PipelineConfig
from usage_pipeline.sensing import partition_key_for
from usage_pipeline.sources import open_source, sha256_file
from usage_pipeline_tests.helpers import drop, rows, run

FIRST_KEY = "user_activity/usage_2026-11-19.csv"
SECOND_KEY = "user_activity/usage_2026-11-20.csv"


def test_pipeline_on_a_postgres_dagster_instance(
    inbox: Path, pg_url: str, pg_instance: dg.DagsterInstance, dagster_pg_url: str
) -> None:
    assert isinstance(pg_instance.run_storage, PostgresRunStorage)
    assert isinstance(pg_instance.event_log_storage, PostgresEventLogStorage)
    config = PipelineConfig(inbox=str(inbox), warehouse=pg_url)
    first = drop(
        inbox,
        FIRST_KEY,
        [
            "A1,u1,Reports,view,3,2026-11-19T09:00:00Z",
            "A1,u2,Admin,login,2,2026-11-19T10:00:00Z",
        ],
    )
    second = drop(
        inbox,
        SECOND_KEY,
        [
            "A1,u1,Reports,view,4,2026-11-20T09:00:00Z",
            "A2,u9,Reports,export,1,2026-11-20T22:00:00Z",
        ],
    )
    partitions = sorted(
        [
            partition_key_for(FIRST_KEY, sha256_file(first)),
            partition_key_for(SECOND_KEY, sha256_file(second)),
        ]
    )

    report = run(config, pg_instance)

    assert report.exit_code == 0, report
    assert [(f["file"], f["status"]) for f in report.files] == [
        (FIRST_KEY, "loaded"),
        (SECOND_KEY, "loaded"),
    ]
    assert report.rollup_days == ["2026-11-19", "2026-11-20"]
    assert rows(pg_url, "ingested_files", columns="file_id, source_key, status, rows_loaded") == [
        (1, FIRST_KEY, "loaded", 2),
        (2, SECOND_KEY, "loaded", 2),
    ]
    assert rows(pg_url, "user_activity_daily") == [
        ("2026-11-19", "A1", "u1", "Reports", "view", 3),
        ("2026-11-19", "A1", "u2", "Admin", "login", 2),
        ("2026-11-20", "A1", "u1", "Reports", "view", 4),
        ("2026-11-20", "A2", "u9", "Reports", "export", 1),
    ]
    assert rows(pg_url, "account_activity_daily") == [
        ("2026-11-19", "A1", "Admin", "login", "user_activity", 2, 1),
        ("2026-11-19", "A1", "Reports", "view", "user_activity", 3, 1),
        ("2026-11-20", "A1", "Reports", "view", "user_activity", 4, 1),
        ("2026-11-20", "A2", "Reports", "export", "user_activity", 1, 1),
    ]
    assert rows(
        pg_url,
        "account_usage_snapshot",
        columns="snapshot_date, account_id, active_users_1d, active_users_7d, activity_1d,"
        " activity_7d, activity_30d, top_module_30d, last_activity_date,"
        " days_since_last_activity",
    ) == [
        ("2026-11-20", "A1", 1, 2, 4, 9, 9, "Reports", "2026-11-20", 0),
        ("2026-11-20", "A2", 1, 1, 1, 1, 1, "Reports", "2026-11-20", 0),
    ]

    runs = pg_instance.get_runs()
    assert sorted((r.job_name, r.tags.get("dagster/partition")) for r in runs) == sorted(
        [
            ("ingest_file_job", partitions[0]),
            ("ingest_file_job", partitions[1]),
            ("rollup_job", "2026-11-19"),
            ("rollup_job", "2026-11-20"),
            ("snapshot_job", "2026-11-20"),
            ("drop_watch_job", None),
        ]
    )
    assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
    assert sorted(pg_instance.get_dynamic_partitions("inbox_files")) == partitions
    materialized = pg_instance.fetch_materializations(dg.AssetKey("inbox_file"), limit=10)
    assert sorted(r.partition_key for r in materialized.records) == partitions

    storage = sa.create_engine(dagster_pg_url)
    try:
        with storage.connect() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM runs").scalar_one()
    finally:
        storage.dispose()
    assert stored == 6

    again = run(config, pg_instance)

    assert again.files == [] and again.rollup_days == []
    assert [o.key for o in open_source(config.inbox).list_objects()] == [FIRST_KEY, SECOND_KEY]
    assert sorted(pg_instance.get_dynamic_partitions("inbox_files")) == partitions
