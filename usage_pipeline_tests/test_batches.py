"""Issue 7: a night's files are one batched run; a crash mid-batch resumes with the files not
yet done; the CLI reads only new files' bytes; two rebuilds of one day never collide."""

from __future__ import annotations

import multiprocessing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from usage_pipeline import batch
from usage_pipeline.config import PipelineConfig
from usage_pipeline.sources.local import LocalFolderSource
from usage_pipeline.warehouse.tables import metadata
from usage_pipeline_tests.helpers import drop, rows, run

NIGHT = [
    (f"user_activity/usage_2026-11-20_{n}.csv", [f"A{n},u{n},Reports,view,{n + 1},2026-11-20"])
    for n in range(5)
]
HEADER = "account_id,user_id,module,activity,count,date"
VOLATILE = {"ingested_files", "pipeline_state", "snapshot_dates"}


def _comparable(value: Any) -> Any:
    """Instants as SQLite stores them (UTC text), so both databases compare equal."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def tables(url: str) -> dict[str, list[tuple]]:
    result = {
        name: [tuple(_comparable(v) for v in row) for row in rows(url, name)]
        for name in metadata.tables
        if name not in VOLATILE
    }
    result["ingested_files"] = rows(
        url, "ingested_files", columns="file_id, source_key, status, rows_loaded"
    )
    return result


def ingestion_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return [r for r in instance.get_runs() if r.job_name == "ingest_files_job"]


def test_good_bad_and_duplicate_files_are_one_run(inbox: Path, config: PipelineConfig) -> None:
    drop(inbox, "user_activity/good.csv", ["A1,u1,Reports,view,3,2026-11-20"], header=HEADER)
    drop(inbox, "user_activity/bad.csv", "account_id,user_id\nA1,u1\n")
    drop(inbox, "user_activity/copy.csv", ["A1,u1,Reports,view,3,2026-11-20"], header=HEADER)
    with dg.DagsterInstance.ephemeral() as instance:
        report = run(config, instance)

        assert len(ingestion_runs(instance)) == 1
    assert [(f["file"], f["status"]) for f in report.files] == [  # oldest first
        ("user_activity/good.csv", "loaded"),
        ("user_activity/bad.csv", "rejected"),
        ("user_activity/copy.csv", "duplicate"),
    ]
    assert rows(
        config.warehouse, "ingested_files", columns="file_id, source_key, status, error"
    ) == [
        (1, "user_activity/good.csv", "loaded", None),
        (
            2,
            "user_activity/bad.csv",
            "rejected",
            "File user_activity/bad.csv is rejected: required columns module, activity, count"
            " missing.",
        ),
        (
            3,
            "user_activity/copy.csv",
            "duplicate",
            "File user_activity/copy.csv has the same bytes as file 1 (user_activity/good.csv)"
            " and was not loaded; run 'usage-pipeline ingest --force user_activity/copy.csv'"
            " to load it anyway.",
        ),
    ]
    assert rows(config.warehouse, "user_activity_daily") == [
        ("2026-11-20", "A1", "u1", "Reports", "view", 3)
    ]


class Crash(BaseException):
    """The worker dies in the middle of the batch (Dagster fails the step)."""


def test_a_crash_mid_batch_resumes_with_the_files_not_done(
    inbox: Path, warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, lines in NIGHT:
        drop(inbox, key, lines, header=HEADER)
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    with dg.DagsterInstance.ephemeral() as instance:
        run(PipelineConfig(inbox=str(inbox), warehouse=reference_url), instance)

    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url)
    real = batch.ingest_file
    done: list[str] = []

    def crash_after_two(engine, source, obj, config, **kwargs):  # type: ignore[no-untyped-def]
        if len(done) == 2:
            raise Crash("power cut after the second file of the batch")
        outcome = real(engine, source, obj, config, **kwargs)
        done.append(obj.key)
        return outcome

    monkeypatch.setattr(batch, "ingest_file", crash_after_two)
    with dg.DagsterInstance.ephemeral() as instance:
        crashed = run(config, instance)
        assert [f.split(":")[0] for f in crashed.failed_runs] == ["ingest_files_job"]
        assert "power cut after the second file" in crashed.failed_runs[0]
        assert rows(warehouse_url, "ingested_files", columns="source_key, status") == [
            (NIGHT[0][0], "loaded"),
            (NIGHT[1][0], "loaded"),
        ]
        monkeypatch.setattr(batch, "ingest_file", real)
        rerun = run(config, instance)

    assert [f["file"] for f in rerun.files] == [key for key, _ in NIGHT[2:]]
    resumed = tables(warehouse_url)
    expected = tables(reference_url)
    assert resumed["ingested_files"] == [
        (n + 1, key, "loaded", 1) for n, (key, _) in enumerate(NIGHT)
    ]  # no file loaded twice: five ledger rows, five file ids
    assert resumed == expected


def test_the_cli_reads_only_the_bytes_of_new_files(
    inbox: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=sqlite_url)
    read: list[str] = []
    real = LocalFolderSource.local_copy

    def recording(self, key):  # type: ignore[no-untyped-def]
        read.append(key)
        return real(self, key)

    monkeypatch.setattr(LocalFolderSource, "local_copy", recording)
    for key, lines in NIGHT[:4]:
        drop(inbox, key, lines, header=HEADER)
    with dg.DagsterInstance.ephemeral() as instance:
        run(config, instance)
        assert sorted(read) == [key for key, _ in NIGHT[:4]]
        read.clear()
        drop(inbox, NIGHT[4][0], NIGHT[4][1], header=HEADER)

        second = run(config, instance)

    assert read == [NIGHT[4][0]]
    assert [f["file"] for f in second.files] == [NIGHT[4][0]]


# ------------------------------------------------------------ overlapping rollups of one day


def _rollup_in_child(config_json: str, barrier: Any, results: Any) -> None:
    """Execute rollup_job for 2026-11-20 in a spawned process; the user rollup lingers inside
    its transaction (after its delete) so that the two processes overlap for certain."""
    import dataclasses
    import time

    from usage_pipeline import rollups
    from usage_pipeline.definitions import build_definitions
    from usage_pipeline.warehouse.engine import dispose_engines

    real = rollups.rebuild_user_activity_day

    def slow(conn, day):  # type: ignore[no-untyped-def]
        count = real(conn, day)
        time.sleep(1.5)
        return count

    try:
        config = PipelineConfig.from_json(config_json)
        user = rollups.rollup_named("user_activity_daily")
        patched = tuple(
            r if r is not user else dataclasses.replace(r, rebuild=slow)
            for r in rollups.DAILY_ROLLUPS
        )
        rollups.DAILY_ROLLUPS = patched  # read when the definitions are built
        job = build_definitions(config).resolve_job_def("rollup_job")
        barrier.wait(timeout=120)
        with dg.DagsterInstance.ephemeral() as instance:
            result = job.execute_in_process(
                instance=instance, partition_key="2026-11-20", raise_on_error=False
            )
        results.put(bool(result.success))
    except BaseException as exc:
        results.put(repr(exc))
    finally:
        dispose_engines()


@pytest.mark.postgres
def test_two_overlapping_rollups_of_one_day_give_the_uninterrupted_table(
    inbox: Path, pg_url: str
) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=pg_url)
    lines = [f"A{n % 7},u{n},Reports,view,{n % 5 + 1},2026-11-20" for n in range(3000)]
    drop(inbox, "user_activity/usage_2026-11-20.csv", lines, header=HEADER)
    with dg.DagsterInstance.ephemeral() as instance:
        run(config, instance)
    expected = {t: rows(pg_url, t) for t in ("user_activity_daily", "account_activity_daily")}

    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    children = [
        ctx.Process(target=_rollup_in_child, args=(config.to_json(), barrier, results))
        for _ in range(2)
    ]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=240) for _ in children]
    for child in children:
        child.join(timeout=30)

    assert outcomes == [True, True]  # neither failed on a duplicate key
    assert {t: rows(pg_url, t) for t in expected} == expected
    assert len(expected["user_activity_daily"]) == 3000
