"""SPEC §2.5: a ``product_usage`` import whose identifier has kind ``account_id`` takes the
identifier as the account id as it is: no ``accounts`` directory is needed (the Statisfy
seed example loads all 12 values), the directory is not consulted, and the dry run says so.
Matching against the directory stays for ``crm_id``, ``domain`` and ``name``.

The pipeline runs as of 2026-11-21 12:00 UTC: a monthly product without a date column lands
in 2026-10-01.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from usage_pipeline.cli import main
from usage_pipeline.config import parse_config
from usage_pipeline.periods import auto_period_start
from usage_pipeline.warehouse.engine import get_engine
from usage_pipeline.warehouse.tables import accounts
from usage_pipeline_tests.helpers import drop, rows, run

SEED_HEADER = "customer_id,mau,api_calls,plan_type,is_active"
SEED_ROWS = [
    "cust_001,1250,45000,enterprise,true",
    "cust_002,340,12000,professional,true",
    "cust_003,89,2100,starter,false",
]
SEED_IMPORT = {
    "identifier": {"column": "customer_id", "kind": "account_id"},
    "date_column": None,
    "mappings": [
        {"column": "mau", "product": "Platform", "dimension": "MAU", "type": "numeric"},
        {"column": "api_calls", "product": "Platform", "dimension": "API Calls", "type": "numeric"},
        {"column": "plan_type", "product": "Platform", "dimension": "Plan", "type": "text"},
        {"column": "is_active", "product": "Platform", "dimension": "Active", "type": "boolean"},
    ],
}
PRODUCTS = {"Platform": {"snapshot_period": "monthly"}}
USAGE_COLUMNS = (
    "product, account_id, dimension, period_start, seq, period, value_numeric, value_text,"
    " value_boolean, file_id"
)


def config_for(inbox: Path, url: str):  # type: ignore[no-untyped-def]
    return parse_config(
        {
            "inbox": str(inbox),
            "warehouse": url,
            "products": PRODUCTS,
            "imports": {"seed": SEED_IMPORT},
        }
    )


def stored(url: str) -> list[tuple]:
    """product_usage rows with booleans as bool on both databases."""
    found = rows(url, "product_usage", columns=USAGE_COLUMNS)
    return [(*r[:8], None if r[8] is None else bool(r[8]), r[9]) for r in found]


SEED_USAGE = [
    ("Platform", "cust_001", "API Calls", "2026-10-01", 0, "monthly", 45000.0, None, None, 1),
    ("Platform", "cust_001", "Active", "2026-10-01", 0, "monthly", None, None, True, 1),
    ("Platform", "cust_001", "MAU", "2026-10-01", 0, "monthly", 1250.0, None, None, 1),
    ("Platform", "cust_001", "Plan", "2026-10-01", 0, "monthly", None, "enterprise", None, 1),
    ("Platform", "cust_002", "API Calls", "2026-10-01", 0, "monthly", 12000.0, None, None, 1),
    ("Platform", "cust_002", "Active", "2026-10-01", 0, "monthly", None, None, True, 1),
    ("Platform", "cust_002", "MAU", "2026-10-01", 0, "monthly", 340.0, None, None, 1),
    ("Platform", "cust_002", "Plan", "2026-10-01", 0, "monthly", None, "professional", None, 1),
    ("Platform", "cust_003", "API Calls", "2026-10-01", 0, "monthly", 2100.0, None, None, 1),
    ("Platform", "cust_003", "Active", "2026-10-01", 0, "monthly", None, None, False, 1),
    ("Platform", "cust_003", "MAU", "2026-10-01", 0, "monthly", 89.0, None, None, 1),
    ("Platform", "cust_003", "Plan", "2026-10-01", 0, "monthly", None, "starter", None, 1),
]


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def test_the_statisfy_seed_example_loads_without_an_accounts_directory(
    inbox: Path, warehouse_url: str, instance
) -> None:
    drop(inbox, "product_usage/seed/usage.csv", SEED_ROWS, header=SEED_HEADER)

    report = run(config_for(inbox, warehouse_url), instance)

    [info] = [f for f in report.files if "status" in f]
    assert (info["status"], info["rows_total"], info["rows_loaded"], info["rows_rejected"]) == (
        "loaded",
        3,
        3,
        0,
    )
    assert info["unmatched_rows"] == 0
    assert stored(warehouse_url) == SEED_USAGE
    assert rows(warehouse_url, "accounts") == []
    assert rows(warehouse_url, "rejected_rows") == []
    assert not [c for c in report.failed_checks if "unmatched_accounts" in c]
    assert report.failed_runs == []


def test_account_ids_are_taken_as_they_are_even_with_a_directory(
    inbox: Path, warehouse_url: str, instance
) -> None:
    # the directory knows cust_001 under another spelling and CRM id: neither is used
    with get_engine(warehouse_url).begin() as conn:
        conn.execute(sa.insert(accounts), [{"account_id": "CUST_001", "crm_id": "cust_002"}])
    drop(
        inbox,
        "product_usage/seed/usage.csv",
        ["cust_001,5,,,", "cust_002 ,6,,,", "NEW-9,7,,,"],
        header=SEED_HEADER,
    )

    run(config_for(inbox, warehouse_url), instance)

    assert [(r[1], r[2], r[6]) for r in stored(warehouse_url)] == [
        ("NEW-9", "MAU", 7.0),
        ("cust_001", "MAU", 5.0),
        ("cust_002 ", "MAU", 6.0),  # stored exactly as given, like every other feed
    ]


def test_check_says_no_directory_is_needed(tmp_path: Path) -> None:
    config = config_for(tmp_path / "inbox", f"sqlite:///{tmp_path / 'none' / 'warehouse.db'}")
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text(yaml.safe_dump(config.to_raw()), encoding="utf-8")
    path = drop(tmp_path, "seed.csv", SEED_ROWS, header=SEED_HEADER)

    result = CliRunner().invoke(
        main,
        ["check", str(path), "--feed", "product_usage", "--import", "seed"]
        + ["--config", str(config_file)],
    )

    assert result.exit_code == 0, result.output
    month = auto_period_start(datetime.now(timezone.utc).date(), "monthly")  # check: now
    assert result.output.splitlines() == [
        f"File {path} as feed product_usage:",
        "  rows: 3 total, 3 valid, 0 invalid",
        "  column customer_id holds the account id itself (kind account_id: no accounts"
        " directory needed)",
        f"  row 2: customer_id 'cust_001' matched account cust_001 -> Platform (monthly) {month}",
        f"  row 3: customer_id 'cust_002' matched account cust_002 -> Platform (monthly) {month}",
        f"  row 4: customer_id 'cust_003' matched account cust_003 -> Platform (monthly) {month}",
        "OK: the file would be loaded.",
    ]
    assert not (tmp_path / "none").exists()
    template = CliRunner().invoke(
        main, ["template", "product_usage", "--import", "seed", "--config", str(config_file)]
    )
    assert template.output == f"{SEED_HEADER}\n"
