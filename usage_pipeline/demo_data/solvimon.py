"""Demo drops of the ``usage_events`` feed (SPEC §2.6): Solvimon-style usage file uploads.

- a nightly export of billable events of the demo customers (``ACME-001`` …): API requests
  (``api_calls``) and a nightly storage reading (``storage_gb``, decimals), each event with
  one meter left blank (missing, not zero); some customers have no subscription_ref. The
  second night's exporter writes epoch-second timestamps.
- a partner's file one night without a timestamp column: its events take the file's receipt
  time (the drop at 23:00).
- a re-sent export of the first night on the last one (other key, other bytes): every
  event_ref is known, so it adds nothing and its rows are counted as duplicates, also when
  their billing period has become final meanwhile.
- a strict rejection: one row has ``api_calls`` = ``12O`` (a letter O), so the whole file is
  rejected and nothing of it is loaded, with every problem in its errors.csv.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from usage_pipeline.demo_data.common import ACCOUNTS, DemoDrop

# The ``usage_events`` section of the demo's pipeline.yaml.
CONFIG: dict = {
    "meters": ["api_calls", "storage_gb"],
    "properties": ["region", "plan"],
    "grace_hours": 8,
    "on_hold": [],
}

HEADER = (
    "customer_ref,subscription_ref,event_ref,timestamp,event,api_calls,storage_gb,region,plan\n"
)
PLANS = ("starter", "growth", "enterprise")
REGIONS = ("eu-west-1", "us-east-1")
RESENT_ROWS = 12

Event = tuple[str, str, str, datetime, str, str, str, str, str]


def _customer(account: str) -> tuple[str, str, str]:
    """(subscription_ref or '', region, plan) of a demo customer."""
    number = int(account.rsplit("-", 1)[1])
    plan = PLANS[number % len(PLANS)]
    subscription = "" if number % 4 == 0 else f"SUB-{number:03d}-{plan.upper()}"
    return subscription, REGIONS[number % len(REGIONS)], plan


def _events(night: date, tz: ZoneInfo, seed: int, requests: int, prefix: str) -> list[Event]:
    """API-request events during the day, then one storage reading per customer at 21:00."""
    rng = random.Random(seed)
    found: list[Event] = []
    start = datetime.combine(night, time(8), tzinfo=tz)
    for index in range(requests):
        account = rng.choice(ACCOUNTS)
        subscription, region, plan = _customer(account)
        moment = start + timedelta(seconds=rng.randint(0, 12 * 3600))
        calls = str(rng.randint(1, 500))
        ref = f"{prefix}-{night:%Y%m%d}-{index:04d}"
        found.append((account, subscription, ref, moment, "api_request", calls, "", region, plan))
    for index, account in enumerate(ACCOUNTS):
        subscription, region, plan = _customer(account)
        moment = datetime.combine(night, time(21), tzinfo=tz)
        gigabytes = f"{rng.uniform(5, 250):.2f}"
        ref = f"{prefix}-{night:%Y%m%d}-storage-{index:02d}"
        found.append(
            (account, subscription, ref, moment, "storage_snapshot", "", gigabytes, region, plan)
        )
    found.sort(key=lambda e: (e[3], e[2]))
    return found


def _line(event: Event, tz: ZoneInfo, epoch: bool = False, stamp: bool = True) -> str:
    customer, subscription, ref, moment, name, calls, gigabytes, region, plan = event
    cells = [customer, subscription, ref]
    if stamp:
        cells.append(str(int(moment.timestamp())) if epoch else moment.astimezone(tz).isoformat())
    cells += [name, calls, gigabytes, region, plan]
    return ",".join(cells) + "\n"


def _file(events: list[Event], tz: ZoneInfo, epoch: bool = False) -> bytes:
    return (HEADER + "".join(_line(e, tz, epoch) for e in events)).encode()


def drops(first_night: date, nights: int, tz: ZoneInfo) -> list[DemoDrop]:
    """The ``usage_events`` files dropped over ``nights`` nights from ``first_night``."""
    nightly = [first_night + timedelta(days=i) for i in range(max(nights, 1))]
    found: list[DemoDrop] = []
    events: dict[date, list[Event]] = {}
    for index, night in enumerate(nightly):
        events[night] = _events(night, tz, seed=500 + index, requests=40, prefix="evt")
        epoch = index == 1
        found.append(
            DemoDrop(
                night,
                f"usage_events/{night:%Y/%m}/solvimon_usage_{night.isoformat()}.csv",
                _file(events[night], tz, epoch=epoch),
                "nightly usage events" + (" (epoch-second timestamps)" if epoch else ""),
            )
        )
    partner_night = nightly[min(2, len(nightly) - 1)]
    partner = _events(partner_night, tz, seed=77, requests=6, prefix="partner")[:6]
    header = HEADER.replace("timestamp,", "")
    found.append(
        DemoDrop(
            partner_night,
            f"usage_events/partner/partner_usage_{partner_night.isoformat()}.csv",
            (header + "".join(_line(e, tz, stamp=False) for e in partner)).encode(),
            "partner file without timestamps: events take the receipt time (23:00 drop)",
        )
    )
    original, resend_night = nightly[0], nightly[-1]
    resent = list(reversed(events[original][:RESENT_ROWS]))
    found.append(
        DemoDrop(
            resend_night,
            f"usage_events/resend/solvimon_usage_{original.isoformat()}_resent.csv",
            _file(resent, tz),
            f"re-sent export of {original}: {len(resent)} known event_refs, skipped as"
            " duplicates (adds nothing, also in a final billing period)",
        )
    )
    bad_night = nightly[min(1, len(nightly) - 1)]
    bad = _events(bad_night, tz, seed=13, requests=7, prefix="late")[:7]
    customer, subscription, ref, moment, name, _, gigabytes, region, plan = bad[3]
    bad[3] = (customer, subscription, ref, moment, "api_request", "12O", "", region, plan)
    found.append(
        DemoDrop(
            bad_night,
            f"usage_events/{bad_night:%Y/%m}/solvimon_usage_{bad_night.isoformat()}_late.csv",
            _file(bad, tz),
            "rejected (strict): row 5 has api_calls '12O'; nothing of the file is loaded",
        )
    )
    return found
