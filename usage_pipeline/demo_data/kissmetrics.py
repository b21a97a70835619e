"""Demo drops of the ``events`` feed (SPEC §2.7): a Kissmetrics-style export of existing
history (epoch timestamps, months back), a later re-export of the same history (other key,
other bytes: adds nothing) and a small nightly events file from live tracking. The export
spells its property columns ``Plan,Browser``, live tracking ``plan,browser``: both give the
property keys ``plan`` and ``browser``.

Identities are the demo's user ids (``acme-001-user-1`` …), of the accounts in
:mod:`usage_pipeline.demo_data.common`.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from usage_pipeline.demo_data.common import ACCOUNTS, DemoDrop
from usage_pipeline.demo_data.kissmetrics_tables import IMPORTS

HISTORY_DAYS = 60
HEADER = "identity,event,timestamp,Plan,Browser\n"
NIGHTLY_HEADER = "identity,event,timestamp,plan,browser\n"  # live tracking spells it so
PLANS = ("Starter", "Pro", "Enterprise")
BROWSERS = ("Chrome", "Firefox", "Safari", "Edge")
VIEWED = "Viewed Dashboard"
# An event before events.floor_date (2009-01-01): one rejected row of the history export.
BEFORE_FLOOR = datetime(2008, 12, 31, tzinfo=timezone.utc)

# The ``events`` section of the demo's pipeline.yaml (the imports: :mod:`.kissmetrics_tables`).
CONFIG: dict = {"throttle": {VIEWED: "30m"}, "floor_date": "2009-01-01", "imports": IMPORTS}

Event = tuple[str, str, datetime, str, str]  # identity, event, instant, plan, browser


def _plan(account: str) -> str:
    return PLANS[int(account.rsplit("-", 1)[1]) % len(PLANS)]


def _day_events(day: date, tz: ZoneInfo, rng: random.Random, sessions: int) -> list[Event]:
    """Sessions of one day: a sign-in, a burst of dashboard views (several within 30
    minutes: throttled), sometimes an export or an invitation."""

    found: list[Event] = []
    for _ in range(sessions):
        account = rng.choice(ACCOUNTS)
        identity = f"{account.lower()}-user-{rng.randint(1, 6)}"
        plan, browser = _plan(account), rng.choice(BROWSERS)
        moment = datetime.combine(day, time(8), tzinfo=tz) + timedelta(
            seconds=rng.randint(0, 12 * 3600)
        )
        found.append((identity, "Signed In", moment, plan, browser))
        for _ in range(rng.randint(1, 4)):
            moment += timedelta(minutes=rng.randint(2, 25))
            found.append((identity, VIEWED, moment, plan, browser))
        if rng.random() < 0.3:
            moment += timedelta(minutes=rng.randint(1, 10))
            found.append((identity, "Exported Report", moment, plan, browser))
        if rng.random() < 0.05:
            found.append((identity, "Invited Teammate", moment + timedelta(minutes=1), plan, ""))
    return found


def _history(first_night: date, tz: ZoneInfo) -> list[Event]:
    rng = random.Random(2009)
    found: list[Event] = []
    for back in range(HISTORY_DAYS, 0, -1):
        day = first_night - timedelta(days=back)
        if day.weekday() < 5:  # business software: quiet weekends
            found += _day_events(day, tz, rng, sessions=rng.randint(4, 9))
    return found


def _epoch_line(event: Event) -> str:
    identity, name, moment, plan, browser = event
    return f"{identity},{name},{int(moment.timestamp())},{plan},{browser}\n"


def _iso_line(event: Event, tz: ZoneInfo) -> str:
    identity, name, moment, plan, browser = event
    return f"{identity},{name},{moment.astimezone(tz).isoformat()},{plan},{browser}\n"


def _naive_line(event: Event, tz: ZoneInfo) -> str:
    identity, name, moment, plan, browser = event
    local = moment.astimezone(tz).replace(tzinfo=None).isoformat(timespec="seconds")
    return f"{identity},{name},{local},{plan},{browser}\n"


def drops(first_night: date, nights: int, tz: ZoneInfo) -> list[DemoDrop]:
    """The ``events`` files dropped over ``nights`` nights starting at ``first_night``."""

    history = _history(first_night, tz)
    bad = ("acme-001-user-1", "Signed In", BEFORE_FLOOR, _plan("ACME-001"), "Chrome")
    export = HEADER + "".join(_epoch_line(e) for e in [*history, bad])
    again = first_night + timedelta(days=min(2, nights - 1))
    reexport = HEADER + "".join(_iso_line(e, tz) for e in [bad, *reversed(history)])
    result = [
        DemoDrop(
            first_night,
            f"events/kissmetrics/kissmetrics_history_{first_night.isoformat()}.csv",
            export.encode(),
            f"Kissmetrics history export: {HISTORY_DAYS} days back, epoch timestamps"
            " (1 row before the floor date rejected)",
        ),
        DemoDrop(
            again,
            f"events/kissmetrics/reexport/kissmetrics_history_{again.isoformat()}.csv",
            reexport.encode(),
            "the same history re-exported (ISO timestamps, rows reversed): adds nothing",
        ),
    ]
    for index in range(nights):
        night = first_night + timedelta(days=index)
        rng = random.Random(1000 + index)
        tonight = _day_events(night, tz, rng, sessions=8)
        body = NIGHTLY_HEADER + "".join(_naive_line(e, tz) for e in tonight)
        result.append(
            DemoDrop(
                night,
                f"events/{night:%Y/%m}/events_{night.isoformat()}.csv",
                body.encode(),
                "nightly behaviour events (throttled dashboard views)",
            )
        )
    return result
