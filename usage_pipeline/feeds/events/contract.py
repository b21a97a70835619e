"""The ``events`` file contract: key columns, pandera schema, the per-file settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from functools import lru_cache
from typing import TYPE_CHECKING

import pandas as pd
import sqlalchemy as sa

from usage_pipeline.days import FIRST_DAY
from usage_pipeline.feed_headers import EVENT_KEY_COLUMNS
from usage_pipeline.feeds.base import FileContext
from usage_pipeline.timestamps import TIMESTAMP_KIND

if TYPE_CHECKING:  # pandera is imported where a schema is built: a run with
    import pandera.pandas as pa  # nothing to validate never pays for it

KEY_COLUMNS = EVENT_KEY_COLUMNS
KINDS = {"timestamp": TIMESTAMP_KIND}
UTC = timezone.utc
UTC_DTYPE = pd.DatetimeTZDtype("ns", "UTC")


@lru_cache(maxsize=32)
def events_schema(earliest: pd.Timestamp, latest: pd.Timestamp, floor: date) -> pa.DataFrameSchema:
    """The pandera contract of a parsed ``events`` chunk (instants within the bounds)."""
    import pandera.pandas as pa

    text = pa.Column(object, nullable=False)
    return pa.DataFrameSchema(
        {
            "identity": text,
            "event": text,
            "timestamp": pa.Column(
                UTC_DTYPE,
                nullable=False,
                checks=[
                    pa.Check(
                        lambda s: s >= earliest,
                        error=f"is before the floor date {floor.isoformat()} (events.floor_date)",
                    ),
                    pa.Check(
                        lambda s: s <= latest,
                        error="is more than 1 day after the run time"
                        f" {(latest - pd.Timedelta(days=1)).isoformat()}",
                    ),
                ],
            ),
        },
        strict=True,
        name="events",
    )


@dataclass(frozen=True)
class EventsFileSettings:
    """What :meth:`EventsFeed.load_state` fixes for one file (``FileContext.lookup``)."""

    dialect: str | None  # how occurred_at is written (storage_text); None for a dry run
    floor: date
    earliest: pd.Timestamp  # midnight of the floor date, instance zone, as UTC
    latest: pd.Timestamp  # the run's as-of time + 1 day, UTC


def file_settings(conn: sa.Connection | None, context: FileContext) -> EventsFileSettings:
    floor = max(context.config.events.floor_date, FIRST_DAY)
    earliest = pd.Timestamp(datetime.combine(floor, time(0), tzinfo=context.tz)).tz_convert(UTC)
    latest = pd.Timestamp(context.now).tz_convert(UTC) + pd.Timedelta(days=1)
    dialect = conn.dialect.name if conn is not None else None
    return EventsFileSettings(dialect, floor, earliest, latest)
