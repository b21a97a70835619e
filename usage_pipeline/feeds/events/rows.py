"""``events`` rows: one chunk of text cells -> ``event_candidates`` rows and row errors."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from usage_pipeline.days import iso_days
from usage_pipeline.feeds.base import ChunkResult, FileContext
from usage_pipeline.feeds.common import json_objects, json_values, text_cells
from usage_pipeline.feeds.events.contract import (
    KEY_COLUMNS,
    KINDS,
    EventsFileSettings,
    events_schema,
)
from usage_pipeline.feeds.validation import validate
from usage_pipeline.timestamps import local_days, parse_instants, storage_text


def plain_keys(columns: list[str]) -> dict[str, str]:
    """Column -> property key of a plain file: every column but the key columns, keyed by its
    lower-cased name (columns match case-insensitively, so Plan in one file and plan in
    another are one key)."""
    return {c: c.lower() for c in columns if c not in KEY_COLUMNS}


def properties_json(raw: pd.DataFrame, keys: dict[str, str]) -> np.ndarray:
    """One JSON object per row of the non-blank cells of the columns ``keys`` names (column
    -> property key, keys distinct), keys sorted, values kept as given."""
    columns = {key: column for column, key in keys.items()}
    encoded = [
        (key, json_values(raw[columns[key]].where(raw[columns[key]] != "")))
        for key in sorted(columns)
    ]
    return json_objects(encoded, len(raw))


def when_columns(instants: pd.Series, tz: ZoneInfo, dialect: str) -> dict[str, np.ndarray]:
    """``occurred_at`` (storage text) and ``day`` (instance-zone ISO day) of each instant."""
    days = iso_days(local_days(instants, tz)) if len(instants) else np.array([], dtype=object)
    return {"occurred_at": storage_text(instants, dialect), "day": days}


def event_rows(raw: pd.DataFrame, context: FileContext[EventsFileSettings]) -> ChunkResult:
    """Validate one chunk; the valid rows as ``event_candidates`` rows (without ``file_id``)."""
    settings = context.state
    parsed = pd.DataFrame(
        {
            "identity": text_cells(raw["identity"]),
            "event": text_cells(raw["event"]),
            "timestamp": parse_instants(raw["timestamp"], context.tz),
        },
        index=raw.index,
    )
    schema = events_schema(settings.earliest, settings.latest, settings.floor)
    valid, errors, tally = validate(parsed, raw, schema, KINDS)
    mask = valid.to_numpy()
    good = parsed[mask]
    rows = pd.DataFrame(
        {
            "row_number": good.index.to_numpy(dtype="int64"),
            "identity": good["identity"].to_numpy(),
            "event": good["event"].to_numpy(),
            **when_columns(good["timestamp"], context.tz, settings.dialect),
            "properties": properties_json(raw[mask], plain_keys(list(raw.columns))),
        }
    )
    return ChunkResult(rows=rows, errors=errors, failures=tally)
