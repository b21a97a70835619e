"""Day assignment (SPEC §2): which instance-zone day a row belongs to."""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

# The earliest day a row may carry; also the first daily partition.
FIRST_DAY = date(2009, 1, 1)

_NAME_DATE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")
# An offset only counts after a time of day ("2026-11-20" ends in "-20" but has none).
_HAS_OFFSET = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
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


def parse_timestamp_days(values: pd.Series, tz: ZoneInfo) -> pd.Series:
    """Map timestamp strings to their instance-zone day (midnight datetimes, NaT when invalid).

    Timestamps with an offset (or ``Z``) are converted to the zone; naive ones are read in
    the zone, so their calendar date is their day whatever the DST rules say. Each distinct
    string is parsed once (drops repeat timestamps a lot).
    """
    codes, uniques = pd.factorize(values)
    days = _parse_unique_timestamp_days(pd.Series(uniques, dtype=object), tz).to_numpy()
    result = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    present = codes >= 0
    result[present] = days[codes[present]]
    return pd.Series(result, index=values.index)


def _parse_unique_timestamp_days(values: pd.Series, tz: ZoneInfo) -> pd.Series:
    text = values.astype("string").str.strip()
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    with_offset = text.str.contains(_HAS_OFFSET, regex=True, na=False)
    if with_offset.any():
        parsed = pd.to_datetime(text[with_offset], format="ISO8601", utc=True, errors="coerce")
        result[with_offset] = parsed.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    naive = ~with_offset & text.notna()
    if naive.any():
        parsed = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        result[naive] = parsed.dt.normalize()
    return result


def iso_days(days: pd.Series) -> np.ndarray:
    """Format midnight datetimes as ``YYYY-MM-DD`` strings fast (few distinct days)."""
    as_int = days.to_numpy(dtype="datetime64[D]").astype("int64")
    unique, inverse = np.unique(as_int, return_inverse=True)
    labels = np.array([str(np.datetime64(int(d), "D")) for d in unique], dtype=object)
    return labels[inverse]
