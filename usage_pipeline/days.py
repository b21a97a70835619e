"""Day assignment (SPEC §2): which instance-zone day a row belongs to."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

# The earliest day a row may carry; also the first daily partition.
FIRST_DAY = date(2009, 1, 1)

_NAME_DATE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"


def drop_date(file_name: str, last_modified: datetime, tz: ZoneInfo) -> date:
    """The file's drop date: a ``YYYY-MM-DD`` / ``YYYYMMDD`` in its name, else its
    last-modified time in the instance zone."""
    for match in _NAME_DATE.finditer(file_name):
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            continue
    return last_modified.astimezone(tz).date()


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    """The instance-zone day of an aware datetime."""
    return moment.astimezone(tz).date()


def parse_dates(values: pd.Series) -> pd.Series:
    """Parse ``YYYY-MM-DD`` strings to midnight datetimes (NaT when invalid or missing)."""
    text = values.astype("string").str.strip()
    well_formed = text.str.match(_ISO_DATE, na=False)
    return pd.to_datetime(text.where(well_formed), format="%Y-%m-%d", errors="coerce")


def iso_days(days: pd.Series) -> np.ndarray:
    """Format midnight datetimes as ``YYYY-MM-DD`` strings fast (few distinct days)."""
    as_int = days.to_numpy(dtype="datetime64[D]").astype("int64")
    unique, inverse = np.unique(as_int, return_inverse=True)
    labels = np.array([str(np.datetime64(int(d), "D")) for d in unique], dtype=object)
    return labels[inverse]


def day_spans(days: list[date]) -> str:
    """``2026-11-01..2026-11-05, 2026-11-09``: sorted days written as runs of consecutive
    days (for reports and metadata)."""
    spans: list[list[date]] = []
    for day in sorted(set(days)):
        if spans and spans[-1][-1] + timedelta(days=1) == day:
            spans[-1].append(day)
        else:
            spans.append([day])
    return ", ".join(
        s[0].isoformat() if len(s) == 1 else f"{s[0].isoformat()}..{s[-1].isoformat()}"
        for s in spans
    )


def as_date(value: date | str) -> date:
    """A ``date`` from a date or its ISO text (SQLite returns days as text)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))
