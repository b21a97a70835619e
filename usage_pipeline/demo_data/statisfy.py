"""Demo drops of the ``product_usage`` feed (SPEC §2.5): Statisfy-style product-usage imports.

- ``product_usage/crm_export/`` — a nightly CRM export keyed by CRM id (the accounts demo
  gives ACME-001…ACME-008 the CRM ids CRM-1001…CRM-1008), without a date column: one CSV
  feeds two products, ``Platform`` (monthly: the nightly values overwrite the month's) and
  ``Analytics`` (daily: the previous day). One row is a trial account the directory does not
  know (CRM-9999): reported unmatched, not loaded, the ``unmatched_accounts`` check fails.
- ``product_usage/health_scores/`` — a weekly health-score sheet keyed by website (messy
  URLs, matched by domain) with a ``week_of`` date column; ``Customer Health`` keeps every
  row as history (two check-ins in one week are both kept, seq 0 and 1).
- ``product_usage/seed_usage/`` — Statisfy's own example layout
  (``customer_id,mau,api_calls,plan_type,is_active``) keyed by ``account_id``: the
  identifier is the account id as it is, no accounts directory needed (``Developer API``,
  monthly).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from usage_pipeline.demo_data.common import ACCOUNTS, DemoDrop

CRM_HEADER = "customer_id,mau,seats_used,plan_type,sso_enabled,dashboards_viewed\n"
HEALTH_HEADER = "Website,Week_Of,Health_Score,CSM_Note\n"
SEED_HEADER = "customer_id,mau,api_calls,plan_type,is_active\n"
PLANS = ("Starter", "Pro", "Enterprise")
UNKNOWN_CRM_ID = "CRM-9999"  # a trial account the accounts directory does not know
NOTES = ("Renewal call booked", "Champion left", "Expansion interest", "Quiet month", "")

# The ``products`` and ``imports`` sections of the demo's pipeline.yaml.
CONFIG: dict = {
    "products": {
        "Platform": {"snapshot_period": "monthly", "allow_multiple_rows_per_customer": False},
        "Analytics": {"snapshot_period": "daily", "allow_multiple_rows_per_customer": False},
        "Customer Health": {
            "snapshot_period": "weekly",
            "allow_multiple_rows_per_customer": True,
        },
        "Developer API": {"snapshot_period": "monthly", "allow_multiple_rows_per_customer": False},
    },
    "imports": {
        "crm_export": {
            "identifier": {"column": "customer_id", "kind": "crm_id"},
            "date_column": None,
            "mappings": [
                {
                    "column": "mau",
                    "product": "Platform",
                    "dimension": "Monthly Active Users",
                    "type": "numeric",
                },
                {
                    "column": "seats_used",
                    "product": "Platform",
                    "dimension": "Seats Used",
                    "type": "numeric",
                },
                {
                    "column": "plan_type",
                    "product": "Platform",
                    "dimension": "Subscription Plan",
                    "type": "text",
                },
                {
                    "column": "sso_enabled",
                    "product": "Platform",
                    "dimension": "SSO Enabled",
                    "type": "boolean",
                },
                {
                    "column": "dashboards_viewed",
                    "product": "Analytics",
                    "dimension": "Dashboards Viewed",
                    "type": "numeric",
                },
            ],
        },
        "health_scores": {
            "identifier": {"column": "website", "kind": "domain"},
            "date_column": "week_of",
            "mappings": [
                {
                    "column": "health_score",
                    "product": "Customer Health",
                    "dimension": "Health Score",
                    "type": "numeric",
                },
                {
                    "column": "csm_note",
                    "product": "Customer Health",
                    "dimension": "CSM Note",
                    "type": "text",
                },
            ],
        },
        "seed_usage": {
            "identifier": {"column": "customer_id", "kind": "account_id"},
            "date_column": None,
            "mappings": [
                {
                    "column": "mau",
                    "product": "Developer API",
                    "dimension": "Monthly Active Users",
                    "type": "numeric",
                },
                {
                    "column": "api_calls",
                    "product": "Developer API",
                    "dimension": "API Calls",
                    "type": "numeric",
                },
                {
                    "column": "plan_type",
                    "product": "Developer API",
                    "dimension": "Plan",
                    "type": "text",
                },
                {
                    "column": "is_active",
                    "product": "Developer API",
                    "dimension": "Active",
                    "type": "boolean",
                },
            ],
        },
    },
}


def crm_id(account: str) -> str:
    """ACME-003 -> CRM-1003 (the accounts demo's CRM ids)."""
    return f"CRM-{1000 + int(account.rsplit('-', 1)[1])}"


def website(account: str, style: int) -> str:
    """The account's domain written the ways people paste it into a sheet."""
    domain = f"{account.lower()}.example.com"
    return (
        domain,
        f"https://www.{domain}/",
        f"http://{domain.upper()}/login?next=home",
        f"www.{domain}",
    )[style % 4]


def _crm_export(night: date, seed: int) -> str:
    rng = random.Random(seed)
    lines = []
    for number, account in enumerate(ACCOUNTS, start=1):
        seats = 10 * number + rng.randint(0, 9)
        mau = rng.randint(seats // 2, seats)
        sso = ("yes", "no", "TRUE", "false", "1", "0")[(number + seed) % 6]
        viewed = "" if number == 5 else str(rng.randint(0, 40))  # blank: missing, not zero
        plan = PLANS[number % len(PLANS)]
        lines.append(f"{crm_id(account)},{mau},{seats},{plan},{sso},{viewed}\n")
    lines.append(f"{UNKNOWN_CRM_ID},12,15,Trial,no,3\n")
    return CRM_HEADER + "".join(lines)


def _health_scores(last_night: date, seed: int) -> str:
    rng = random.Random(seed)
    lines = []
    last_monday = last_night - timedelta(days=last_night.weekday())
    for weeks_back in (2, 1, 0):
        monday = last_monday - timedelta(weeks=weeks_back)
        for number, account in enumerate(ACCOUNTS, start=1):
            day = monday + timedelta(days=rng.randint(0, 4))  # any weekday: snapped to Monday
            if day > last_night:
                day = monday
            note = NOTES[(number + weeks_back) % len(NOTES)]
            score = rng.randint(35, 95)
            lines.append(f"{website(account, number + weeks_back)},{day},{score},{note}\n")
    # a second check-in the same week for one account: kept as history (seq 1)
    lines.append(f"{website(ACCOUNTS[0], 1)},{last_monday},{rng.randint(35, 95)},Follow-up\n")
    return HEALTH_HEADER + "".join(lines)


def _seed_usage(seed: int) -> str:
    rng = random.Random(seed)
    lines = []
    for number, account in enumerate(ACCOUNTS[:3], start=1):
        mau = rng.randint(50, 1500)
        active = "false" if number == 3 else "true"
        plan = ("enterprise", "professional", "starter")[number - 1]
        lines.append(f"{account},{mau},{mau * rng.randint(20, 40)},{plan},{active}\n")
    return SEED_HEADER + "".join(lines)


def drops(first_night: date, nights: int, tz: ZoneInfo) -> list[DemoDrop]:
    """The product-usage files dropped over ``nights`` nights starting at ``first_night``."""
    found = []
    for index in range(nights):
        night = first_night + timedelta(days=index)
        note = "nightly CRM export: Platform (monthly) + Analytics (daily), 1 unmatched row"
        found.append(
            DemoDrop(
                night,
                f"product_usage/crm_export/{night:%Y/%m}/crm_export_{night.isoformat()}.csv",
                _crm_export(night, seed=index).encode(),
                note,
            )
        )
    last = first_night + timedelta(days=nights - 1)
    second = first_night + timedelta(days=min(1, nights - 1))
    found.append(
        DemoDrop(
            second,
            f"product_usage/seed_usage/seed_usage_{second.isoformat()}.csv",
            _seed_usage(seed=nights).encode(),
            "Statisfy's example layout keyed by account_id: 12 values, no directory needed",
        )
    )
    found.append(
        DemoDrop(
            last,
            f"product_usage/health_scores/health_scores_{last.isoformat()}.csv",
            _health_scores(last, seed=nights).encode(),
            "weekly health scores by website (domain matching), kept as history",
        )
    )
    return found
