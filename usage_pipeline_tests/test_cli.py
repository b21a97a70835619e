"""SPEC §6 command line: template, check (dry run), run/status exit codes, config errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from usage_pipeline.cli import main
from usage_pipeline_tests.helpers import drop, invoke


def test_template_prints_the_header() -> None:
    result = invoke("template", "user_activity")
    assert result.exit_code == 0
    assert result.output == "account_id,user_id,module,activity,count,date,timestamp\n"


def test_check_reports_row_errors_without_writing(project: Path) -> None:
    good = drop(
        project,
        "good.csv",
        [f"A1,u{n},Reports,view,{n},2026-11-20T10:00:00Z" for n in range(1, 40)]
        + ["A1,u9,Reports,view,-2,"],
    )
    bad = drop(project, "bad.csv", ["A1,u1,Reports,view,N/A,20/11/2026"])

    ok = invoke("check", str(good), "--feed", "user_activity")
    rejected = invoke("check", str(bad), "--feed", "user_activity")

    assert ok.exit_code == 0
    assert ok.output.splitlines() == [
        f"File {good} as feed user_activity:",
        "  rows: 40 total, 39 valid, 1 invalid",
        "  days: 2026-11-20",
        "  row 41, column count: count '-2' is negative",
        "OK: the file would be loaded (invalid rows skipped).",
    ]
    assert rejected.exit_code == 1
    assert rejected.output.splitlines()[-2:] == [
        "  row 2, column timestamp: timestamp '20/11/2026' is not an ISO 8601 timestamp or epoch"
        " seconds",
        "REJECTED: the file would be rejected: 1 of 1 rows are invalid, more than the"
        " max_reject_ratio of 0.05 (first: row 2, column count: count 'N/A' is not a number).",
    ]
    assert not (project / "data" / "warehouse.db").exists()


def test_run_exit_codes(project: Path) -> None:
    empty = invoke("run", "--as-of", "2026-11-21T06:00:00+00:00")
    assert empty.exit_code == 1  # nothing arrived: the missing-drop check fails
    assert (
        "FAILED CHECK user_activity_drop_arrivals:missing_drop No user_activity file for"
        " 2026-11-20 has arrived." in empty.output
    )

    drop(
        project / "data" / "inbox",
        "user_activity/usage_2026-11-20.csv",
        ["A1,u1,Reports,view,3,2026-11-20T10:00:00Z"],
    )
    good = invoke("run", "--as-of", "2026-11-21T06:00:00+00:00")
    assert good.exit_code == 0, good.output
    assert "  loaded     user_activity/usage_2026-11-20.csv  rows 1/1 loaded" in good.output

    drop(
        project / "data" / "inbox",
        "user_activity/usage_2026-11-21.csv",
        ["A1,u1,Reports,view,-3,2026-11-21T10:00:00Z"],
    )
    bad = invoke("run", "--as-of", "2026-11-22T06:00:00+00:00")
    assert bad.exit_code == 1

    status = invoke("status")
    assert status.exit_code == 1, status.output
    assert "#2     rejected   user_activity/usage_2026-11-21.csv  0/1 rows loaded" in status.output
    assert "Files by status: loaded 1, rejected 1" in status.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "--warehouse", "postgresql+psycopg://nobody@127.0.0.1:1/none"],
            "error: Cannot open the warehouse",
        ),
        (
            ["run", "--inbox", "no/such/folder"],
            "error: The inbox folder no/such/folder does not exist.",
        ),
        (
            ["run", "--as-of", "yesterday"],
            "error: --as-of 'yesterday' is not an ISO 8601 date-time.",
        ),
        (["run", "--config", "missing.yaml"], "error: Config file missing.yaml does not exist."),
    ],
)
def test_run_cannot_run_exits_2_with_one_sentence(
    project: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.output.startswith(message)
    assert "Traceback" not in result.output


def test_unknown_config_key_is_named(project: Path) -> None:
    (project / "data" / "pipeline.yaml").write_text("timezone: UTC\nmax_rejects: 0.1\n")
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 2
    assert result.output.startswith("error: Unknown config key 'max_rejects' (known keys:")
