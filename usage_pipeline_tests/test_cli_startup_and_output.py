"""SPEC §6 command line: fast start-up (no pandas, SQLAlchemy or Dagster for --help,
--version and template), --version, and the project's own output only: no Dagster log
lines or banner, a received date per file in ``status``, table row counts."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import pytest

from usage_pipeline import load
from usage_pipeline.cli.status import OUTPUT_TABLES, print_table_counts
from usage_pipeline.config import load_config
from usage_pipeline.warehouse.tables import metadata
from usage_pipeline_tests.helpers import drop, invoke

HEAVY = ("pandas", "pandera", "sqlalchemy", "dagster")
ROOT = Path(__file__).resolve().parents[1]
# Runs the CLI in a fresh interpreter, then prints which heavy modules it imported.
PROBE = """
import sys
from usage_pipeline.cli import main
sys.argv = ["usage-pipeline", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print("HEAVY:", ",".join(m for m in {heavy!r} if m in sys.modules), "EXIT:", code)
"""


def _cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        check=False,
    )


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_help_and_version_import_no_heavy_module(args: list[str]) -> None:
    result = _cli(*args)
    assert result.stderr == ""
    assert result.stdout.splitlines()[-1] == "HEAVY:  EXIT: 0"


def test_version_prints_the_package_version() -> None:
    result = _cli("--version")
    assert result.stdout.splitlines()[0] == f"usage-pipeline {version('usage_pipeline')}"


def test_template_imports_no_heavy_module() -> None:
    result = _cli("template", "user_activity")
    assert result.stdout.splitlines() == [
        "account_id,user_id,module,activity,count,date,timestamp",
        "HEAVY:  EXIT: 0",
    ]


def test_run_prints_only_the_projects_summary(tmp_path: Path) -> None:
    """A Dagster home without dagster.yaml makes Dagster warn and print its telemetry
    notice and "Welcome to Dagster" banner on first use: none of it reaches the user."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (tmp_path / "data" / "inbox").mkdir(parents=True)
    drop(
        tmp_path / "data" / "inbox",
        "user_activity/usage_2026-11-20.csv",
        ["A1,u1,Reports,view,3,2026-11-20T10:00:00Z"],
    )
    result = _cli(
        "run", "--as-of", "2026-11-21T06:00:00+00:00", cwd=tmp_path, env={"DAGSTER_HOME": str(home)}
    )
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "  loaded     user_activity/usage_2026-11-20.csv  rows 1/1 loaded",
        "  rolled up: 2026-11-20",
        "  snapshots: 2026-11-20",
        "HEAVY: pandas,pandera,sqlalchemy,dagster EXIT: 0",
    ]


def test_status_shows_the_received_date_of_each_file(project: Path) -> None:
    inbox = project / "data" / "inbox"
    received = datetime(2026, 11, 20, 23, 0, tzinfo=timezone.utc)
    drop(
        inbox,
        "user_activity/usage_2026-11-20.csv",
        ["A1,u1,Reports,view,3,2026-11-20T10:00:00Z"],
        modified=received,
    )
    drop(inbox, "user_activity/usage_2026-11-21.csv", "count\n3\n", modified=received)
    invoke("run", "--as-of", "2026-11-21T06:00:00+00:00")

    status = invoke("status")

    assert status.output.splitlines()[:3] == [
        "Recent files (2):",
        "  #2     rejected   user_activity/usage_2026-11-21.csv  0/0 rows loaded"
        "  (received 2026-11-20)",
        "  #1     loaded     user_activity/usage_2026-11-20.csv  1/1 rows loaded"
        "  (received 2026-11-20)",
    ]


def test_a_file_rejected_for_its_header_fails_no_reject_ratio_check(project: Path) -> None:
    drop(project / "data" / "inbox", "user_activity/usage_2026-11-20.csv", "count\n3\n")

    result = invoke("run", "--as-of", "2026-11-21T06:00:00+00:00")

    missing = "required columns account_id, user_id, module, activity missing"
    assert result.output.splitlines() == [
        "  rejected   user_activity/usage_2026-11-20.csv  rows 0/0 loaded",
        f"             File user_activity/usage_2026-11-20.csv is rejected: {missing}.",
        "  snapshots: 2026-11-20",
        "  FAILED CHECK inbox_file:validation 1 of 1 files have problems: File"
        f" user_activity/usage_2026-11-20.csv is rejected: {missing}.",
        "  FAILED CHECK user_activity_drop_arrivals:missing_drop The user_activity drop for"
        " 2026-11-20 arrived but was not loaded: user_activity/usage_2026-11-20.csv was"
        f" rejected ({missing}).",
    ]


def test_table_counts_list_every_public_table(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drop(
        project / "data" / "inbox",
        "user_activity/usage_2026-11-20.csv",
        ["A1,u1,Reports,view,3,2026-11-20T10:00:00Z", "A1,u2,Reports,view,1,2026-11-20T11:00:00Z"],
    )
    invoke("run", "--as-of", "2026-11-21T06:00:00+00:00")
    capsys.readouterr()

    print_table_counts(load_config(None))

    assert set(OUTPUT_TABLES) <= set(metadata.tables)
    assert capsys.readouterr().out.splitlines() == [
        "Tables (rows):",
        "  ingested_files              1",
        "  rejected_rows               0",
        "  user_activity_daily         2",
        "  account_activity_daily      1",
        "  account_attribute_history   0",
        "  accounts                    0",
        "  product_usage               0",
        "  usage_events                0",
        "  usage_meter_daily           0",
        "  billing_periods             1",
        "  events                      0",
        "  events_daily                0",
        "  account_usage_snapshot      1",
        "  user_usage_snapshot         2",
        "  account_hierarchy_snapshot  1",
        "  account_top_users           2",
    ]


def test_a_failed_run_is_one_sentence_without_dagster_log_lines(
    project: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    def power_cut(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut while writing rows")

    monkeypatch.setattr(load, "bulk_writer", power_cut)
    drop(
        project / "data" / "inbox",
        "user_activity/usage_2026-11-20.csv",
        ["A1,u1,Reports,view,3,2026-11-20T10:00:00Z"],
    )

    result = invoke("run", "--as-of", "2026-11-21T06:00:00+00:00")

    captured = capfd.readouterr()
    assert captured.err == "" and "dagster" not in captured.out
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "  no new files",
        "  snapshots: 2026-11-20",
        "  FAILED CHECK user_activity_drop_arrivals:missing_drop No user_activity file for"
        " 2026-11-20 has arrived.",
        "  FAILED RUN ingest_files_job: File user_activity/usage_2026-11-20.csv could not be"
        " processed (RuntimeError: power cut while writing rows); nothing of it was loaded and"
        " a rerun tries it again.",
    ]


def test_a_strict_usage_events_file_fails_no_reject_ratio_check(project: Path) -> None:
    (project / "data" / "pipeline.yaml").write_text(
        "usage_events:\n  meters: [api_calls]\n", encoding="utf-8"
    )
    drop(
        project / "data" / "inbox",
        "usage_events/usage_2026-11-20.csv",
        [
            "C1,S1,e1,2026-11-20T10:00:00Z,api,3",
            "C1,S1,e2,2026-11-20T11:00:00Z,api,12O",
        ],
        header="customer_ref,subscription_ref,event_ref,timestamp,event,api_calls",
    )

    result = invoke("run", "--as-of", "2026-11-21T06:00:00+00:00")

    assert "reject_ratio" not in result.output
    reason = (
        "1 of 2 rows are invalid and usage_events files are strict: nothing is loaded until"
        " every row is valid (first: row 3, column api_calls: api_calls '12O' is not a number)"
    )
    assert result.output.splitlines() == [
        "  rejected   usage_events/usage_2026-11-20.csv  rows 0/2 loaded, 1 rejected",
        f"             File usage_events/usage_2026-11-20.csv is rejected: {reason}.",
        "  snapshots: 2026-11-20",
        "  FAILED CHECK inbox_file:validation 1 of 1 files have problems: File"
        f" usage_events/usage_2026-11-20.csv is rejected: {reason}.",
        "  FAILED CHECK user_activity_drop_arrivals:missing_drop No user_activity file for"
        " 2026-11-20 has arrived.",
    ]
