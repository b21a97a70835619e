"""SPEC §7 nothing lost, nothing doubled: an exception after partial writes leaves no
partial data, and a rerun gives the same tables as an uninterrupted run."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest

from usage_pipeline import load, rollups
from usage_pipeline.config import PipelineConfig
from usage_pipeline.warehouse.tables import metadata
from usage_pipeline_tests.helpers import drop, rows, run

DAY_ONE = [f"A{n % 3},u{n},Reports,view,{n},2026-11-19T10:00:00Z" for n in range(1, 8)]
DAY_TWO = [f"A{n % 3},u{n},Admin,login,{n},2026-11-20T10:00:00Z" for n in range(1, 8)]
CORRECTION = [f"A{n % 3},u{n},Admin,login,{2 * n},2026-11-20T11:00:00Z" for n in range(1, 5)]


class Crash(RuntimeError):
    """The injected failure."""


def _snapshot_of_tables(url: str) -> dict[str, list[tuple]]:
    skip = {"ingested_files", "pipeline_state", "snapshot_dates"}  # times and paths differ
    skip.add("billing_periods")  # closes_at: text on SQLite, a datetime on PostgreSQL
    tables = {name: rows(url, name) for name in metadata.tables if name not in skip}
    tables["billing_periods"] = rows(url, "billing_periods", columns="period, status")
    tables["snapshot_dates"] = rows(url, "snapshot_dates", columns="snapshot_table, snapshot_date")
    tables["ingested_files"] = rows(
        url, "ingested_files", columns="source_key, status, rows_total, rows_loaded, min_day"
    )
    return tables


def _scenario(inbox: Path, config: PipelineConfig, instance: dg.DagsterInstance) -> None:
    drop(inbox, "user_activity/day1.csv", DAY_ONE)
    drop(inbox, "user_activity/day2.csv", DAY_TWO)
    run(config, instance)
    drop(inbox, "user_activity/day2.csv", CORRECTION)
    run(config, instance)


@pytest.fixture
def reference(tmp_path: Path) -> dict[str, list[tuple]]:
    """The tables of an uninterrupted run of the same scenario (SQLite)."""
    inbox = tmp_path / "reference_inbox"
    url = f"sqlite:///{tmp_path / 'reference.db'}"
    with dg.DagsterInstance.ephemeral() as instance:
        _scenario(inbox, PipelineConfig(inbox=str(inbox), warehouse=url, chunk_rows=2), instance)
    return _snapshot_of_tables(url)


def test_crash_mid_load_leaves_nothing_and_rerun_matches(
    inbox: Path, warehouse_url: str, reference: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url, chunk_rows=2)
    real_writer = load.bulk_writer
    calls = {"n": 0}

    @contextmanager
    def crash_on_second_chunk(conn, table, columns):  # type: ignore[no-untyped-def]
        with real_writer(conn, table, columns) as write:

            def crashing_write(frame):  # type: ignore[no-untyped-def]
                calls["n"] += 1
                if calls["n"] == 2:
                    raise Crash("power cut after the first chunk was written")
                return write(frame)

            yield crashing_write

    with dg.DagsterInstance.ephemeral() as instance:
        drop(inbox, "user_activity/day1.csv", DAY_ONE)
        drop(inbox, "user_activity/day2.csv", DAY_TWO)
        monkeypatch.setattr(load, "bulk_writer", crash_on_second_chunk)
        crashed = run(config, instance)

        assert len(crashed.failed_runs) == 1 and "power cut" in crashed.failed_runs[0]
        assert rows(warehouse_url, "ingested_files", columns="source_key, status, rows_loaded") == [
            ("user_activity/day1.csv", "processing", None),
            ("user_activity/day2.csv", "loaded", 7),
        ]
        assert rows(
            warehouse_url, "user_activity_contributions", columns="DISTINCT activity_date"
        ) == [("2026-11-20",)]
        assert rows(warehouse_url, "rejected_rows") == []

        monkeypatch.setattr(load, "bulk_writer", real_writer)
        run(config, instance)  # the rerun completes the crashed file
        drop(inbox, "user_activity/day2.csv", CORRECTION)
        run(config, instance)

    assert _snapshot_of_tables(warehouse_url) == reference


def test_crash_mid_rollup_leaves_the_day_intact_and_rerun_matches(
    inbox: Path, warehouse_url: str, reference: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url, chunk_rows=2)
    real_rollups = rollups.DAILY_ROLLUPS

    def crash(conn, day):  # type: ignore[no-untyped-def]
        rollups.rebuild_account_activity_day(conn, day)  # partial writes, then the crash
        raise Crash("worker killed during the account rollup")

    crashing_rollups = tuple(
        replace(r, rebuild=crash) if r.name == "account_activity_daily" else r for r in real_rollups
    )

    with dg.DagsterInstance.ephemeral() as instance:
        drop(inbox, "user_activity/day1.csv", DAY_ONE)
        drop(inbox, "user_activity/day2.csv", DAY_TWO)
        run(config, instance)
        before = (
            rows(warehouse_url, "user_activity_daily"),
            rows(warehouse_url, "account_activity_daily"),
        )
        drop(inbox, "user_activity/day2.csv", CORRECTION)
        monkeypatch.setattr(rollups, "DAILY_ROLLUPS", crashing_rollups)
        crashed = run(config, instance)

        assert any("worker killed" in failure for failure in crashed.failed_runs)
        # each asset commits its own transaction: the crashed account rollup left no trace
        assert rows(warehouse_url, "account_activity_daily") == before[1]

        monkeypatch.setattr(rollups, "DAILY_ROLLUPS", real_rollups)
        rerun = run(config, instance)
        assert rerun.failed_runs == []

    assert _snapshot_of_tables(warehouse_url) == reference
