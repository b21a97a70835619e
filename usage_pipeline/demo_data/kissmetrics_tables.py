"""Demo drops of ``events`` imports of existing tables (``events/<import>/``), shaped like the
Kissmetrics examples, all on the first night:

- ``events/users/`` — a users table (``id,email,plan,created_at``): each row is one
  ``Signed Up``;
- ``events/billing/`` — a billing table (``id,user_id,amount,plan_id,type,created_at``, the
  seed's shape): ``type`` maps to ``Signed Up``/``Upgraded``/``Downgraded`` and every row is
  also ``Billed`` with its amount. A sign-up row has the user's own sign-up time, so the
  users and billing tables make one ``Signed Up`` between them; one ``refund`` row is not
  mapped (a row error);
- ``events/page_views/`` — a page-view table (``user_id,viewed_at,url``): ``Viewed
  Dashboard``, throttled to one per 30 minutes like live tracking.

Timestamps are naive ``YYYY-MM-DD HH:MM:SS`` in the instance zone, as the seed's tables.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from usage_pipeline.demo_data.common import ACCOUNTS, DemoDrop

HISTORY_DAYS = 60
USERS_PER_ACCOUNT = 3
PLANS = {1: ("Starter", 50), 2: ("Pro", 150), 3: ("Enterprise", 400)}
PAGES = ("/dashboard", "/dashboard/usage", "/dashboard/billing")

# ``events.imports`` of the demo's pipeline.yaml.
IMPORTS: dict = {
    "users": {"identity": "id", "timestamp": "created_at", "event": "Signed Up"},
    "billing": {
        "identity": "user_id",
        "timestamp": "created_at",
        "event": {
            "column": "type",
            "names": {"signup": "Signed Up", "upgrade": "Upgraded", "downgrade": "Downgraded"},
        },
        "properties": {"id": "billing_id"},
        "also": [{"event": "Billed", "properties": {"amount": "amount"}}],
    },
    "page_views": {
        "identity": "user_id",
        "timestamp": "viewed_at",
        "event": "Viewed Dashboard",
        "properties": {"url": "page"},
    },
}


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _weekday(first_night: date, rng: random.Random) -> date:
    """A weekday of the history window (business software: quiet weekends)."""
    while True:
        day = first_night - timedelta(days=rng.randint(1, HISTORY_DAYS))
        if day.weekday() < 5:
            return day


def drops(first_night: date, nights: int, tz: ZoneInfo) -> list[DemoDrop]:
    """The three table exports, dropped on ``first_night``."""
    rng = random.Random(2010)
    users, billing, views = [], [], []
    for account in ACCOUNTS:
        for n in range(1, USERS_PER_ACCOUNT + 1):
            user = f"{account.lower()}-user-{n}"
            plan = rng.choice(sorted(PLANS))
            signed_up = datetime.combine(_weekday(first_night, rng), time(9)) + timedelta(
                minutes=rng.randint(0, 480)
            )
            email = f"{user}@{account.lower()}.example"
            users.append(f"{user},{email},{PLANS[plan][0]},{_stamp(signed_up)}")
            billing.append((user, plan, "signup", signed_up))
            if rng.random() < 0.4:  # a later plan change
                other = rng.choice([p for p in PLANS if p != plan])
                change = "upgrade" if other > plan else "downgrade"
                moment = signed_up + timedelta(days=rng.randint(3, 20), hours=2)
                if moment.date() < first_night and moment.weekday() < 5:
                    billing.append((user, other, change, moment))
            days_left = (first_night - signed_up.date()).days - 1
            for _ in range(rng.randint(1, 3)):  # visits: a few views minutes apart
                moment = signed_up + timedelta(days=rng.randint(0, min(10, days_left)), hours=1)
                for _ in range(rng.randint(1, 4) if moment.weekday() < 5 else 0):
                    moment += timedelta(minutes=rng.randint(3, 40))
                    views.append(f"{user},{_stamp(moment)},{rng.choice(PAGES)}")
    refund = (billing[0][0], billing[0][1], "refund", billing[0][3] + timedelta(days=1))
    billing.append(refund)
    billing.sort(key=lambda row: row[3])
    billing_lines = [
        f"{index},{user},{PLANS[plan][1]},{plan},{kind},{_stamp(moment)}"
        for index, (user, plan, kind, moment) in enumerate(billing, start=1)
    ]
    night = first_night.isoformat()
    return [
        DemoDrop(
            first_night,
            f"events/users/users_{night}.csv",
            "\n".join(["id,email,plan,created_at", *users, ""]).encode(),
            "users table export: one Signed Up per user",
        ),
        DemoDrop(
            first_night,
            f"events/billing/billing_{night}.csv",
            "\n".join(["id,user_id,amount,plan_id,type,created_at", *billing_lines, ""]).encode(),
            "billing table export: Signed Up/Upgraded/Downgraded by type, each also Billed"
            " (1 refund row not mapped: rejected)",
        ),
        DemoDrop(
            first_night,
            f"events/page_views/page_views_{night}.csv",
            "\n".join(["user_id,viewed_at,url", *views, ""]).encode(),
            "page-view table export: Viewed Dashboard, throttled to one per 30 minutes",
        ),
    ]
