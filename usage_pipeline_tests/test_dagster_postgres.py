"""SPEC §5: the pipeline on a Dagster instance stored in PostgreSQL (dagster-postgres), with a
PostgreSQL warehouse: runs and materialisations land in that instance; two files are one
ingestion run, two consecutive days one rollup run."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage

from usage_pipeline.config import PipelineConfig
from usage_pipeline.sources import open_source
from usage_pipeline_tests.helpers import drop, rows, run

FIRST_KEY = "user_activity/usage_2026-11-19.csv"
SECOND_KEY = "user_activity/usage_2026-11-20.csv"


def test_pipeline_on_a_postgres_dagster_instance(
    inbox: Path, pg_url: str, pg_instance: dg.DagsterInstance, dagster_pg_url: str
) -> None:
    assert isinstance(pg_instance.run_storage, PostgresRunStorage)
    assert isinstance(pg_instance.event_log_storage, PostgresEventLogStorage)
    config = PipelineConfig(inbox=str(inbox), warehouse=pg_url)
    drop(
        inbox,
        FIRST_KEY,
        [
            "A1,u1,Reports,view,3,2026-11-19T09:00:00Z",
            "A1,u2,Admin,login,2,2026-11-19T10:00:00Z",
        ],
    )
    drop(
        inbox,
        SECOND_KEY,
        [
            "A1,u1,Reports,view,4,2026-11-20T09:00:00Z",
            "A2,u9,Reports,export,1,2026-11-20T22:00:00Z",
        ],
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
    assert sorted(
        (
            r.job_name,
            r.tags.get("dagster/partition"),
            r.tags.get("dagster/asset_partition_range_start"),
            r.tags.get("dagster/asset_partition_range_end"),
        )
        for r in runs
    ) == [
        ("end_of_run_job", None, None, None),
        ("ingest_files_job", None, None, None),
        ("rollup_job", None, "2026-11-19", "2026-11-20"),
        ("snapshot_job", "2026-11-20", None, None),
    ]
    assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
    [batch] = pg_instance.fetch_materializations(dg.AssetKey("inbox_file"), limit=10).records
    details = batch.asset_materialization.metadata["file_details"].value
    assert [(f["file"], f["status"]) for f in details] == [
        (FIRST_KEY, "loaded"),
        (SECOND_KEY, "loaded"),
    ]
    rolled = pg_instance.fetch_materializations(dg.AssetKey("user_activity_daily"), limit=10)
    assert sorted(r.partition_key for r in rolled.records) == ["2026-11-19", "2026-11-20"]

    storage = sa.create_engine(dagster_pg_url)
    try:
        with storage.connect() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM runs").scalar_one()
    finally:
        storage.dispose()
    assert stored == 4

    again = run(config, pg_instance)

    assert again.files == [] and again.rollup_days == [] and again.snapshot_days == []
    assert [o.key for o in open_source(config.inbox).list_objects()] == [FIRST_KEY, SECOND_KEY]
    assert len(pg_instance.get_runs()) == 5  # only the end-of-run job ran again
