"""The ``events`` file contract: key columns, pandera schemas (plain files and imports), the
per-file settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from functools import lru_cache
from typing import TYPE_CHECKING

import pandas as pd
import sqlalchemy as sa

from usage_pipeline.config import EventImportConfig
from usage_pipeline.days import FIRST_DAY
from usage_pipeline.feed_headers import EVENT_KEY_COLUMNS
from usage_pipeline.feeds.base import FileContext
from usage_pipeline.timestamps import TIMESTAMP_KIND
from usage_pipeline.wording import name_list

if TYPE_CHECKING:  # pandera is imported where a schema is built: a run with
    import pandera.pandas as pa  # nothing to validate never pays for it

KEY_COLUMNS = EVENT_KEY_COLUMNS
KINDS = {"timestamp": TIMESTAMP_KIND}
UTC = timezone.utc
UTC_DTYPE = pd.DatetimeTZDtype("ns", "UTC")


def _instant_column(earliest: pd.Timestamp, latest: pd.Timestamp, floor: date) -> pa.Column:
    """A timestamp column: UTC instants from the floor date to one day after the run."""
    import pandera.pandas as pa

    return pa.Column(
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
    )


@lru_cache(maxsize=32)
def events_schema(earliest: pd.Timestamp, latest: pd.Timestamp, floor: date) -> pa.DataFrameSchema:
    """The pandera contract of a parsed ``events`` chunk (instants within the bounds)."""
    import pandera.pandas as pa

    text = pa.Column(object, nullable=False)
    return pa.DataFrameSchema(
        {
            "identity": text,
            "event": text,
            "timestamp": _instant_column(earliest, latest, floor),
        },
        strict=True,
        name="events",
    )


@lru_cache(maxsize=32)
def import_schema(
    imp: EventImportConfig, earliest: pd.Timestamp, latest: pd.Timestamp, floor: date
) -> pa.DataFrameSchema:
    """The pandera contract of a parsed chunk of an events import: identity present, instant
    within the bounds and, when the event comes from a column, a value ``names`` maps."""
    import pandera.pandas as pa

    columns = {
        imp.identity: pa.Column(object, nullable=False),
        imp.timestamp: _instant_column(earliest, latest, floor),
    }
    if imp.event_column:
        mapped = [value for value, _ in imp.names]
        columns[imp.event_column] = pa.Column(
            object,
            nullable=False,
            checks=[
                pa.Check(
                    lambda s: s.isin(mapped),
                    error=f"is not mapped to an event (events.imports.{imp.name}.event.names"
                    f" maps {name_list(sorted(mapped))})",
                )
            ],
        )
    return pa.DataFrameSchema(columns, strict=True, name=f"events/{imp.name}")


@dataclass(frozen=True)
class EventsFileSettings:
    """What :meth:`EventsFeed.load_state` fixes for one file (``FileContext.lookup``)."""

    dialect: str | None  # how occurred_at is written (storage_text); None for a dry run
    floor: date
    earliest: pd.Timestamp  # midnight of the floor date, instance zone, as UTC
    latest: pd.Timestamp  # the run's as-of time + 1 day, UTC
    imp: EventImportConfig | None = None  # the import of events/<import>/, None: plain file


def file_settings(conn: sa.Connection | None, context: FileContext) -> EventsFileSettings:
    floor = max(context.config.events.floor_date, FIRST_DAY)
    earliest = pd.Timestamp(datetime.combine(floor, time(0), tzinfo=context.tz)).tz_convert(UTC)
    latest = pd.Timestamp(context.now).tz_convert(UTC) + pd.Timedelta(days=1)
    dialect = conn.dialect.name if conn is not None else None
    imp = context.config.events.import_config(context.import_name)
    return EventsFileSettings(dialect, floor, earliest, latest, imp)
