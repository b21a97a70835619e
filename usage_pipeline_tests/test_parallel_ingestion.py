"""SPEC §7 "Scale" / issue 4: independent files ingest in parallel and give exactly the tables
a sequential run gives; two runs racing on one file version load it once; concurrent SQLite
writers queue instead of failing with "database is locked".

Concurrency is real: each ingestion is an ``ingest_files_job`` run (one batch of files)
executed in process in its own spawned process (own interpreter, own engine and connection
pool) against one shared Dagster instance (dagster-postgres on PostgreSQL), released
together by a barrier.
"""

from __future__ import annotations

import multiprocessing
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.definitions import build_definitions
from usage_pipeline.defs.ingestion.assets import INBOX_FILE, batch_run_config
from usage_pipeline.warehouse.engine import dispose_engines, get_engine, read_connection
from usage_pipeline.warehouse.tables import metadata
from usage_pipeline_tests.conftest import new_schema_url
from usage_pipeline_tests.helpers import AS_OF, HEADER, drop, run

NIGHT = datetime(2026, 11, 20, tzinfo=timezone.utc)
REGIONS = 12
ACCOUNTS = [f"ACME-{n:03d}" for n in range(1, 7)]
MODULES = {"Reports": ["view", "export"], "Admin": ["login"], "Dashboards": ["share"]}
# Columns whose values legitimately differ between two correct runs of the same inbox:
# file_id is a sequence, so it follows the order in which runs claimed their files (it is
# compared through the file version it names instead); processed_at and built_at are the
# wall clock, and the CLI's inbox cursor holds listing times.
FILE_ID_COLUMNS = ("file_id", "created_file_id")
CLOCK_COLUMNS = {
    "ingested_files": ("processed_at",),
    "pipeline_state": ("value", "updated_at"),
    "snapshot_dates": ("built_at",),
}
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


# ---------------------------------------------------------------- inbox of one night


def _activity(rng: random.Random, rows: int) -> list[str]:
    """Rows spread over the night's day and the two days before it (late rows), so every
    file touches the same days as the others."""
    lines = []
    for _ in range(rows):
        account = rng.choice(ACCOUNTS)
        module = rng.choice(sorted(MODULES))
        back = timedelta(days=rng.randint(0, 2), seconds=rng.randint(1, 86_399))
        moment = NIGHT + timedelta(days=1) - back
        lines.append(
            f"{account},{account.lower()}-u{rng.randint(1, 5)},{module},"
            f"{rng.choice(MODULES[module])},{rng.randint(1, 30)},"
            f"{moment.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )
    return lines


def night_inbox(inbox: Path) -> list[Path]:
    """One night's drops: 12 regional user_activity files (one with a few invalid rows) and
    the account directory. Only one accounts file, because "latest file wins" makes two
    accounts files order-dependent by design."""
    modified = NIGHT + timedelta(hours=23)
    paths = [
        drop(
            inbox,
            "accounts/accounts_2026-11-20.csv",
            [f"{a},CRM-{a[-3:]},{a.lower()}.example,{a.title()} Ltd" for a in ACCOUNTS],
            header="account_id,crm_id,domain,name",
            modified=modified,
        )
    ]
    for region in range(REGIONS):
        rng = random.Random(region)
        lines = _activity(rng, 150)
        if region == 5:
            lines[3] = "ACME-001,acme-001-u1,Reports,view,-2,2026-11-20T10:00:00Z"
            lines[7] = "ACME-002,acme-002-u1,Reports,view,lots,2026-11-20T10:00:00Z"
        key = f"user_activity/2026/11/usage_2026-11-20_region{region:02d}.csv"
        paths.append(drop(inbox, key, lines, header=HEADER, modified=modified))
    return paths


def inbox_keys(inbox: Path, paths: list[Path]) -> list[str]:
    return [p.relative_to(inbox).as_posix() for p in paths]


# ---------------------------------------------------------------- complete tables


def _plain(value: object) -> object:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return float(value)
    return value


def _sort_key(row: tuple) -> tuple:
    return tuple((0, "") if v is None else (1, str(v)) for v in row)


def complete_tables(url: str) -> dict[str, list[tuple]]:
    """Every row of every table, sorted; file ids replaced by the file version they name
    (``key@sha256``) and clock columns left out (see FILE_ID_COLUMNS, CLOCK_COLUMNS)."""
    engine = get_engine(url)
    tables: dict[str, list[tuple]] = {}
    with read_connection(engine) as conn:
        files = metadata.tables["ingested_files"].c
        version = {
            row.file_id: f"{row.source_key}@{row.sha256}"
            for row in conn.execute(sa.select(files.file_id, files.source_key, files.sha256))
        }
        for name, table in sorted(metadata.tables.items()):
            skipped = CLOCK_COLUMNS.get(name, ())
            columns = [c for c in table.columns if c.name not in skipped]
            result = []
            for row in conn.execute(sa.select(*columns)):
                values = []
                for column, value in zip(columns, row, strict=True):
                    if column.name in FILE_ID_COLUMNS and value is not None:
                        value = version[value]
                    values.append(_plain(value))
                result.append(tuple(values))
            tables[name] = sorted(result, key=_sort_key)
    return tables


def assert_same_tables(actual: dict[str, list[tuple]], expected: dict[str, list[tuple]]) -> None:
    assert sorted(actual) == sorted(expected)
    for name in expected:
        assert actual[name] == expected[name], name


# ---------------------------------------------------------------- concurrent runs


def _ingest_in_child(
    config_json: str, instance_ref: str, keys: list[str], barrier: Any, results: Any
) -> None:
    """Ingestion in a spawned process: build the definitions from the resolved settings,
    wait for the other processes, then run ingest_files_job once for its batch of keys."""
    try:
        config = PipelineConfig.from_json(config_json)
        job = build_definitions(config).resolve_job_def("ingest_files_job")
        get_engine(config.warehouse)  # connect (and create tables) before the start line
        with dg.DagsterInstance.from_ref(dg.deserialize_value(instance_ref)) as inst:
            barrier.wait(timeout=120)
            results.put(_execute_ingestion(job, inst, keys))
    except BaseException as exc:  # reported to the parent, which fails the test
        results.put({"keys": None, "success": False, "errors": [repr(exc)], "files": []})
    finally:
        dispose_engines()


def _execute_ingestion(job: Any, instance: dg.DagsterInstance, keys: list[str]) -> dict[str, Any]:
    result = job.execute_in_process(
        run_config={**batch_run_config(keys, as_of=AS_OF), **QUIET},
        instance=instance,
        raise_on_error=False,
    )
    reported = [  # materialisations (loaded now) and observations (found done)
        e.event_specific_data.materialization
        if e.is_step_materialization
        else e.event_specific_data.asset_observation
        for e in result.all_events
        if e.asset_key == INBOX_FILE
        and (e.is_step_materialization or e.event_type_value == "ASSET_OBSERVATION")
    ]
    return {
        "keys": keys,
        "success": result.success,
        "errors": [
            str(e.event_specific_data.error.message)
            for e in result.all_events
            if e.is_step_failure and e.event_specific_data and e.event_specific_data.error
        ],
        "files": [f for event in reported for f in event.metadata["file_details"].value],
    }


def ingest_concurrently(
    config: PipelineConfig, instance: dg.DagsterInstance, batches: list[list[str]]
) -> list[dict[str, Any]]:
    """One spawned process per batch of keys, all released together by a barrier; each
    process ingests its batch in one run. Returns every run's outcome."""
    ref = dg.serialize_value(instance.get_ref())
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(batches)), ctx.Queue()
    children = [
        ctx.Process(target=_ingest_in_child, args=(config.to_json(), ref, batch, barrier, results))
        for batch in batches
    ]
    for child in children:
        child.start()
    outcomes: list[dict[str, Any]] = []
    try:
        while len(outcomes) < len(batches):
            outcomes.append(results.get(timeout=240))
            if outcomes[-1]["keys"] is None:
                break  # a process failed before its run
    finally:
        for child in children:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()
    return outcomes


def ingest_in_parent(
    config: PipelineConfig, instance: dg.DagsterInstance, key: str
) -> dict[str, Any]:
    job = build_definitions(config).resolve_job_def("ingest_files_job")
    return _execute_ingestion(job, instance, [key])


def spread(keys: list[str], processes: int) -> list[list[str]]:
    return [keys[i::processes] for i in range(processes)]


def assert_all_succeeded(outcomes: list[dict[str, Any]]) -> None:
    failed = [o for o in outcomes if not o["success"] or o["errors"]]
    assert not failed, failed


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def other_pg_url(pg_database: str) -> str:
    """A second fresh schema for the sequential reference run."""
    return new_schema_url(pg_database)


def sequential_tables(inbox: Path, url: str) -> dict[str, list[tuple]]:
    """The reference: ``usage-pipeline run`` on the same inbox, one file after another."""
    config = PipelineConfig(inbox=str(inbox), warehouse=url)
    with dg.DagsterInstance.ephemeral() as instance:
        report = run(config, instance)
    assert not report.failed_runs, report.failed_runs
    assert len(report.files) == REGIONS + 1
    return complete_tables(url)


# ---------------------------------------------------------------- tests


@pytest.mark.postgres
def test_parallel_ingestion_on_postgres_matches_sequential(
    inbox: Path, pg_url: str, other_pg_url: str, pg_instance: dg.DagsterInstance
) -> None:
    paths = night_inbox(inbox)
    keys = inbox_keys(inbox, paths)
    config = PipelineConfig(inbox=str(inbox), warehouse=pg_url)

    # The directory first (as the sensor requests it), then the 12 regional files by two
    # processes at once.
    outcomes = [ingest_in_parent(config, pg_instance, keys[0])]
    outcomes += ingest_concurrently(config, pg_instance, spread(keys[1:], 2))
    assert_all_succeeded(outcomes)
    statuses = sorted(f["status"] for o in outcomes for f in o["files"])
    assert statuses == ["loaded"] * (REGIONS + 1)

    # Follow-ups as the CLI does them: nothing new to ingest (its cursor has not seen the
    # files, so it reads them once and finds them loaded), every touched day rolled up.
    report = run(config, pg_instance)
    assert not report.failed_runs, report.failed_runs
    assert report.files == []
    assert sorted(report.rollup_days) == ["2026-11-18", "2026-11-19", "2026-11-20"]

    parallel = complete_tables(pg_url)
    expected = sequential_tables(inbox, other_pg_url)
    assert len(parallel["user_activity_contributions"]) > 100
    assert len(parallel["rejected_rows"]) == 2
    assert len(parallel["user_activity_daily"]) > 50
    assert len(parallel["account_usage_snapshot"]) == len(ACCOUNTS)
    assert_same_tables(parallel, expected)


@pytest.mark.postgres
def test_two_runs_racing_on_one_file_version_load_it_once(
    inbox: Path, pg_url: str, other_pg_url: str, pg_instance: dg.DagsterInstance
) -> None:
    every = night_inbox(inbox)
    paths = every[1:4]  # three regional files; the inbox keeps only them
    for other in every[:1] + every[4:]:
        other.unlink()
    keys = inbox_keys(inbox, paths)
    config = PipelineConfig(inbox=str(inbox), warehouse=pg_url)

    # Two processes released together, each running a batch of the same three files.
    outcomes = ingest_concurrently(config, pg_instance, [keys, keys])
    assert_all_succeeded(outcomes)
    for key in keys:
        files = [f for o in outcomes for f in o["files"] if f["file"] == key]
        assert [f["status"] for f in files] == ["loaded", "loaded"], key
        # One run did the load; the other found it done (waiting on the row lock if needed).
        assert sorted(f["already_processed"] for f in files) == [False, True], key
        assert len({f["file_id"] for f in files}) == 1, key

    engine = get_engine(pg_url)
    with read_connection(engine) as conn:
        ledger = conn.execute(
            sa.text("SELECT source_key, status FROM ingested_files ORDER BY source_key")
        ).all()
    assert [tuple(r) for r in ledger] == [(k, "loaded") for k in sorted(keys)]

    report = run(config, pg_instance)
    assert not report.failed_runs and report.files == []
    expected = sequential_one_each(inbox, other_pg_url, len(keys))
    assert_same_tables(complete_tables(pg_url), expected)


def sequential_one_each(inbox: Path, url: str, files: int) -> dict[str, list[tuple]]:
    config = PipelineConfig(inbox=str(inbox), warehouse=url)
    with dg.DagsterInstance.ephemeral() as instance:
        report = run(config, instance)
    assert not report.failed_runs and len(report.files) == files
    return complete_tables(url)


def test_concurrent_sqlite_writers_queue_instead_of_failing(inbox: Path, tmp_path: Path) -> None:
    paths = night_inbox(inbox)
    keys = inbox_keys(inbox, paths)
    parallel_url = f"sqlite:///{tmp_path / 'parallel.db'}"
    sequential_url = f"sqlite:///{tmp_path / 'sequential.db'}"
    config = PipelineConfig(inbox=str(inbox), warehouse=parallel_url)

    with dg.instance_for_test() as instance:
        outcomes = [ingest_in_parent(config, instance, keys[0])]
        outcomes += ingest_concurrently(config, instance, spread(keys[1:], 2))
        assert_all_succeeded(outcomes)  # in particular no "database is locked"
        statuses = [f["status"] for o in outcomes for f in o["files"]]
        assert statuses == ["loaded"] * (REGIONS + 1)
        report = run(config, instance)
        assert not report.failed_runs, report.failed_runs

    assert_same_tables(complete_tables(parallel_url), sequential_tables(inbox, sequential_url))
