"""Snapshot periods of product-usage imports (SPEC §2.5).

A product's snapshot period (``single``, ``daily``, ``weekly``, ``monthly``, ``quarterly``,
``yearly``) decides which ``period_start`` a value lands in:

- a row with a date is snapped to the start of the period holding that date (weeks start on
  Monday; ``single`` and ``daily`` keep the date itself);
- a row without a date takes the run's as-of date: ``single`` -> that date, every other
  period -> the start of the last *complete* period before it (daily -> the previous day,
  weekly -> Monday of the previous week, monthly -> the 1st of the previous month,
  quarterly -> the first day of the previous quarter, yearly -> 1 January of the previous
  year).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from usage_pipeline.config import SNAPSHOT_PERIODS

__all__ = ["SNAPSHOT_PERIODS", "auto_period_start", "period_start", "period_starts"]


def period_start(day: date, period: str) -> date:
    """The first day of the ``period`` holding ``day``."""
    if period in ("single", "daily"):
        return day
    if period == "weekly":
        return day - timedelta(days=day.weekday())
    if period == "monthly":
        return day.replace(day=1)
    if period == "quarterly":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if period == "yearly":
        return date(day.year, 1, 1)
    raise ValueError(f"unknown snapshot period {period!r} (known: {', '.join(SNAPSHOT_PERIODS)})")


def auto_period_start(as_of_day: date, period: str) -> date:
    """The period date of a row without a date, for a run as of ``as_of_day``."""
    if period == "single":
        return as_of_day
    current = period_start(as_of_day, period)
    return period_start(current - timedelta(days=1), period)


def period_starts(days: pd.Series, period: str) -> np.ndarray:
    """``period_start`` of each midnight datetime in ``days`` (no NaT) as ISO strings.

    Each distinct day is computed once (files repeat a few dates many times)."""
    as_int = days.to_numpy(dtype="datetime64[D]").astype("int64")
    unique, inverse = np.unique(as_int, return_inverse=True)
    epoch = date(1970, 1, 1)
    labels = np.array(
        [period_start(epoch + timedelta(days=int(d)), period).isoformat() for d in unique],
        dtype=object,
    )
    return labels[inverse]
