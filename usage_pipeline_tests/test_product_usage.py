"""SPEC §2.5 product_usage/<import>/: periods, value types, account matching, history vs
overwrite, several products per CSV, dimension types, configuration errors, the dry-run
report and the demo import.

The pipeline runs as of 2026-11-21 12:00 UTC (a Saturday) unless a test says otherwise, so a
file without a date column lands in: single 2026-11-21, daily 2026-11-20, weekly 2026-11-09,
monthly 2026-10-01, quarterly 2026-07-01, yearly 2025-01-01.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from usage_pipeline.cli import main
from usage_pipeline.config import ConfigError, parse_config
from usage_pipeline.feeds import FEEDS
from usage_pipeline.feeds.base import FileContext
from usage_pipeline.matching import AccountDirectory, normalise_domain, normalise_name
from usage_pipeline.periods import auto_period_start, period_start, period_starts
from usage_pipeline.warehouse.engine import get_engine, read_connection
from usage_pipeline.warehouse.tables import accounts, product_usage
from usage_pipeline_tests.helpers import drop, rows, run

FEED = FEEDS["product_usage"]


def make_config(inbox: Path, url: str, products: dict, imports: dict, **extra: Any):
    return parse_config(
        {"inbox": str(inbox), "warehouse": url, "products": products, "imports": imports, **extra}
    )


def mapping(column: str, product: str, dimension: str, kind: str) -> dict[str, str]:
    return {"column": column, "product": product, "dimension": dimension, "type": kind}


def an_import(column: str, kind: str, mappings: list[dict], date_column: str | None = None):
    return {
        "identifier": {"column": column, "kind": kind},
        "date_column": date_column,
        "mappings": mappings,
    }


def add_accounts(url: str, *entries: tuple[str, str | None, str | None, str | None]) -> None:
    """Rows of the accounts directory (the accounts feed's table): id, crm_id, domain, name."""
    with get_engine(url).begin() as conn:
        conn.execute(
            sa.insert(accounts),
            [
                dict(zip(("account_id", "crm_id", "domain", "name"), e, strict=True))
                for e in entries
            ],
        )


def usage(url: str) -> list[tuple]:
    """product_usage with typed values (dates as ISO text, booleans as bool on both DBs)."""
    t = product_usage.c
    query = sa.select(
        t.product,
        t.account_id,
        t.dimension,
        t.period_start,
        t.seq,
        t.period,
        t.value_numeric,
        t.value_text,
        t.value_boolean,
        t.file_id,
    ).order_by(t.product, t.account_id, t.dimension, t.period_start, t.seq)
    with read_connection(get_engine(url)) as conn:
        found = conn.execute(query).all()
    return [(*r[:3], r[3].isoformat(), *r[4:]) for r in found]


def files(report: Any) -> list[dict[str, Any]]:
    """The files a run processed (one record per file of its inbox_file materialisations)."""
    return [f for f in report.files if "status" in f]


def ledger(url: str) -> list[tuple]:
    return rows(url, "ingested_files", columns="file_id, source_key, status, error")


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


# --- 1. periods ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_of", "period", "expected"),
    [
        (date(2026, 11, 21), "single", date(2026, 11, 21)),
        (date(2026, 11, 21), "daily", date(2026, 11, 20)),
        (date(2026, 11, 21), "weekly", date(2026, 11, 9)),
        (date(2026, 11, 21), "monthly", date(2026, 10, 1)),
        (date(2026, 11, 21), "quarterly", date(2026, 7, 1)),
        (date(2026, 11, 21), "yearly", date(2025, 1, 1)),
        # New Year's Day 2026 is a Thursday: every "previous" period is in 2025
        (date(2026, 1, 1), "single", date(2026, 1, 1)),
        (date(2026, 1, 1), "daily", date(2025, 12, 31)),
        (date(2026, 1, 1), "weekly", date(2025, 12, 22)),
        (date(2026, 1, 1), "monthly", date(2025, 12, 1)),
        (date(2026, 1, 1), "quarterly", date(2025, 10, 1)),
        (date(2026, 1, 1), "yearly", date(2025, 1, 1)),
        # on a Monday the previous week starts seven days before
        (date(2026, 11, 16), "weekly", date(2026, 11, 9)),
        (date(2024, 3, 1), "daily", date(2024, 2, 29)),
        (date(2024, 4, 1), "quarterly", date(2024, 1, 1)),
    ],
)
def test_auto_period_date_from_the_as_of_date(as_of: date, period: str, expected: date) -> None:
    assert auto_period_start(as_of, period) == expected


@pytest.mark.parametrize(
    ("day", "period", "expected"),
    [
        (date(2024, 10, 15), "single", date(2024, 10, 15)),
        (date(2024, 10, 15), "daily", date(2024, 10, 15)),
        (date(2024, 10, 15), "weekly", date(2024, 10, 14)),
        (date(2024, 10, 15), "monthly", date(2024, 10, 1)),
        (date(2024, 10, 15), "quarterly", date(2024, 10, 1)),
        (date(2024, 10, 15), "yearly", date(2024, 1, 1)),
        (date(2026, 1, 1), "weekly", date(2025, 12, 29)),  # a Thursday: Monday of last year
        (date(2026, 1, 4), "weekly", date(2025, 12, 29)),  # Sunday: same week
        (date(2026, 1, 5), "weekly", date(2026, 1, 5)),  # Monday: its own start
        (date(2024, 2, 29), "quarterly", date(2024, 1, 1)),
        (date(2024, 6, 30), "quarterly", date(2024, 4, 1)),
        (date(2024, 7, 1), "quarterly", date(2024, 7, 1)),
        (date(2024, 12, 31), "quarterly", date(2024, 10, 1)),
        (date(2024, 12, 31), "yearly", date(2024, 1, 1)),
    ],
)
def test_dates_snap_to_their_period_start(day: date, period: str, expected: date) -> None:
    assert period_start(day, period) == expected


def test_period_starts_of_a_column() -> None:
    days = pd.Series(pd.to_datetime(["2026-01-01", "2024-10-15", "2026-01-01", "2024-11-30"]))
    assert list(period_starts(days, "weekly")) == [
        "2025-12-29",
        "2024-10-14",
        "2025-12-29",
        "2024-11-25",
    ]
    assert list(period_starts(days, "quarterly")) == [
        "2026-01-01",
        "2024-10-01",
        "2026-01-01",
        "2024-10-01",
    ]


def test_as_of_date_is_taken_in_the_instance_zone() -> None:
    config = parse_config(
        {
            "timezone": "America/New_York",
            "products": {
                "Daily": {"snapshot_period": "daily"},
                "Single": {"snapshot_period": "single"},
            },
            "imports": {
                "crm": an_import(
                    "id",
                    "account_id",
                    [mapping("a", "Daily", "A", "numeric"), mapping("b", "Single", "B", "text")],
                )
            },
        }
    )
    # 03:00 UTC on Nov 21 is still Nov 20 in New York
    moment = datetime(2026, 11, 21, 3, tzinfo=timezone.utc)
    context = FileContext(
        key="product_usage/crm/x.csv",
        drop_day=date(2026, 11, 20),
        received_at=moment,
        tz=config.tz,
        config=config,
        as_of=moment,
        import_name="crm",
    )
    prepared = FEED.prepare(None, context).lookup
    assert prepared.auto_starts == {"Daily": "2026-11-19", "Single": "2026-11-20"}


# --- matching (unit) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.Acme.com/path", "acme.com"),
        ("HTTP://acme.com", "acme.com"),
        ("www.acme.com", "acme.com"),
        ("acme.com/", "acme.com"),
        ("  Acme.COM  ", "acme.com"),
        ("https://app.acme.com:8443/login?next=/home#top", "app.acme.com"),
        ("//www.acme.com", "acme.com"),
        ("jane@acme.com", "acme.com"),
        ("acme.com.", "acme.com"),
    ],
)
def test_domain_normalisation(raw: str, expected: str) -> None:
    assert normalise_domain(raw) == expected


def test_name_normalisation_and_ambiguity() -> None:
    assert normalise_name("  ACME \t  Corp ") == "acme corp"
    directory = AccountDirectory.from_rows(
        "name", [("A1", "Acme Corp"), ("A2", "Globex"), ("A3", "globex "), ("A4", None)]
    )
    assert directory.size == 4
    assert directory.match("acme  corp").account_id == "A1"
    globex = directory.match("GLOBEX")
    assert globex.account_id is None
    assert globex.reason == (
        "name 'GLOBEX' (normalised: 'globex') is ambiguous: it matches 2 accounts (A2, A3)"
    )
    assert directory.match("Initech").reason == (
        "no account has name 'Initech' (normalised: 'initech')"
    )


# --- 2. value types ----------------------------------------------------------------------


def test_blank_zero_bad_numbers_booleans_and_text(
    inbox: Path, warehouse_url: str, instance
) -> None:
    config = make_config(
        inbox,
        warehouse_url,
        {"App": {"snapshot_period": "monthly"}},
        {
            "app": an_import(
                "account",
                "account_id",
                [
                    mapping("visits", "App", "Visits", "numeric"),
                    mapping("active", "App", "Active", "boolean"),
                    mapping("plan", "App", "Plan", "text"),
                ],
            )
        },
        max_reject_ratio=0.5,
    )
    add_accounts(warehouse_url, *[(f"A{n}", None, None, None) for n in range(1, 8)])
    drop(
        inbox,
        "product_usage/app/2026-11-20.csv",
        [
            "A1,0,true,Gold",  # a real zero is recorded
            "A2,,FALSE,",  # blanks are skipped
            "A3,N/A,Yes, Silver",  # N/A rejects that cell only
            'A4,12.5,no,"Gold, annual"',
            "A5,-3,1,42",
            "A6,1e3,0,n/a",  # text accepts anything
            "A7,7,maybe,x",
        ],
        header="Account,Visits,Active,Plan",
    )

    report = run(config, instance)

    assert [(f["status"], f["rows_loaded"], f["rows_rejected"]) for f in files(report)] == [
        ("loaded", 5, 2)
    ]
    assert usage(warehouse_url) == [
        ("App", "A1", "Active", "2026-10-01", 0, "monthly", None, None, True, 1),
        ("App", "A1", "Plan", "2026-10-01", 0, "monthly", None, "Gold", None, 1),
        ("App", "A1", "Visits", "2026-10-01", 0, "monthly", 0.0, None, None, 1),
        ("App", "A2", "Active", "2026-10-01", 0, "monthly", None, None, False, 1),
        ("App", "A3", "Active", "2026-10-01", 0, "monthly", None, None, True, 1),
        ("App", "A3", "Plan", "2026-10-01", 0, "monthly", None, "Silver", None, 1),
        ("App", "A4", "Active", "2026-10-01", 0, "monthly", None, None, False, 1),
        ("App", "A4", "Plan", "2026-10-01", 0, "monthly", None, "Gold, annual", None, 1),
        ("App", "A4", "Visits", "2026-10-01", 0, "monthly", 12.5, None, None, 1),
        ("App", "A5", "Active", "2026-10-01", 0, "monthly", None, None, True, 1),
        ("App", "A5", "Plan", "2026-10-01", 0, "monthly", None, "42", None, 1),
        ("App", "A5", "Visits", "2026-10-01", 0, "monthly", -3.0, None, None, 1),
        ("App", "A6", "Active", "2026-10-01", 0, "monthly", None, None, False, 1),
        ("App", "A6", "Plan", "2026-10-01", 0, "monthly", None, "n/a", None, 1),
        ("App", "A6", "Visits", "2026-10-01", 0, "monthly", 1000.0, None, None, 1),
        ("App", "A7", "Plan", "2026-10-01", 0, "monthly", None, "x", None, 1),
        ("App", "A7", "Visits", "2026-10-01", 0, "monthly", 7.0, None, None, 1),
    ]
    assert rows(warehouse_url, "rejected_rows") == [
        (1, 4, "visits", "N/A", "visits 'N/A' is not a number"),
        (1, 8, "active", "maybe", "active 'maybe' is not a boolean (true/false, yes/no, 1/0)"),
    ]
    assert rows(warehouse_url, "product_dimensions") == [
        ("App", "Active", "boolean", 1),
        ("App", "Plan", "text", 1),
        ("App", "Visits", "numeric", 1),
    ]


def test_bad_cells_count_towards_max_reject_ratio(inbox: Path, sqlite_url: str, instance) -> None:
    config = make_config(
        inbox,
        sqlite_url,
        {"App": {"snapshot_period": "monthly"}},
        {
            "app": an_import(
                "account", "account_id", [mapping("visits", "App", "Visits", "numeric")]
            )
        },
    )
    add_accounts(sqlite_url, ("A1", None, None, None))
    drop(inbox, "product_usage/app/x.csv", ["A1,3", "A1,N/A"], header="account,visits")

    run(config, instance)

    assert ledger(sqlite_url) == [
        (
            1,
            "product_usage/app/x.csv",
            "rejected",
            "File product_usage/app/x.csv is rejected: 1 of 2 rows are invalid, more than the"
            " max_reject_ratio of 0.05 (first: row 3, column visits: visits 'N/A' is not a"
            " number).",
        )
    ]
    assert usage(sqlite_url) == []


# --- 3. matching -------------------------------------------------------------------------

MATCHING_PRODUCTS = {"Platform": {"snapshot_period": "monthly"}}
MATCHING_IMPORTS = {
    "by_crm": an_import(
        "customer", "crm_id", [mapping("seats", "Platform", "Seats CRM", "numeric")]
    ),
    "by_domain": an_import(
        "website", "domain", [mapping("seats", "Platform", "Seats Web", "numeric")]
    ),
    "by_name": an_import(
        "company", "name", [mapping("seats", "Platform", "Seats Name", "numeric")]
    ),
}
DIRECTORY = [
    ("A1", "CRM-1", "acme.com", "Acme Corp"),
    ("A2", "CRM-2", "https://www.globex.com/", "Globex  Inc"),
    ("A3", "CRM-3", "initech.com", "Initech"),
    ("A4", None, "www.initech.com", "Hooli"),
]


def test_matching_by_crm_id_domain_and_name(
    inbox: Path, warehouse_url: str, instance, tmp_path: Path
) -> None:
    config = make_config(inbox, warehouse_url, MATCHING_PRODUCTS, MATCHING_IMPORTS)
    add_accounts(warehouse_url, *DIRECTORY)
    drop(inbox, "product_usage/by_crm/a.csv", ["CRM-1,10", "CRM-404,5"], header="customer,seats")
    drop(
        inbox,
        "product_usage/by_domain/a.csv",
        ["https://www.Acme.com/path,11", "GLOBEX.com,12", "initech.com,13"],
        header="website,seats",
    )
    drop(
        inbox,
        "product_usage/by_name/a.csv",
        ['"  acme   CORP ",21', "globex inc,22", "Umbrella,23"],
        header="company,seats",
    )

    report = run(config, instance)

    assert usage(warehouse_url) == [
        ("Platform", "A1", "Seats CRM", "2026-10-01", 0, "monthly", 10.0, None, None, 1),
        ("Platform", "A1", "Seats Name", "2026-10-01", 0, "monthly", 21.0, None, None, 3),
        ("Platform", "A1", "Seats Web", "2026-10-01", 0, "monthly", 11.0, None, None, 2),
        ("Platform", "A2", "Seats Name", "2026-10-01", 0, "monthly", 22.0, None, None, 3),
        ("Platform", "A2", "Seats Web", "2026-10-01", 0, "monthly", 12.0, None, None, 2),
    ]
    assert rows(warehouse_url, "rejected_rows") == [
        (1, 3, "customer", "CRM-404", "no account has crm_id 'CRM-404'; the row is not loaded"),
        (
            2,
            4,
            "website",
            "initech.com",
            "domain 'initech.com' is ambiguous: it matches 2 accounts (A3, A4); the row is not"
            " loaded",
        ),
        (
            3,
            4,
            "company",
            "Umbrella",
            "no account has name 'Umbrella' (normalised: 'umbrella'); the row is not loaded",
        ),
    ]
    # unmatched rows are not invalid: each file loads, the unmatched_accounts check fails
    assert [(f["file"], f["status"], f["rows_loaded"]) for f in files(report)] == [
        ("product_usage/by_crm/a.csv", "loaded", 1),
        ("product_usage/by_domain/a.csv", "loaded", 2),
        ("product_usage/by_name/a.csv", "loaded", 2),
    ]
    # one check result for the batch, naming each file's unmatched rows
    unmatched = [c for c in report.failed_checks if c.startswith("inbox_file:unmatched_accounts")]
    assert unmatched == [
        "inbox_file:unmatched_accounts"
        " 1 of 2 rows of product_usage/by_crm/a.csv (50.0%) match no account and were not"
        " loaded: CRM-404."
        " 1 of 3 rows of product_usage/by_domain/a.csv (33.3%) match no account and were not"
        " loaded: initech.com."
        " 1 of 3 rows of product_usage/by_name/a.csv (33.3%) match no account and were not"
        " loaded: Umbrella."
    ]
    assert files(report)[0]["unmatched_identifiers"] == ["CRM-404"]
    metadata = instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(dg.AssetKey("inbox_file"), "unmatched_accounts")
    ).event.dagster_event.event_specific_data.metadata
    assert metadata["failing_files"].value == 3
    by_file = metadata["by_file"].value
    assert by_file["product_usage/by_name/a.csv"]["unmatched_ratio"] == pytest.approx(1 / 3)

    # the dry run lists matched and unmatched rows (the report, Statisfy's "test results")
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text(yaml.safe_dump(config.to_raw()))
    result = CliRunner().invoke(
        main,
        [
            "check",
            str(inbox / "product_usage/by_domain/a.csv"),
            "--feed",
            "product_usage",
            "--import",
            "by_domain",
            "--config",
            str(config_file),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[2:6] == [
        "  accounts directory: 4 accounts; column website is matched by domain",
        "  row 2: website 'https://www.Acme.com/path' matched account A1 -> Platform (monthly)"
        f" {auto_period_start(datetime.now(timezone.utc).date(), 'monthly')}",
        "  row 3: website 'GLOBEX.com' matched account A2 -> Platform (monthly)"
        f" {auto_period_start(datetime.now(timezone.utc).date(), 'monthly')}",
        "  row 4: website 'initech.com' UNMATCHED (domain 'initech.com' is ambiguous: it matches"
        " 2 accounts (A3, A4)), not loaded; it would land in Platform (monthly)"
        f" {auto_period_start(datetime.now(timezone.utc).date(), 'monthly')}",
    ]


# --- 4. history vs overwrite -----------------------------------------------------------

HISTORY_PRODUCTS = {
    "Latest": {"snapshot_period": "monthly", "allow_multiple_rows_per_customer": False},
    "History": {"snapshot_period": "monthly", "allow_multiple_rows_per_customer": True},
}
HISTORY_IMPORTS = {
    "scores": an_import(
        "account",
        "account_id",
        [
            mapping("score", "Latest", "Score", "numeric"),
            mapping("score", "History", "Score", "numeric"),
        ],
        date_column="day",
    )
}


def test_history_versus_latest_overwrite(inbox: Path, warehouse_url: str, instance) -> None:
    config = make_config(inbox, warehouse_url, HISTORY_PRODUCTS, HISTORY_IMPORTS)
    add_accounts(warehouse_url, ("A1", None, None, None), ("A2", None, None, None))
    header = "account,day,score"
    drop(
        inbox,
        "product_usage/scores/a.csv",
        ["A1,2026-10-03,1", "A1,2026-10-20,2", "A2,2026-10-05,5"],
        header=header,
    )
    run(config, instance)
    assert usage(warehouse_url) == [
        # history: every row, in row order
        ("History", "A1", "Score", "2026-10-01", 0, "monthly", 1.0, None, None, 1),
        ("History", "A1", "Score", "2026-10-01", 1, "monthly", 2.0, None, None, 1),
        ("History", "A2", "Score", "2026-10-01", 0, "monthly", 5.0, None, None, 1),
        # latest: the last row of the month wins
        ("Latest", "A1", "Score", "2026-10-01", 0, "monthly", 2.0, None, None, 1),
        ("Latest", "A2", "Score", "2026-10-01", 0, "monthly", 5.0, None, None, 1),
    ]

    drop(inbox, "product_usage/scores/b.csv", ["A1,2026-10-25,3"], header=header)
    run(config, instance)
    assert usage(warehouse_url) == [
        ("History", "A1", "Score", "2026-10-01", 0, "monthly", 1.0, None, None, 1),
        ("History", "A1", "Score", "2026-10-01", 1, "monthly", 2.0, None, None, 1),
        ("History", "A1", "Score", "2026-10-01", 2, "monthly", 3.0, None, None, 2),
        ("History", "A2", "Score", "2026-10-01", 0, "monthly", 5.0, None, None, 1),
        ("Latest", "A1", "Score", "2026-10-01", 0, "monthly", 3.0, None, None, 2),  # latest file
        ("Latest", "A2", "Score", "2026-10-01", 0, "monthly", 5.0, None, None, 1),
    ]

    # a correction of the latest file no longer has A1: its earlier value comes back
    drop(inbox, "product_usage/scores/b.csv", ["A2,2026-10-09,6"], header=header)
    run(config, instance)
    assert usage(warehouse_url) == [
        ("History", "A1", "Score", "2026-10-01", 0, "monthly", 1.0, None, None, 1),
        ("History", "A1", "Score", "2026-10-01", 1, "monthly", 2.0, None, None, 1),
        ("History", "A2", "Score", "2026-10-01", 0, "monthly", 5.0, None, None, 1),
        ("History", "A2", "Score", "2026-10-01", 1, "monthly", 6.0, None, None, 3),
        ("Latest", "A1", "Score", "2026-10-01", 0, "monthly", 2.0, None, None, 1),
        ("Latest", "A2", "Score", "2026-10-01", 0, "monthly", 6.0, None, None, 3),
    ]
    assert [r[:3] for r in ledger(warehouse_url)] == [
        (1, "product_usage/scores/a.csv", "loaded"),
        (2, "product_usage/scores/b.csv", "superseded"),
        (3, "product_usage/scores/b.csv", "loaded"),
    ]
    assert rows(warehouse_url, "product_usage_observations", columns="DISTINCT file_id") == [
        (1,),
        (3,),
    ]
    materialised = instance.get_latest_materialization_event(dg.AssetKey("product_usage"))
    assert materialised is not None
    assert materialised.asset_materialization.metadata["file_ids"].value == [3]


def test_rerunning_the_same_files_changes_nothing(inbox: Path, sqlite_url: str, instance) -> None:
    config = make_config(inbox, sqlite_url, HISTORY_PRODUCTS, HISTORY_IMPORTS)
    add_accounts(sqlite_url, ("A1", None, None, None))
    drop(inbox, "product_usage/scores/a.csv", ["A1,2026-10-03,1"], header="account,day,score")
    run(config, instance)
    before = usage(sqlite_url)
    report = run(config, instance)
    assert files(report) == []
    assert usage(sqlite_url) == before


# --- 5. one CSV, two products ------------------------------------------------------------


def test_one_csv_feeds_two_products_with_different_periods(
    inbox: Path, warehouse_url: str, instance
) -> None:
    config = make_config(
        inbox,
        warehouse_url,
        {
            "Platform": {"snapshot_period": "monthly"},
            "Analytics": {"snapshot_period": "weekly", "allow_multiple_rows_per_customer": True},
        },
        {
            "crm_export": an_import(
                "customer_id",
                "crm_id",
                [
                    mapping("mau", "Platform", "Monthly Active Users", "numeric"),
                    mapping("plan_type", "Platform", "Subscription Plan", "text"),
                    mapping("logins", "Analytics", "Logins", "numeric"),
                    mapping("mau", "Analytics", "Active Users", "numeric"),
                ],
            )
        },
    )
    add_accounts(warehouse_url, ("A1", "CRM-1", None, None), ("A2", "CRM-2", None, None))
    drop(
        inbox,
        "product_usage/crm_export/2026/11/export.csv",
        ["CRM-1,120,Enterprise,40", "CRM-2,8,Starter,"],
        header="customer_id,mau,plan_type,logins",
    )

    report = run(config, instance)

    assert files(report)[0]["tables_updated"] == ["product_usage"]
    assert files(report)[0]["period_starts"] == {
        "Analytics": ["2026-11-09"],
        "Platform": ["2026-10-01"],
    }
    assert usage(warehouse_url) == [
        ("Analytics", "A1", "Active Users", "2026-11-09", 0, "weekly", 120.0, None, None, 1),
        ("Analytics", "A1", "Logins", "2026-11-09", 0, "weekly", 40.0, None, None, 1),
        ("Analytics", "A2", "Active Users", "2026-11-09", 0, "weekly", 8.0, None, None, 1),
        (
            "Platform",
            "A1",
            "Monthly Active Users",
            "2026-10-01",
            0,
            "monthly",
            120.0,
            None,
            None,
            1,
        ),
        (
            "Platform",
            "A1",
            "Subscription Plan",
            "2026-10-01",
            0,
            "monthly",
            None,
            "Enterprise",
            None,
            1,
        ),
        ("Platform", "A2", "Monthly Active Users", "2026-10-01", 0, "monthly", 8.0, None, None, 1),
        (
            "Platform",
            "A2",
            "Subscription Plan",
            "2026-10-01",
            0,
            "monthly",
            None,
            "Starter",
            None,
            1,
        ),
    ]


# --- 6. dimension types and configuration errors -------------------------------------------


def test_dimension_type_conflict_rejects_the_file(
    inbox: Path, warehouse_url: str, instance
) -> None:
    products = {"Platform": {"snapshot_period": "monthly"}}
    numeric = {"crm": an_import("id", "account_id", [mapping("mau", "Platform", "MAU", "numeric")])}
    text = {"crm": an_import("id", "account_id", [mapping("mau", "Platform", "MAU", "text")])}
    add_accounts(warehouse_url, ("A1", None, None, None))
    drop(inbox, "product_usage/crm/a.csv", ["A1,5"], header="id,mau")
    run(make_config(inbox, warehouse_url, products, numeric), instance)

    drop(inbox, "product_usage/crm/b.csv", ["A1,lots"], header="id,mau")
    report = run(make_config(inbox, warehouse_url, products, text), instance)

    assert files(report)[0]["status"] == "rejected"
    assert ledger(warehouse_url)[1] == (
        2,
        "product_usage/crm/b.csv",
        "rejected",
        "File product_usage/crm/b.csv is rejected: dimension 'MAU' of product 'Platform' was"
        " created as numeric (by file 1), but import 'crm' now maps column 'mau' to it as text;"
        " a dimension keeps its type, so map the column to a new dimension name or back to"
        " numeric.",
    )
    assert rows(warehouse_url, "product_dimensions") == [("Platform", "MAU", "numeric", 1)]
    assert usage(warehouse_url) == [
        ("Platform", "A1", "MAU", "2026-10-01", 0, "monthly", 5.0, None, None, 1)
    ]


def test_files_outside_a_configured_import_or_with_unknown_columns_are_rejected(
    inbox: Path, sqlite_url: str, instance
) -> None:
    config = make_config(
        inbox,
        sqlite_url,
        {"Platform": {"snapshot_period": "monthly"}},
        {
            "crm": an_import(
                "id", "crm_id", [mapping("mau", "Platform", "MAU", "numeric")], date_column="day"
            ),
            "web": an_import("site", "domain", [mapping("mau", "Platform", "MAU", "numeric")]),
        },
    )
    drop(inbox, "product_usage/loose.csv", ["C1,5,2026-11-01"], header="id,mau,day")
    drop(inbox, "product_usage/billing/x.csv", ["C1,5,2026-11-01"], header="id,mau,day")
    drop(inbox, "product_usage/crm/extra.csv", ["C1,5,2026-11-01,x"], header="id,mau,day,notes")
    drop(inbox, "product_usage/crm/short.csv", ["C1,5"], header="id,mau")

    run(config, instance)

    assert sorted((key, status, error) for _, key, status, error in ledger(sqlite_url)) == [
        (
            "product_usage/billing/x.csv",
            "rejected",
            "File product_usage/billing/x.csv is rejected: folder 'billing' under product_usage/"
            " is not a configured import (configured imports: crm, web).",
        ),
        (
            "product_usage/crm/extra.csv",
            "rejected",
            "File product_usage/crm/extra.csv is rejected: unknown column 'notes' (the"
            " product_usage template is: id,mau,day).",
        ),
        (
            "product_usage/crm/short.csv",
            "rejected",
            "File product_usage/crm/short.csv is rejected: required column day missing.",
        ),
        (
            "product_usage/loose.csv",
            "rejected",
            "File product_usage/loose.csv is rejected: it is directly in product_usage/, not in"
            " an import folder product_usage/<import>/ (configured imports: crm, web).",
        ),
    ]


def test_configuration_errors_name_the_key() -> None:
    imports = {"crm": an_import("id", "crm_id", [mapping("mau", "Platfrom", "MAU", "numeric")])}
    with pytest.raises(ConfigError) as unknown:
        parse_config({"products": {"Platform": {"snapshot_period": "monthly"}}, "imports": imports})
    assert str(unknown.value) == (
        "Config key 'imports.crm.mappings[0].product' names product 'Platfrom', which has no"
        " snapshot period: add it under 'products' with a snapshot_period."
    )
    with pytest.raises(ConfigError) as missing:
        parse_config({"products": {"Platform": {"allow_multiple_rows_per_customer": True}}})
    assert str(missing.value) == (
        "Config key 'products.Platform.snapshot_period' is missing: every product needs a"
        " snapshot period (single, daily, weekly, monthly, quarterly, yearly)."
    )
    with pytest.raises(ConfigError) as bad_period:
        parse_config({"products": {"Platform": {"snapshot_period": "hourly"}}})
    assert str(bad_period.value).startswith(
        "Config key 'products.Platform.snapshot_period' must be one of single, daily,"
    )
    clash = {
        "a": an_import("id", "crm_id", [mapping("mau", "Platform", "MAU", "numeric")]),
        "b": an_import("id", "crm_id", [mapping("users", "Platform", "MAU", "text")]),
    }
    with pytest.raises(ConfigError) as conflict:
        parse_config({"products": {"Platform": {"snapshot_period": "monthly"}}, "imports": clash})
    assert str(conflict.value) == (
        "Config key 'imports.b.mappings[0].type' maps dimension 'MAU' of product 'Platform' as"
        " text, but 'imports.a.mappings[0]' maps it as numeric."
    )


def test_cli_run_with_a_bad_product_config_exits_2(tmp_path: Path) -> None:
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text(
        "products:\n  Platform: {allow_multiple_rows_per_customer: true}\n", encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["run", "--config", str(config_file)])
    assert result.exit_code == 2
    assert result.output == (
        "error: Config key 'products.Platform.snapshot_period' is missing: every product needs"
        " a snapshot period (single, daily, weekly, monthly, quarterly, yearly).\n"
    )


# --- 7. the dry run --------------------------------------------------------------------


def test_check_shows_matches_and_periods(tmp_path: Path, sqlite_url: str) -> None:
    config = make_config(
        tmp_path / "inbox",
        sqlite_url,
        {
            "Platform": {"snapshot_period": "monthly"},
            "Analytics": {"snapshot_period": "weekly"},
        },
        {
            "crm": an_import(
                "Customer_ID",
                "crm_id",
                [
                    mapping("MAU", "Platform", "MAU", "numeric"),
                    mapping("MAU", "Analytics", "MAU", "numeric"),
                ],
                date_column="Day",
            )
        },
    )
    add_accounts(sqlite_url, ("A1", "CRM-1", None, None), ("A2", "CRM-2", None, None))
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text(yaml.safe_dump(config.to_raw()), encoding="utf-8")
    path = drop(
        tmp_path,
        "export.csv",
        ["CRM-1,5,2026-01-01", "CRM-404,3,2024-10-15", "CRM-2,0,2024-11-30"],
        header="customer_id,mau,day",
    )
    args = ["check", str(path), "--feed", "product_usage", "--config", str(config_file)]

    result = CliRunner().invoke(main, [*args, "--import", "crm"])

    assert result.exit_code == 0
    assert result.output.splitlines() == [
        f"File {path} as feed product_usage:",
        "  rows: 3 total, 3 valid, 0 invalid",
        "  accounts directory: 2 accounts; column customer_id is matched by crm_id",
        "  row 2: customer_id 'CRM-1' matched account A1 -> Platform (monthly) 2026-01-01,"
        " Analytics (weekly) 2025-12-29",
        "  row 3: customer_id 'CRM-404' UNMATCHED (no account has crm_id 'CRM-404'), not"
        " loaded; it would land in Platform (monthly) 2024-10-01, Analytics (weekly) 2024-10-14",
        "  row 4: customer_id 'CRM-2' matched account A2 -> Platform (monthly) 2024-11-01,"
        " Analytics (weekly) 2024-11-25",
        "  row 3, column customer_id: no account has crm_id 'CRM-404'; the row is not loaded",
        "OK: the file would be loaded (invalid rows skipped).",
    ]
    assert usage(sqlite_url) == []  # nothing written

    unknown = CliRunner().invoke(main, [*args, "--import", "billing"])
    assert unknown.exit_code == 1
    assert unknown.output.splitlines()[-1] == (
        "REJECTED: the file would be rejected: folder 'billing' under product_usage/ is not a"
        " configured import (configured imports: crm)."
    )
    template = CliRunner().invoke(
        main, ["template", "product_usage", "--import", "crm", "--config", str(config_file)]
    )
    assert template.output == "customer_id,mau,day\n"


def test_check_without_a_warehouse_reports_every_row_unmatched(tmp_path: Path) -> None:
    config = make_config(
        tmp_path / "inbox",
        f"sqlite:///{tmp_path / 'none' / 'warehouse.db'}",
        {"Platform": {"snapshot_period": "yearly"}},
        {"crm": an_import("id", "crm_id", [mapping("mau", "Platform", "MAU", "numeric")])},
    )
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text(yaml.safe_dump(config.to_raw()), encoding="utf-8")
    path = drop(tmp_path, "export.csv", ["CRM-1,5"], header="id,mau")
    result = CliRunner().invoke(
        main,
        [
            "check",
            str(path),
            "--feed",
            "product_usage",
            "--import",
            "crm",
            "--config",
            str(config_file),
        ],
    )
    assert result.exit_code == 0
    assert result.output.splitlines()[2] == (
        "  accounts directory: no warehouse found, so no account can match (column id is"
        " matched by crm_id)"
    )
    assert not (tmp_path / "none").exists()


# --- the demo import ---------------------------------------------------------------------


def test_demo_import_loads_with_one_unmatched_row_per_night(
    inbox: Path, sqlite_url: str, instance
) -> None:
    from usage_pipeline.demo import ACCOUNTS
    from usage_pipeline.demo_data import statisfy

    config = parse_config({"inbox": str(inbox), "warehouse": sqlite_url, **statisfy.CONFIG})
    add_accounts(
        sqlite_url,
        *[
            (a, f"CRM-{1000 + n}", f"{a.lower()}.example.com", f"Acme {n}")
            for n, a in enumerate(ACCOUNTS, start=1)
        ],
    )
    tz = ZoneInfo("UTC")
    first = date(2026, 11, 18)
    drops = statisfy.drops(first, 3, tz)
    assert len(drops) == 5
    reports = []
    for night in (first + timedelta(days=n) for n in range(3)):
        for item in (d for d in drops if d.night == night):
            (inbox / item.key).parent.mkdir(parents=True, exist_ok=True)
            (inbox / item.key).write_bytes(item.content)
        morning = datetime.combine(night + timedelta(days=1), time(1, 30), tzinfo=tz)
        reports.append(run(config, instance, as_of=morning))

    loaded = [f for r in reports for f in files(r)]
    assert [
        (f["file"].split("/")[1], f["status"], f["rows_total"], f["rows_loaded"]) for f in loaded
    ] == [
        ("crm_export", "loaded", 9, 8),
        ("crm_export", "loaded", 9, 8),
        ("seed_usage", "loaded", 3, 3),  # kind account_id: no directory needed
        ("crm_export", "loaded", 9, 8),
        ("health_scores", "loaded", 25, 25),
    ]
    assert [f.get("unmatched_identifiers") for f in loaded] == [
        ["CRM-9999"],
        ["CRM-9999"],
        [],
        ["CRM-9999"],
        [],
    ]
    found = usage(sqlite_url)
    by_product: dict[str, int] = {}
    for row in found:
        by_product[row[0]] = by_product.get(row[0], 0) + 1
    # Platform: 8 accounts x 4 dimensions, one month (the nightly files overwrite it);
    # Analytics: 3 days x 7 accounts (ACME-005's dashboards_viewed is blank);
    # Customer Health: 25 check-ins x 2 dimensions, minus blank notes (every 5th row).
    assert by_product["Platform"] == 32
    assert by_product["Analytics"] == 21
    assert by_product["Developer API"] == 12  # Statisfy's example layout: 3 rows x 4 values
    health = [r for r in found if r[0] == "Customer Health" and r[2] == "Health Score"]
    assert len(health) == 25
    assert [r[4] for r in health if r[1] == "ACME-001" and r[3] == "2026-11-16"] == [0, 1]
    assert {r[3] for r in health} == {"2026-11-02", "2026-11-09", "2026-11-16"}
