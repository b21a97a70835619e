"""What every demo feed module shares: the demo accounts and the shape of one dropped file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

ACCOUNTS = [f"ACME-{n:03d}" for n in range(1, 9)]


@dataclass(frozen=True)
class DemoDrop:
    """One file the demo drops on a given night (path relative to the inbox)."""

    night: date
    key: str
    content: bytes
    note: str
