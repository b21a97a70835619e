"""SPEC §2.2-§2.4, the Totango feeds: ``account_usage`` (``##`` counts beside user-level
usage, last row wins across chunks, attributes), ``account_attributes`` (value history with
late files and corrections) and ``accounts`` (latest file wins, corrections fall back)."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from usage_pipeline.config import PipelineConfig
from usage_pipeline.demo_data.totango import drops
from usage_pipeline.ingest import ingest_file
from usage_pipeline.runner import RunReport
from usage_pipeline.sources import open_source
from usage_pipeline.warehouse.engine import dispose_engines, get_engine
from usage_pipeline_tests.helpers import drop, invoke, rows, run

AS_OF = datetime(2026, 11, 21, 6, tzinfo=timezone.utc)  # snapshots 2026-11-20
LEDGER = "source_key, status, rows_total, rows_loaded, rows_rejected, min_day, max_day"
HISTORY = "account_id, attribute, valid_from, value, valid_to"
DIRECTORY = "account_id, crm_id, domain, name"


def ingested(report: RunReport) -> list[dict]:
    """The inbox_file materialisations of a run (never the tables a file rewrote)."""
    return [f for f in report.files if "status" in f]


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def test_account_usage_and_user_activity_both_count_once(
    inbox: Path, config: PipelineConfig, instance
) -> None:
    drop(
        inbox,
        "user_activity/usage_2026-11-20.csv",
        ["A1,u1,Reports,view,3,2026-11-20", "A1,u2,Reports,view,2,2026-11-20"],
        header="account_id,user_id,module,activity,count,date",
    )
    drop(
        inbox,
        "account_usage/account_usage_2026-11-20.csv",
        ["A1,10,0", "A2,4,"],
        header="account_id,Reports##view,Admin##login",  # names kept as written
    )

    report = run(config, instance, as_of=AS_OF)
    again = run(config, instance, as_of=AS_OF)

    assert [f["status"] for f in ingested(report)] == ["loaded", "loaded"]
    assert report.rollup_days == ["2026-11-20"]
    assert report.failed_checks == [] and report.failed_runs == []
    assert ingested(again) == [] and again.rollup_days == []
    assert rows(config.warehouse, "account_activity_daily") == [
        ("2026-11-20", "A1", "Admin", "login", "account_usage", 0, None),
        ("2026-11-20", "A1", "Reports", "view", "account_usage", 10, None),
        ("2026-11-20", "A1", "Reports", "view", "user_activity", 5, 2),
        ("2026-11-20", "A2", "Reports", "view", "account_usage", 4, None),
    ]
    assert rows(
        config.warehouse,
        "account_usage_snapshot",
        columns="snapshot_date, account_id, active_users_1d, activity_1d, activity_30d,"
        " top_module_30d, last_activity_date",
    ) == [
        ("2026-11-20", "A1", 2, 15, 15, "Reports", "2026-11-20"),
        ("2026-11-20", "A2", 0, 4, 4, "Reports", "2026-11-20"),
    ]


def test_attribute_history_unchanged_change_late_file_and_correction(
    inbox: Path, config: PipelineConfig, instance
) -> None:
    header = "account_id,plan,csm"
    start = datetime(2026, 11, 5, tzinfo=timezone.utc)
    for day, lines in (
        (1, ["A1,Pro,Jane", "A2,Basic,"]),
        (2, ["A1,Pro,"]),  # unchanged plan; a blank csm does not clear it
        (3, ["A1,Enterprise,Jane"]),
    ):
        drop(
            inbox,
            f"account_attributes/attributes_2026-11-0{day}.csv",
            lines,
            header=header,
            modified=start + timedelta(hours=day),
        )
    first = run(config, instance, as_of=AS_OF)
    assert [f["status"] for f in ingested(first)] == ["loaded"] * 3
    assert first.rollup_days == []  # attributes are not daily usage
    assert rows(config.warehouse, "account_attribute_history", columns=HISTORY) == [
        ("A1", "csm", "2026-11-01", "Jane", None),
        ("A1", "plan", "2026-11-01", "Pro", "2026-11-03"),
        ("A1", "plan", "2026-11-03", "Enterprise", None),
        ("A2", "plan", "2026-11-01", "Basic", None),
    ]

    late = "account_attributes/attributes_2026-11-02_late.csv"
    drop(inbox, late, ["A1,Basic,"], header=header)
    run(config, instance, as_of=AS_OF)
    assert rows(config.warehouse, "account_attribute_history", columns=HISTORY) == [
        ("A1", "csm", "2026-11-01", "Jane", None),
        ("A1", "plan", "2026-11-01", "Pro", "2026-11-02"),
        ("A1", "plan", "2026-11-02", "Basic", "2026-11-03"),
        ("A1", "plan", "2026-11-03", "Enterprise", None),
        ("A2", "plan", "2026-11-01", "Basic", None),
    ]

    drop(inbox, late, ["A1,Pro,Jane"], header=header)  # corrected re-drop: same key, new bytes
    corrected = run(config, instance, as_of=AS_OF)
    assert [(f["status"], f["superseded_file_ids"]) for f in ingested(corrected)] == [
        ("loaded", [4])
    ]
    assert rows(config.warehouse, "account_attribute_history", columns=HISTORY) == [
        ("A1", "csm", "2026-11-01", "Jane", None),
        ("A1", "plan", "2026-11-01", "Pro", "2026-11-03"),
        ("A1", "plan", "2026-11-03", "Enterprise", None),
        ("A2", "plan", "2026-11-01", "Basic", None),
    ]
    assert [r[0] for r in rows(config.warehouse, "attribute_observations")] == [
        1,
        1,
        1,
        2,
        3,
        3,
        5,
        5,
    ]

    # A correction of day 1 without A2: A2's only observation goes, and so does its history.
    day1 = "account_attributes/attributes_2026-11-01.csv"
    drop(inbox, day1, ["A1,Pro,Jane", "A3,,"], header=header)
    run(config, instance, as_of=AS_OF)
    assert rows(config.warehouse, "account_attribute_history", columns=HISTORY) == [
        ("A1", "csm", "2026-11-01", "Jane", None),
        ("A1", "plan", "2026-11-01", "Pro", "2026-11-03"),
        ("A1", "plan", "2026-11-03", "Enterprise", None),
    ]


def test_account_usage_last_row_wins_across_chunks_attributes_and_row_errors(
    inbox: Path, warehouse_url: str, instance
) -> None:
    config = PipelineConfig(
        inbox=str(inbox), warehouse=warehouse_url, chunk_rows=2, max_reject_ratio=0.5
    )
    header = "account_id,date,Reports##View,Admin##Login,Plan"
    drop(  # rejected as a whole first: its staging must not leak into the next file
        inbox, "account_usage/bad_2026-11-20.csv", ["A9,2026-11-20,N/A,,Pro"], header=header
    )
    key = "account_usage/usage_2026-11-20.csv"
    drop(
        inbox,
        key,
        [
            "A1,2026-11-20,5,1,Pro",  # row 2, chunk 1: superseded by row 4
            "A2,2026-11-20,7,,Basic",  # row 3
            "A1,2026-11-20,9,,Enterprise",  # row 4, chunk 2: A1 wins, without Admin##Login
            "A3,2026-11-20,abc,2,Pro",  # row 5: row error
            "A2,2026-11-19,3,0,",  # row 6: another day of A2 (a real zero; no plan)
            "A3,2026-11-20,-1,1.5,Pro",  # row 7: row error (two cells)
            "A4,,1,1,Basic",  # row 8: no date -> drop date; superseded by row 9
            "A4,,,,",  # row 9: the last row wins even with every cell blank
        ],
        header=header,
    )

    report = run(config, instance, as_of=AS_OF)

    assert rows(warehouse_url, "ingested_files", columns=LEDGER) == [
        ("account_usage/bad_2026-11-20.csv", "rejected", 1, 0, 1, None, None),
        ("account_usage/usage_2026-11-20.csv", "loaded", 8, 6, 2, "2026-11-19", "2026-11-20"),
    ]
    loaded = next(f for f in ingested(report) if f["status"] == "loaded")
    assert loaded["rows_superseded_in_file"] == 2
    assert rows(warehouse_url, "rejected_rows") == [
        (1, 2, "Reports##View", "N/A", "Reports##View 'N/A' is not a non-negative whole number"),
        (2, 5, "Reports##View", "abc", "Reports##View 'abc' is not a non-negative whole number"),
        (2, 7, "Admin##Login", "1.5", "Admin##Login '1.5' is not a whole number"),
        (2, 7, "Reports##View", "-1", "Reports##View '-1' is negative"),
    ]
    assert rows(warehouse_url, "account_activity_daily") == [
        ("2026-11-19", "A2", "Admin", "Login", "account_usage", 0, None),
        ("2026-11-19", "A2", "Reports", "View", "account_usage", 3, None),
        ("2026-11-20", "A1", "Reports", "View", "account_usage", 9, None),
        ("2026-11-20", "A2", "Reports", "View", "account_usage", 7, None),
    ]
    assert rows(warehouse_url, "account_attribute_history", columns=HISTORY) == [
        ("A1", "Plan", "2026-11-20", "Enterprise", None),
        ("A2", "Plan", "2026-11-20", "Basic", None),
    ]

    drop(inbox, key, ["A1,2026-11-20,2,2,Pro"], header=header)  # correction: A2 and A4 go
    corrected = run(config, instance, as_of=AS_OF)

    assert corrected.rollup_days == ["2026-11-19", "2026-11-20"]
    assert rows(warehouse_url, "account_activity_daily") == [
        ("2026-11-20", "A1", "Admin", "Login", "account_usage", 2, None),
        ("2026-11-20", "A1", "Reports", "View", "account_usage", 2, None),
    ]
    assert rows(warehouse_url, "account_attribute_history", columns=HISTORY) == [
        ("A1", "Plan", "2026-11-20", "Pro", None),
    ]


def test_accounts_latest_file_wins_and_a_correction_falls_back(
    inbox: Path, config: PipelineConfig, instance
) -> None:
    drop(
        inbox,
        "accounts/accounts_2026-11-01.csv",
        [
            "ACME-001,CRM-1001,acme-001.example.com,Acme One",
            "ACME-002,CRM-1002,acme-002.example.com,Acme Two",
        ],
        header="account_id,crm_id,domain,name",
    )
    run(config, instance, as_of=AS_OF)
    second = "accounts/accounts_2026-11-02.csv"
    drop(  # any column order, names in any case; crm_id is optional
        inbox,
        second,
        "Name,Account_ID,Domain\n"
        "Acme Two Inc,ACME-002,https://www.Acme-Two.example.com/\n"  # stored as given
        "Acme Three,ACME-003,acme-003.example.com\n"
        "Acme Three Ltd,ACME-003,acme-003.example.com\n",  # the last row wins
    )
    report = run(config, instance, as_of=AS_OF)

    assert ingested(report)[0]["tables_updated"] == ["accounts"]
    assert rows(config.warehouse, "accounts", columns=DIRECTORY) == [
        ("ACME-001", "CRM-1001", "acme-001.example.com", "Acme One"),
        ("ACME-002", None, "https://www.Acme-Two.example.com/", "Acme Two Inc"),
        ("ACME-003", None, "acme-003.example.com", "Acme Three Ltd"),
    ]
    assert [r[1] for r in rows(config.warehouse, "account_usage_snapshot")] == [
        "ACME-001",
        "ACME-002",
        "ACME-003",
    ]

    # The latest file is corrected: ACME-002 falls back to the first file, ACME-003 (listed
    # only there) disappears, ACME-004 arrives.
    drop(inbox, second, "account_id,domain,name\nACME-004,acme-004.example.com,Acme Four\n")
    corrected = run(config, instance, as_of=AS_OF)

    assert ingested(corrected)[0]["superseded_file_ids"] == [2]
    assert (
        ingested(corrected)[0]["accounts_written"],
        ingested(corrected)[0]["accounts_removed"],
    ) == (
        2,
        1,
    )
    assert rows(config.warehouse, "accounts", columns=DIRECTORY) == [
        ("ACME-001", "CRM-1001", "acme-001.example.com", "Acme One"),
        ("ACME-002", "CRM-1002", "acme-002.example.com", "Acme Two"),
        ("ACME-004", None, "acme-004.example.com", "Acme Four"),
    ]
    assert sorted({r[0] for r in rows(config.warehouse, "account_observations")}) == [1, 3]


def test_accounts_rows_need_an_account_id(inbox: Path, sqlite_url: str, instance) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=sqlite_url, max_reject_ratio=0.5)
    drop(
        inbox,
        "accounts/accounts.csv",
        ["ACME-001,,acme-001.example.com,", ",CRM-1,x.example.com,X"],
        header="account_id,crm_id,domain,name",
    )
    run(config, instance, as_of=AS_OF)
    assert rows(sqlite_url, "accounts", columns=DIRECTORY) == [
        ("ACME-001", None, "acme-001.example.com", None)
    ]
    assert rows(sqlite_url, "rejected_rows", columns="row_number, column_name, error") == [
        (3, "account_id", "account_id is missing")
    ]


def _reference_history(files: dict[str, tuple[int, list[tuple[int, str, str, dict]]]]):
    """History computed from scratch from the loaded versions (file_id, rows)."""
    daily: dict[tuple[str, str], dict[str, tuple[tuple[int, int], str]]] = {}
    for file_id, file_rows in files.values():
        for row_number, account, day, values in file_rows:
            for attribute, value in values.items():
                days = daily.setdefault((account, attribute), {})
                rank = (file_id, row_number)
                if day not in days or days[day][0] < rank:
                    days[day] = (rank, value)
    expected = []
    for (account, attribute), days in daily.items():
        changes = []
        for day in sorted(days):
            value = days[day][1]
            if not changes or changes[-1][1] != value:
                changes.append((day, value))
        for index, (day, value) in enumerate(changes):
            until = changes[index + 1][0] if index + 1 < len(changes) else None
            expected.append((account, attribute, day, value, until))
    return sorted(expected, key=lambda r: tuple("" if v is None else v for v in r))


def test_history_matches_a_from_scratch_recomputation(inbox: Path, warehouse_url: str) -> None:
    """Random late files and corrections in any order: the incremental history always
    equals the history recomputed from every loaded observation."""
    config = PipelineConfig(inbox=str(inbox), warehouse=warehouse_url)
    engine, source = get_engine(warehouse_url), open_source(str(inbox))
    rng = random.Random(20261121)
    days = [(date(2026, 11, 1) + timedelta(days=n)).isoformat() for n in range(6)]
    loaded: dict[str, tuple[int, list[tuple[int, str, str, dict]]]] = {}
    keys: list[str] = []
    for step in range(30):
        if keys and rng.random() < 0.4:
            key = rng.choice(keys)  # a correction (or a late re-drop) of an earlier key
        else:
            key = f"account_attributes/{step:02d}/attributes_{rng.choice(days)}.csv"
            keys.append(key)
        drop_day = key.rsplit("_", 1)[1][:10]
        lines, file_rows = [], []
        for row_number in range(2, 2 + rng.randint(1, 4)):
            account, day = rng.choice("AB"), rng.choice([*days, ""])
            values = {a: rng.choice(["x", "y", "z", ""]) for a in ("plan", "tier")}
            lines.append(f"{account},{day},{values['plan']},{values['tier']}")
            kept = {a: v for a, v in values.items() if v}
            file_rows.append((row_number, account, day or drop_day, kept))
        drop(inbox, key, lines, header="account_id,date,plan,tier")
        outcome = ingest_file(engine, source, source.stat(key), config)
        if outcome.status == "loaded" and not outcome.already_done:
            loaded[key] = (int(outcome.file_id or 0), file_rows)
        assert rows(warehouse_url, "account_attribute_history", columns=HISTORY) == (
            _reference_history(loaded)
        ), f"step {step}: {key}"


@pytest.mark.parametrize(
    ("feed", "header"),
    [
        ("account_usage", "account_id,date,<Module>##<Activity>,<attribute>"),
        ("account_attributes", "account_id,date,<attribute>"),
        ("accounts", "account_id,crm_id,domain,name,parent_account_id"),
    ],
)
def test_templates(feed: str, header: str) -> None:
    result = invoke("template", feed)
    assert (result.exit_code, result.output) == (0, header + "\n")


def test_check_good_and_bad_files(project: Path) -> None:
    usage = drop(
        project,
        "usage_2026-11-20.csv",
        ["A1,3,0,Pro", "A2,,4,"],
        header="account_id,Reports##View,Admin##Login,plan",
    )
    bad_usage = drop(project, "bad_2026-11-20.csv", ["A1,-3"], header="account_id,Reports##View")
    attributes = drop(
        project, "attributes.csv", ["A1,2026-11-19,Pro"], header="account_id,date,plan"
    )
    bad_attributes = drop(project, "no_attributes.csv", ["A1,2026-11-19"], header="account_id,date")
    bad_item = drop(project, "item.csv", ["A1,3"], header="account_id,Reports##")
    directory = drop(
        project, "accounts.csv", ["A1,a.example.com,A"], header="account_id,domain,name"
    )
    no_name = drop(project, "no_name.csv", ["A1,a.example.com"], header="account_id,domain")

    ok = invoke("check", str(usage), "--feed", "account_usage")
    assert ok.output.splitlines() == [
        f"File {usage} as feed account_usage:",
        "  rows: 2 total, 2 valid, 0 invalid",
        "  days: 2026-11-20",
        "OK: the file would be loaded.",
    ]
    assert ok.exit_code == 0
    assert invoke("check", str(attributes), "--feed", "account_attributes").exit_code == 0
    assert invoke("check", str(directory), "--feed", "accounts").exit_code == 0

    rejected = invoke("check", str(bad_usage), "--feed", "account_usage")
    assert rejected.exit_code == 1
    assert rejected.output.splitlines()[-2:] == [
        "  row 2, column Reports##View: Reports##View '-3' is negative",
        "REJECTED: the file would be rejected: 1 of 1 rows are invalid, more than the"
        " max_reject_ratio of 0.05 (first: row 2, column Reports##View: Reports##View '-3'"
        " is negative).",
    ]
    for path, feed, reason in (
        (
            bad_attributes,
            "account_attributes",
            "there are no attribute columns (the account_attributes template is:"
            " account_id,date,<attribute>)",
        ),
        (
            bad_item,
            "account_usage",
            "column 'reports##' is not a count column of the form <Module>##<Activity>"
            " (one '##' between a module and an activity)",
        ),
        (no_name, "accounts", "required column name missing"),
    ):
        result = invoke("check", str(path), "--feed", feed)
        assert result.exit_code == 1
        assert result.output.splitlines()[-1] == f"REJECTED: the file would be rejected: {reason}."
    assert not (project / "data" / "warehouse.db").exists()

    # With a warehouse, check still writes nothing. (Engines are cached per URL: forget the
    # ones earlier tests opened on this relative URL in their own folders.)
    dispose_engines()
    get_engine("sqlite:///data/warehouse.db")
    assert invoke("check", str(usage), "--feed", "account_usage").output == ok.output
    assert rows("sqlite:///data/warehouse.db", "ingested_files") == []


def test_demo_drops_load_night_by_night(inbox: Path, sqlite_url: str, instance) -> None:
    tz = ZoneInfo("UTC")
    config = PipelineConfig(inbox=str(inbox), warehouse=sqlite_url)
    first = date(2026, 11, 10)
    statuses = []
    for index, night_drops in enumerate(_by_night(drops(first, 5, tz))):
        night = first + timedelta(days=index)
        dropped_at = datetime.combine(night, time(23), tzinfo=tz)
        for demo in night_drops:
            drop(inbox, demo.key, demo.content.decode(), modified=dropped_at)
        report = run(config, instance, as_of=dropped_at + timedelta(hours=2, minutes=30))
        statuses += [(f["file"], f["status"]) for f in ingested(report)]

    assert [s for f, s in statuses if s != "loaded"] == ["rejected"]
    assert [f for f, s in statuses if s == "rejected"] == [
        "account_usage/account_usage_2026-11-11_bad.csv"
    ]
    history = rows(sqlite_url, "account_attribute_history", columns=HISTORY)
    assert [r for r in history if r[:2] in (("ACME-003", "plan"), ("ACME-005", "plan"))] == [
        ("ACME-003", "plan", "2026-11-10", "Pro", "2026-11-12"),
        ("ACME-003", "plan", "2026-11-12", "Enterprise", None),
        ("ACME-005", "plan", "2026-11-10", "Pro", None),  # split by the late file, healed
    ]
    assert len(rows(sqlite_url, "accounts")) == 9
    assert rows(sqlite_url, "accounts", columns=DIRECTORY)[1] == (
        "ACME-002",
        "CRM-1002",
        "https://www.acme-002.example.com/",
        "Acme Analytics Group",
    )
    days = {r[0] for r in rows(sqlite_url, "account_activity_daily")}
    assert days == {"2026-11-08", "2026-11-09", "2026-11-10", "2026-11-12", "2026-11-14"}


def _by_night(found: list) -> list[list]:
    nights: dict[date, list] = {}
    for demo in found:
        nights.setdefault(demo.night, []).append(demo)
    return [nights[night] for night in sorted(nights)]
