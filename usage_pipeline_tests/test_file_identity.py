"""SPEC §1 file identity: drops for one day sum, re-sensing is a no-op, a correction
replaces, identical bytes under a new key are a held-back duplicate that --force loads."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from usage_pipeline.cli import main
from usage_pipeline.config import PipelineConfig
from usage_pipeline.sensing import new_versions
from usage_pipeline.sources import open_source
from usage_pipeline.state import load_cli_cursor
from usage_pipeline.warehouse.engine import get_engine
from usage_pipeline_tests.helpers import drop, rows, run

FIRST = [
    "A1,u1,Reports,view,3,2026-11-20T09:00:00Z",
    "A1,u1,Reports,view,2,2026-11-20T10:00:00Z",
    "A1,u2,Admin,login,1,2026-11-20T11:00:00Z",
]
SECOND = [
    "A1,u1,Reports,view,10,2026-11-20T21:00:00Z",
    "A2,u9,Reports,export,4,2026-11-20T22:00:00Z",
]


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def test_several_drops_for_one_day_sum(inbox: Path, config: PipelineConfig, instance) -> None:
    drop(inbox, "user_activity/usage_2026-11-20.csv", FIRST)
    drop(inbox, "user_activity/usage_2026-11-20_late.csv", SECOND)

    report = run(config, instance)

    assert [f["status"] for f in report.files] == ["loaded", "loaded"]
    assert report.rollup_days == ["2026-11-20"]
    assert rows(config.warehouse, "user_activity_daily") == [
        ("2026-11-20", "A1", "u1", "Reports", "view", 15),
        ("2026-11-20", "A1", "u2", "Admin", "login", 1),
        ("2026-11-20", "A2", "u9", "Reports", "export", 4),
    ]
    assert rows(config.warehouse, "account_activity_daily") == [
        ("2026-11-20", "A1", "Admin", "login", "user_activity", 1, 1),
        ("2026-11-20", "A1", "Reports", "view", "user_activity", 15, 1),
        ("2026-11-20", "A2", "Reports", "export", "user_activity", 4, 1),
    ]


def test_resensing_is_a_no_op(inbox: Path, config: PipelineConfig, instance) -> None:
    drop(inbox, "user_activity/usage_2026-11-20.csv", FIRST)
    run(config, instance)
    before = {t: rows(config.warehouse, t) for t in ("ingested_files", "user_activity_daily")}

    again = run(config, instance)
    source = open_source(config.inbox)

    assert again.files == [] and again.rollup_days == [] and again.snapshot_days == []
    assert new_versions(source, load_cli_cursor(get_engine(config.warehouse), source.uri)) == []
    assert {t: rows(config.warehouse, t) for t in before} == before


def test_same_key_with_new_bytes_is_a_correction(
    inbox: Path, config: PipelineConfig, instance
) -> None:
    drop(inbox, "user_activity/usage_2026-11-20.csv", FIRST)
    run(config, instance)
    drop(inbox, "user_activity/usage_2026-11-20.csv", ["A1,u1,Reports,view,7,2026-11-19T12:00:00Z"])

    report = run(config, instance)

    assert report.rollup_days == ["2026-11-19", "2026-11-20"]
    assert rows(config.warehouse, "ingested_files", columns="file_id, status, rows_loaded") == [
        (1, "superseded", 3),
        (2, "loaded", 1),
    ]
    assert rows(config.warehouse, "user_activity_daily") == [
        ("2026-11-19", "A1", "u1", "Reports", "view", 7),
    ]
    assert rows(config.warehouse, "account_activity_daily", columns="activity_date, count") == [
        ("2026-11-19", 7),
    ]


def test_identical_bytes_under_new_key_are_held_back_until_forced(
    inbox: Path, config: PipelineConfig, instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop(inbox, "user_activity/usage_2026-11-20.csv", FIRST)
    run(config, instance)
    drop(inbox, "user_activity/reexport/copy.csv", FIRST)

    report = run(config, instance)

    assert [(f["file"], f["status"]) for f in report.files] == [
        ("user_activity/reexport/copy.csv", "duplicate")
    ]
    assert "same bytes as file 1" in report.files[0]["error"]
    assert rows(config.warehouse, "user_activity_daily", columns="SUM(count)") == [(6,)]

    monkeypatch.setenv("USAGE_PIPELINE_INBOX", config.inbox)
    monkeypatch.setenv("USAGE_PIPELINE_WAREHOUSE_URL", config.warehouse)
    monkeypatch.setenv("DAGSTER_HOME", instance.root_directory)
    result = CliRunner().invoke(
        main,
        [
            "ingest",
            "--force",
            "user_activity/reexport/copy.csv",
            "--config",
            str(inbox / "none.yaml"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "does not exist" in result.output

    result = CliRunner().invoke(main, ["ingest", "--force", "user_activity/reexport/copy.csv"])

    assert result.exit_code == 0, result.output
    assert rows(config.warehouse, "ingested_files", columns="source_key, status") == [
        ("user_activity/reexport/copy.csv", "loaded"),
        ("user_activity/usage_2026-11-20.csv", "loaded"),
    ]
    assert rows(config.warehouse, "user_activity_daily", columns="SUM(count)") == [(12,)]
