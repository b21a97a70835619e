"""Demo drops of the Totango feeds (SPEC §2.2-§2.4):

- ``accounts/``: the account directory on the first night (ACME-001 … ACME-008, as in
  :mod:`usage_pipeline.demo_data.common`, with a three-level hierarchy), then an update
  (ACME-002 renamed, a new account ACME-009 under it) — the latest file wins per account;
- ``account_attributes/``: plan, CSM and region every night (dated); ACME-003 upgrades to
  Enterprise on the third night; a late file for the second night says ACME-005 was on
  Basic, and its corrected re-drop (same key, new bytes) says Pro after all, so the history
  splits and then heals;
- ``account_usage/``: aggregated ``<Module>##<Activity>`` counts every other night (the
  first one a backfill with a ``date`` column), with a ``health`` attribute, and one bad
  file rejected for invalid counts.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from usage_pipeline.demo_data.common import ACCOUNTS, DemoDrop

NAMES = ("Robotics", "Analytics", "Logistics", "Health", "Foods", "Energy", "Media", "Labs")
PLANS = ("Starter", "Pro", "Pro", "Pro", "Pro", "Starter", "Enterprise", "Pro")
CSMS = ("Jane Doe", "Omar Haddad", "Li Wei", "Maria Garcia")
REGIONS = ("EMEA", "NA", "APAC")
ITEMS = (
    "Reports##view_report",
    "Reports##export_csv",
    "Dashboards##view_dashboard",
    "Admin##login",
)
USAGE_HEADER = "account_id,date," + ",".join(ITEMS) + ",health\n"


def _number(account: str) -> int:
    return int(account.rsplit("-", 1)[1])


# The demo's hierarchy: ACME-001 is the group over ACME-002 and ACME-003, ACME-003 over
# ACME-004 (three levels); the directory update adds ACME-009 under ACME-002.
PARENTS = {"ACME-002": "ACME-001", "ACME-003": "ACME-001", "ACME-004": "ACME-003"}
DIRECTORY_HEADER = "account_id,crm_id,domain,name,parent_account_id\n"


def _directory_row(
    account: str, domain: str | None = None, suffix: str = "", parent: str | None = None
) -> str:
    n = _number(account)
    domain = domain or f"acme-{n:03d}.example.com"
    parent = parent or PARENTS.get(account, "")
    name = f"Acme {NAMES[(n - 1) % len(NAMES)]}{suffix}"
    return f"{account},CRM-{1000 + n},{domain},{name},{parent}\n"


def _attributes(plans: dict[str, str], accounts: list[str], day: date) -> bytes:
    """A dated snapshot (the date also keeps unchanged nights from being byte-identical,
    which the pipeline would hold back as duplicates)."""
    lines = ["account_id,date,plan,csm,region\n"]
    for account in accounts:
        n = _number(account)
        csm, region = CSMS[n % len(CSMS)], REGIONS[n % len(REGIONS)]
        lines.append(f"{account},{day.isoformat()},{plans[account]},{csm},{region}\n")
    return "".join(lines).encode()


def _usage(days: list[date], rng: random.Random, with_date: bool) -> bytes:
    lines = [USAGE_HEADER if with_date else USAGE_HEADER.replace("date,", "", 1)]
    for day in days:
        for account in ACCOUNTS:
            counts = [
                "" if rng.random() < 0.1 else str(rng.randint(0, 40)) for _ in ITEMS
            ]  # blank = not reported, 0 = a real zero
            health = "At risk" if rng.random() < 0.2 else "Good"
            cells = [account, *([day.isoformat()] if with_date else []), *counts, health]
            lines.append(",".join(cells) + "\n")
    return "".join(lines).encode()


def drops(first_night: date, nights: int, tz: ZoneInfo) -> list[DemoDrop]:
    """The Totango files dropped over ``nights`` nights (at least 2) from ``first_night``."""
    rng = random.Random(2024)
    night = [first_night + timedelta(days=i) for i in range(nights)]
    found: list[DemoDrop] = [
        DemoDrop(
            night[0],
            f"accounts/accounts_{night[0].isoformat()}.csv",
            (DIRECTORY_HEADER + "".join(map(_directory_row, ACCOUNTS))).encode(),
            "account directory: ACME-001..008 (ACME-001 > 002, 003 > 004)",
        )
    ]
    update = night[min(3, nights - 1)]
    found.append(
        DemoDrop(
            update,
            f"accounts/accounts_{update.isoformat()}.csv",
            (
                DIRECTORY_HEADER
                # renamed; its domain pasted as a URL (stored as given, matched normalised)
                + _directory_row("ACME-002", "https://www.acme-002.example.com/", " Group")
                + _directory_row("ACME-009", parent="ACME-002")
            ).encode(),
            "directory update: ACME-002 renamed, new ACME-009 under it (latest file wins)",
        )
    )

    plans = {account: PLANS[i] for i, account in enumerate(ACCOUNTS)}
    for index, day in enumerate(night):
        if index == 2:
            plans["ACME-003"] = "Enterprise"
        found.append(
            DemoDrop(
                day,
                f"account_attributes/{day:%Y/%m}/attributes_{day.isoformat()}.csv",
                _attributes(plans, list(ACCOUNTS), day),
                "nightly attributes" + (" (ACME-003 upgrades to Enterprise)" if index == 2 else ""),
            )
        )
    if nights >= 3:  # on the third night, a late file about the second
        late_key = f"account_attributes/late/attributes_{night[1].isoformat()}_late.csv"
        wrong = {**plans, "ACME-005": "Basic"}
        found.append(
            DemoDrop(
                night[2],
                late_key,
                _attributes(wrong, ["ACME-005"], night[1]),
                f"late file for {night[1]}: ACME-005 on Basic (history splits)",
            )
        )
        if nights >= 4:
            found.append(
                DemoDrop(
                    night[-1],
                    late_key,
                    f"account_id,date,plan\nACME-005,{night[1].isoformat()},Pro\n".encode(),
                    "corrected re-drop of the late file: ACME-005 was on Pro (history heals)",
                )
            )

    for index, day in enumerate(night):
        if index == 0:
            backfill = [day - timedelta(days=2), day - timedelta(days=1), day]
            found.append(
                DemoDrop(
                    day,
                    f"account_usage/account_usage_{day.isoformat()}.csv",
                    _usage(backfill, rng, with_date=True),
                    "aggregated account usage, backfilling two days (date column)",
                )
            )
        elif index % 2 == 0:
            found.append(
                DemoDrop(
                    day,
                    f"account_usage/account_usage_{day.isoformat()}.csv",
                    _usage([day], rng, with_date=False),
                    "aggregated account usage (<Module>##<Activity> counts)",
                )
            )
    found.append(
        DemoDrop(
            night[1],
            f"account_usage/account_usage_{night[1].isoformat()}_bad.csv",
            (
                USAGE_HEADER.replace("date,", "", 1)
                + "ACME-001,12,N/A,3,1,Good\nACME-002,-4,0,0,2,Good\nACME-003,5,1,0,2,Good\n"
            ).encode(),
            "rejected: 2 of 3 rows have invalid counts, above max_reject_ratio",
        )
    )
    return found
