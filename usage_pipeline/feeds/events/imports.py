"""Imports of existing tables (``events/<import>/``): one chunk of a table export -> the
``event_candidates`` rows of the events each valid row makes (its own event, then the
``also`` events), row errors and the ``check`` report. No database."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from usage_pipeline.config import EventImportConfig, PipelineConfig
from usage_pipeline.feed_headers import configured_event_imports, event_import_columns
from usage_pipeline.feeds.base import ChunkResult, FileContext
from usage_pipeline.feeds.common import text_cells
from usage_pipeline.feeds.events.contract import EventsFileSettings, import_schema
from usage_pipeline.feeds.events.rows import properties_json, when_columns
from usage_pipeline.feeds.validation import validate
from usage_pipeline.timestamps import TIMESTAMP_KIND, parse_instants
from usage_pipeline.wording import name_list, shown

REPORT_ROWS = 50  # report lines per chunk


def property_keys(columns: list[str], imp: EventImportConfig) -> dict[str, str]:
    """Column -> property key of the row's own event: every column but the identity,
    timestamp and event columns (unless ``properties`` names it), keyed by its lower-cased
    name or its rename."""
    renames = dict(imp.properties)
    keys = {imp.identity, imp.timestamp, imp.event_column}
    return {
        column: renames.get(column.lower(), column.lower())
        for column in columns
        if column.lower() in renames or column.lower() not in keys
    }


def header_problem(header: list[str], imp: EventImportConfig) -> str | None:
    """A missing column, or two columns that would be one property, as a clause; or None."""
    missing = [c for c in event_import_columns(imp) if c not in header]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        return (
            f"required column{plural} {name_list(missing, quoted=False)} of events import"
            f" {imp.name!r} missing (its template is: {','.join(event_import_columns(imp))})"
        )
    seen: dict[str, str] = {}
    for column, key in property_keys(header, imp).items():
        if key in seen:
            return (
                f"columns {seen[key]!r} and {column!r} would both be property {key!r} of the"
                f" row's event: rename one in events.imports.{imp.name}.properties"
            )
        seen[key] = column
    return None


def folder_hint(config: PipelineConfig, import_name: str) -> str:
    """Why a file in ``events/<import_name>/`` was read as a plain events file."""
    return (
        f"folder {import_name!r} under events/ is not a configured events import, so the file"
        f" was read as plain events ({configured_event_imports(config)})"
    )


def import_rows(raw: pd.DataFrame, context: FileContext[EventsFileSettings]) -> ChunkResult:
    """Validate one chunk of an import; the events of its valid rows as ``event_candidates``
    rows (without ``file_id``), in row order, each row's own event first."""
    settings = context.state
    imp = settings.imp
    assert imp is not None  # the feed routes only import files here
    parsed = pd.DataFrame(
        {
            imp.identity: text_cells(raw[imp.identity]),
            imp.timestamp: parse_instants(raw[imp.timestamp], context.tz),
        },
        index=raw.index,
    )
    if imp.event_column:
        parsed[imp.event_column] = text_cells(raw[imp.event_column])
    schema = import_schema(imp, settings.earliest, settings.latest, settings.floor)
    valid, errors, tally = validate(parsed, raw, schema, {imp.timestamp: TIMESTAMP_KIND})
    mask = valid.to_numpy()
    good, cells = parsed[mask], raw[mask]
    instants = good[imp.timestamp]
    local = instants.dt.tz_convert(context.tz)
    common = {
        "row_number": good.index.to_numpy(dtype="int64"),
        "identity": good[imp.identity].to_numpy(),
        **when_columns(instants, context.tz, settings.dialect),
    }
    names = (
        good[imp.event_column].map(dict(imp.names)).to_numpy(dtype=object)
        if imp.event_column
        else np.full(len(good), imp.event, dtype=object)
    )
    made = [(names, properties_json(cells, property_keys(list(raw.columns), imp)))]
    made += [
        (
            np.full(len(good), also.event, dtype=object),
            properties_json(cells, dict(also.properties)),
        )
        for also in imp.also
    ]
    frames = [
        pd.DataFrame({**common, "event": event, "properties": props}) for event, props in made
    ]
    rows = pd.concat(frames, ignore_index=True).sort_values("row_number", kind="stable")
    rows = rows.loc[:, ["row_number", "identity", "event", "occurred_at", "day", "properties"]]
    who = (imp.identity, good[imp.identity].to_numpy())
    report = _report(raw, mask, who, local, made, context.config, imp)
    return ChunkResult(
        rows=rows.reset_index(drop=True),
        errors=errors,
        failures=tally,
        loaded=int(mask.sum()),
        report=report,
    )


def _report(
    raw: pd.DataFrame,
    mask: np.ndarray,
    who: tuple[str, np.ndarray],
    local: pd.Series,
    made: list[tuple[np.ndarray, np.ndarray]],
    config: PipelineConfig,
    imp: EventImportConfig,
) -> list[str]:
    """Per row: its identity, its instant (instance zone) and each event it makes with the
    event's properties; an invalid row makes none. The file starts with its throttles."""
    lines = []
    if raw.index[0] == 2:  # the first chunk of the file
        lines += [
            f"{name} is throttled: per identity, one event per {_duration(window)} is kept"
            for name in sorted(imp.event_names())
            if (window := config.events.window(name)) is not None
        ]
    column, identities = who
    position = np.cumsum(mask) - 1  # a valid row's position among the valid ones
    for at in range(min(len(raw), REPORT_ROWS)):
        row = int(raw.index[at])
        if not mask[at]:
            lines.append(f"row {row}: invalid, no events")
            continue
        i = position[at]
        events = "; ".join(f"{event[i]} {props[i]}" for event, props in made)
        lines.append(
            f"row {row}: {column} {shown(identities[i])} at"
            f" {local.iat[i].isoformat(sep=' ')} -> {events}"
        )
    return lines


def _duration(window: timedelta) -> str:
    """``30m``, ``2h``, ``1d`` or ``90s``: the window as the config spells durations."""
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
