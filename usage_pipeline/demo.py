"""A realistic sample inbox: several nightly ``user_activity`` drops, including two drops on
one night, a corrected re-drop, a stale duplicate, a few bad files, and the rejects file of
one of them fixed and dropped back."""

from __future__ import annotations

import gzip
import os
import random
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from usage_pipeline.demo_data import kissmetrics, kissmetrics_tables, solvimon, statisfy, totango
from usage_pipeline.demo_data.common import ACCOUNTS, DemoDrop

__all__ = ["ACCOUNTS", "DemoDrop", "all_demo_drops", "demo_drops", "play_demo"]

HEADER = "account_id,user_id,module,activity,count,timestamp\n"
MODULES = {
    "Reports": ["view_report", "export_csv", "schedule_report"],
    "Dashboards": ["view_dashboard", "share_dashboard"],
    "Admin": ["login", "invite_user"],
    "Billing": ["view_invoice"],
}


def _activity_rows(night: date, tz: ZoneInfo, seed: int, rows: int) -> str:
    rng = random.Random(seed)
    lines = []
    for _ in range(rows):
        account = rng.choice(ACCOUNTS)
        user = f"{account.lower()}-user-{rng.randint(1, 6)}"
        module = rng.choice(sorted(MODULES))
        activity = rng.choice(MODULES[module])
        moment = datetime.combine(night, time(8), tzinfo=tz) + timedelta(
            seconds=rng.randint(0, 14 * 3600)
        )
        lines.append(
            f"{account},{user},{module},{activity},{rng.randint(1, 20)},"
            f"{moment.isoformat(timespec='seconds')}\n"
        )
    return "".join(lines)


def demo_drops(first_night: date, nights: int, tz: ZoneInfo) -> list[DemoDrop]:
    """The files dropped over ``nights`` nights starting at ``first_night``."""
    drops: list[DemoDrop] = []
    for index in range(nights):
        night = first_night + timedelta(days=index)
        name = f"user_activity/{night:%Y/%m}/usage_{night.isoformat()}.csv"
        body = HEADER + _activity_rows(night, tz, seed=index, rows=120)
        drops.append(DemoDrop(night, name, body.encode(), "nightly drop"))
    last = first_night + timedelta(days=nights - 1)
    second = first_night + timedelta(days=1)
    drops += [
        DemoDrop(
            second,
            f"user_activity/{second:%Y/%m}/usage_{second.isoformat()}_eu.csv.gz",
            gzip.compress((HEADER + _activity_rows(second, tz, 99, 40)).encode()),
            "second drop the same night (summed), gzip",
        ),
        DemoDrop(
            second,
            f"user_activity/{second:%Y/%m}/usage_{second.isoformat()}_bad.csv",
            (
                HEADER + "ACME-001,acme-001-user-1,Reports,view_report,-4,\n"
                "ACME-002,acme-002-user-2,Reports,view_report,N/A,\n"
                + _activity_rows(second, tz, 7, 3)
            ).encode(),
            "rejected: 2 of 5 rows invalid, above max_reject_ratio",
        ),
        DemoDrop(
            last,
            f"user_activity/usage_{last.isoformat()}_missing_count.csv",
            b"account_id,user_id,module,activity\nACME-001,u1,Reports,view_report\n",
            "rejected: required column count missing",
        ),
        DemoDrop(
            last,
            f"user_activity/usage_{last.isoformat()}_garbage.csv.gz",
            b"\x1f\x8b\x08\x00truncated",
            "rejected: truncated gzip",
        ),
    ]
    bad = next(d for d in drops if d.key.endswith("_bad.csv"))
    drops.append(
        DemoDrop(
            min(second + timedelta(days=1), last),
            f"{bad.key}.rejects.csv",
            bad.content.replace(b",-4,", b",4,").replace(b",N/A,", b",3,"),
            "the quarantined rejects file of the bad drop, counts fixed, dropped back: loads",
        )
    )
    corrected = first_night + timedelta(days=min(2, nights - 2))
    drops.append(
        DemoDrop(
            last,
            f"user_activity/{corrected:%Y/%m}/usage_{corrected.isoformat()}.csv",
            (HEADER + _activity_rows(corrected, tz, seed=2, rows=100)).encode(),
            f"corrected re-drop of {corrected} (same key, new bytes: replaces it)",
        )
    )
    stale = next(d for d in drops if d.night == first_night)
    drops.append(
        DemoDrop(
            last,
            f"user_activity/reexport/usage_{first_night.isoformat()}_copy.csv",
            stale.content,
            "stale re-export of the first night (duplicate)",
        )
    )
    return drops


def all_demo_drops(first_night: date, nights: int, tz: ZoneInfo) -> list[DemoDrop]:
    """Every feed's demo files: user activity plus the Totango, Statisfy, Solvimon and
    Kissmetrics style feeds (their configuration is in data/pipeline.yaml)."""
    drops = demo_drops(first_night, nights, tz)
    for module in (totango, statisfy, solvimon, kissmetrics, kissmetrics_tables):
        drops += module.drops(first_night, nights, tz)
    return drops


def play_demo(
    inbox: Path,
    tz: ZoneInfo,
    today: date,
    nights: int,
    run_night: Callable[[date, datetime, list[DemoDrop]], None],
) -> None:
    """Drop each night's files at 23:00 and call ``run_night`` the next morning at 01:30."""
    first = today - timedelta(days=nights)
    drops = all_demo_drops(first, nights, tz)
    for index in range(nights):
        night = first + timedelta(days=index)
        tonight = [d for d in drops if d.night == night]
        dropped_at = datetime.combine(night, time(23), tzinfo=tz).timestamp()
        for drop in tonight:
            path = inbox / drop.key
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_bytes() != drop.content:
                path.write_bytes(drop.content)
                os.utime(path, (dropped_at, dropped_at))
        morning = datetime.combine(night + timedelta(days=1), time(1, 30), tzinfo=tz)
        run_night(night, morning, tonight)
