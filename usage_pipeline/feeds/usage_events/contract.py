"""The ``usage_events`` file contract: template columns, layout of a config, pandera schema."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from usage_pipeline.config import PipelineConfig
from usage_pipeline.days import FIRST_DAY
from usage_pipeline.feed_headers import (
    USAGE_EVENTS_OPTIONAL,
    USAGE_EVENTS_REQUIRED,
    USAGE_EVENTS_TEMPLATE,
)
from usage_pipeline.timestamps import TIMESTAMP_KIND, utc_text

if TYPE_CHECKING:  # pandera is imported where a schema is built: a run with
    import pandera.pandas as pa  # nothing to validate never pays for it

REQUIRED_FIXED = USAGE_EVENTS_REQUIRED
OPTIONAL_FIXED = USAGE_EVENTS_OPTIONAL
TEMPLATE_FIXED = USAGE_EVENTS_TEMPLATE
FUTURE_LIMIT = timedelta(days=1)
CLOSED_PERIOD_CHECK = "closed_period_events"
FINAL_PERIOD_FAILURE = "timestamp: in final billing period "  # + YYYY-MM (failure tally key)
REPEAT_FAILURE = "event_ref: repeated in the file"
KINDS = {
    "customer_ref": "a non-blank value",
    "event_ref": "a non-blank value",
    "event": "a non-blank value",
    "timestamp": TIMESTAMP_KIND,
}


@dataclass(frozen=True)
class Layout:
    """The template of one configuration; meters/properties as (lower-case column, name)."""

    meters: tuple[tuple[str, str], ...]
    properties: tuple[tuple[str, str], ...]

    @staticmethod
    def of(config: PipelineConfig) -> Layout:
        settings = config.usage_events
        return Layout(
            tuple((name.lower(), name) for name in settings.meters),
            tuple((name.lower(), name) for name in settings.properties),
        )

    @property
    def meter_columns(self) -> tuple[str, ...]:
        return tuple(column for column, _ in self.meters)

    @property
    def configured_columns(self) -> tuple[str, ...]:
        return tuple(column for column, _ in (*self.meters, *self.properties))

    def kinds(self) -> dict[str, str]:
        """What each column's cell must be, for "is not ..." messages."""
        return {**KINDS, **dict.fromkeys(self.meter_columns, "a number")}

    def problem(self) -> str | None:
        """Why this configuration's template cannot be read, or None."""
        seen: set[str] = set(TEMPLATE_FIXED)
        for column, name in (*self.meters, *self.properties):
            if column in seen:
                return (
                    f"the usage_events config names column {name!r} twice when column names"
                    " are compared case-insensitively; rename a meter or property"
                )
            seen.add(column)
        for _, name in self.meters:
            if '"' in name:  # SQLite JSON paths ($."name") cannot address such a key
                return f"the usage_events meter name {name!r} contains a double quote; rename it"
        return None


def usage_events_schema(meters: tuple[str, ...], now: datetime, tz: ZoneInfo) -> pa.DataFrameSchema:
    """The pandera contract of a parsed chunk (text cells, UTC instants, meter numbers)."""
    import pandera.pandas as pa

    earliest = pd.Timestamp(datetime.combine(FIRST_DAY, time(), tzinfo=tz))
    latest = pd.Timestamp(now + FUTURE_LIMIT).tz_convert("UTC")
    text = pa.Column(object, nullable=False)
    number = pa.Column(
        float,
        nullable=False,
        checks=[
            pa.Check(lambda s: np.isfinite(s), error="is not a finite number"),
            pa.Check(lambda s: s >= 0, error="is negative"),
        ],
    )
    return pa.DataFrameSchema(
        {
            **{name: text for name in REQUIRED_FIXED},
            "subscription_ref": pa.Column(object, nullable=True),
            "timestamp": pa.Column(
                pd.DatetimeTZDtype("ns", "UTC"),
                nullable=False,
                checks=[
                    pa.Check(
                        lambda s: s <= latest,
                        error=f"is more than 1 day in the future (after {utc_text(latest)})",
                    ),
                    pa.Check(
                        lambda s: s >= earliest,
                        error=f"is before {FIRST_DAY}, the first day the pipeline keeps",
                    ),
                ],
            ),
            **{name: number for name in meters},
        },
        strict=True,
        name="usage_events",
    )
