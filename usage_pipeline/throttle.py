"""Per-event throttle of behaviour events (SPEC §2.7), as pure functions.

For one identity and one event name, an event that happens less than ``window`` after a
*kept* event is not kept. Reading the events from the earliest on, the first one is kept,
then the first one at least ``window`` after it, and so on: an event exactly ``window``
after the last kept one **is** kept. The kept set therefore depends only on the set of
instants, never on the order in which files delivered them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta


def kept_instants(instants: Iterable[datetime], window: timedelta | None) -> list[datetime]:
    """The kept instants of one (identity, event) pair, ascending and distinct.

    ``window`` None (no throttle for this event) or not positive keeps every instant.
    """
    ordered = sorted(set(instants))
    if window is None or window <= timedelta(0):
        return ordered
    kept: list[datetime] = []
    for moment in ordered:
        if not kept or moment - kept[-1] >= window:
            kept.append(moment)
    return kept
