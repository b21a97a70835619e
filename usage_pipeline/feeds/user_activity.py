"""``user_activity``: Totango user-level usage (SPEC §2.1)."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from usage_pipeline.days import FIRST_DAY, iso_days, parse_dates
from usage_pipeline.feed_headers import USER_ACTIVITY_OPTIONAL, USER_ACTIVITY_REQUIRED
from usage_pipeline.feeds.base import ChunkResult, Feed, FileContext
from usage_pipeline.feeds.validation import validate
from usage_pipeline.timestamps import TIMESTAMP_KIND, parse_days
from usage_pipeline.warehouse.tables import user_activity_contributions

if TYPE_CHECKING:  # pandera is imported where a schema is built: a run with
    import pandera.pandas as pa  # nothing to validate never pays for it


ID_COLUMNS = ("account_id", "user_id", "module", "activity")
MAX_COUNT = 2**53 - 1  # every whole number up to here is exact in float64


def _whole(values: pd.Series) -> pd.Series:
    return values == np.floor(values)


def _where_given(values: pd.Series, cells: pd.Series, otherwise: pd.Series) -> pd.Series:
    """``values`` where ``cells`` is not empty, else ``otherwise`` (often every cell is
    given: then ``values`` as they are)."""
    given = cells.notna()
    return values if given.all() else values.where(given, otherwise)


@lru_cache(maxsize=64)
def user_activity_schema(first_day: pd.Timestamp, last_day: pd.Timestamp) -> pa.DataFrameSchema:
    """The pandera contract of a parsed ``user_activity`` chunk (days within the bounds)."""
    import pandera.pandas as pa

    identifier = pa.Column(object, nullable=False)
    day_range = pa.Check(
        lambda s: (s >= first_day) & (s <= last_day),
        error=f"is outside the accepted days {first_day.date()} to {last_day.date()}",
    )
    day = pa.Column("datetime64[ns]", nullable=False, required=False, checks=[day_range])
    return pa.DataFrameSchema(
        {
            **{name: identifier for name in ID_COLUMNS},
            "count": pa.Column(
                float,
                nullable=False,
                checks=[
                    pa.Check(lambda s: s >= 0, error="is negative"),
                    pa.Check(_whole, error="is not a whole number"),
                    pa.Check(lambda s: s <= MAX_COUNT, error="is too large"),
                ],
            ),
            "date": day,
            "timestamp": day,
        },
        strict=True,
        name="user_activity",
    )


def _last_day(context: FileContext) -> pd.Timestamp:
    """The last accepted day (before the drop day's, when that is later): the day after
    the file was received, in the instance zone."""
    return pd.Timestamp(context.received_at.astimezone(context.tz).date() + timedelta(days=1))


class UserActivityFeed(Feed[None]):
    """Rows summed per (day, account, user, module, activity); invalid rows rejected singly."""

    name = "user_activity"
    required_columns = USER_ACTIVITY_REQUIRED
    optional_columns = USER_ACTIVITY_OPTIONAL
    target = user_activity_contributions
    day_column = "activity_date"
    kinds = {
        "count": "a number",
        "date": "a YYYY-MM-DD date",
        "timestamp": TIMESTAMP_KIND,
    }

    def batch_key(self, context: FileContext) -> Hashable:
        return (context.drop_day, _last_day(context), context.tz)

    def process_chunk(self, raw: pd.DataFrame, context: FileContext) -> ChunkResult:
        fallback = pd.Timestamp(context.drop_day)
        parsed = raw.loc[:, [c for c in ID_COLUMNS]].copy()
        # float64 always, so pandera checks whole columns (an int64 column would fail the
        # dtype check and fall back to slow per-element checks)
        parsed["count"] = pd.to_numeric(raw["count"], errors="coerce").astype("float64")
        # A row's day: its timestamp, else its date, else the drop day (empty cells only;
        # a cell that does not parse is NaT, a row error).
        day = pd.Series(fallback, index=raw.index, dtype="datetime64[ns]")
        if "date" in raw.columns:
            day = _where_given(parse_dates(raw["date"]), raw["date"], day)
            parsed["date"] = day
        if "timestamp" in raw.columns:
            day = _where_given(parse_days(raw["timestamp"], context.tz), raw["timestamp"], day)
            parsed["timestamp"] = day
        schema = user_activity_schema(pd.Timestamp(FIRST_DAY), max(_last_day(context), fallback))
        valid, errors, tally = validate(parsed, raw, schema, self.kinds)
        good = parsed[valid.to_numpy()]
        rows = pd.DataFrame(
            {
                "row_number": good.index.to_numpy(dtype="int64"),
                "activity_date": iso_days(day[valid.to_numpy()]),
                **{name: good[name].to_numpy() for name in ID_COLUMNS},
                "count": good["count"].to_numpy().astype("int64"),
            }
        )
        return ChunkResult(rows=rows, errors=errors, failures=tally)


USER_ACTIVITY = UserActivityFeed()
