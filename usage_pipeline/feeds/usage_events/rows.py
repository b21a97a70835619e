"""``usage_events`` rows: one chunk of text cells -> staging rows and row errors (no writes;
stored refs are asked of the state's :class:`KnownRefs`, which a dry run leaves empty)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from usage_pipeline import billing
from usage_pipeline.days import iso_days
from usage_pipeline.feeds.base import ChunkResult, FileContext
from usage_pipeline.feeds.common import (
    ERROR_COLUMNS,
    json_objects,
    json_values,
    merge_errors,
    number_cells,
    text_cells,
)
from usage_pipeline.feeds.usage_events.contract import (
    FINAL_PERIOD_FAILURE,
    REPEAT_FAILURE,
    REQUIRED_FIXED,
    Layout,
)
from usage_pipeline.feeds.usage_events.state import FileState
from usage_pipeline.feeds.validation import validate
from usage_pipeline.timestamps import parse_instants, storage_text, utc_text


def _text(raw: pd.DataFrame, column: str) -> pd.Series:
    """Trimmed text cells of ``column`` (None when blank or the column is absent)."""
    if column not in raw.columns:
        return pd.Series(None, index=raw.index, dtype=object)
    return text_cells(raw[column])


def periods(local: pd.Series) -> pd.Series:
    """``YYYY-MM`` of zone-local instants, formatting each distinct month once."""
    keys = local.dt.year * 100 + local.dt.month
    labels = {key: f"{key // 100:04d}-{key % 100:02d}" for key in pd.unique(keys)}
    return keys.map(labels)


def usage_event_rows(raw: pd.DataFrame, context: FileContext[FileState]) -> ChunkResult:
    """Validate one chunk: schema, ``event_ref`` repeats in the file, new events dated in a
    final billing period; the valid rows as ``usage_event_rows`` (without ``file_id``)."""
    state = context.state
    layout = Layout.of(context.config)
    parsed = pd.DataFrame(index=raw.index)
    for column in (*REQUIRED_FIXED, "subscription_ref"):
        parsed[column] = _text(raw, column)
    received = pd.Timestamp(context.received_at).tz_convert("UTC")
    if "timestamp" in raw.columns:
        stamp_missing = raw["timestamp"].isna().to_numpy()
        instants = parse_instants(raw["timestamp"], context.tz)
        stamps = instants.where(~stamp_missing, received)
    else:
        stamp_missing = np.ones(len(raw), dtype=bool)
        stamps = pd.Series(received, index=raw.index)
    parsed["timestamp"] = stamps.astype("datetime64[ns, UTC]")
    for column in layout.meter_columns:
        # a blank cell is missing (valid, no value); a cell that is not a number stays NaN
        parsed[column] = number_cells(raw[column]).where(raw[column].notna(), 0.0)
    _, errors, tally = validate(parsed, raw, state.schema, state.kinds)
    errors = _receipt_time_wording(errors, raw.index[stamp_missing], received)
    extra = [
        _repeats(parsed["event_ref"], state, tally),
        _final_periods(parsed, raw, stamp_missing, received, context, tally),
    ]
    errors = merge_errors([errors, *extra])
    valid = ~raw.index.isin(errors["row_number"].unique())
    return ChunkResult(
        rows=_rows(parsed[valid], raw[valid], layout, context),
        errors=errors,
        failures=tally,
    )


def _receipt_time_wording(
    errors: pd.DataFrame, defaulted: pd.Index, received: pd.Timestamp
) -> pd.DataFrame:
    """Rows without a timestamp were checked with the receipt time: say so."""
    hit = (errors["column_name"] == "timestamp") & errors["row_number"].isin(defaulted)
    if hit.any():
        errors = errors.copy()
        errors.loc[hit, "error"] = errors.loc[hit, "error"].str.replace(
            "timestamp None",
            f"timestamp is missing, so the file's receipt time {utc_text(received)} is used, which",
            regex=False,
        )
    return errors


def _repeats(refs: pd.Series, state: FileState, tally: Counter[str]) -> pd.DataFrame:
    """An ``event_ref`` repeated in the file (this chunk or an earlier one) is an error."""
    first = state.seen.first_rows(refs)
    repeated = first[first >= 0]
    tally[REPEAT_FAILURE] += len(repeated)
    return pd.DataFrame(
        {
            "row_number": repeated.index.to_numpy(dtype=np.int64),
            "column_name": "event_ref",
            "value": refs[repeated.index].to_numpy(dtype=object),
            "error": [
                f"event_ref {ref!r} repeats row {row}: an event_ref must be unique in a file"
                for ref, row in zip(refs[repeated.index], repeated, strict=True)
            ],
        },
        columns=ERROR_COLUMNS,
    )


def _final_periods(
    parsed: pd.DataFrame,
    raw: pd.DataFrame,
    stamp_missing: np.ndarray,
    received: pd.Timestamp,
    context: FileContext[FileState],
    tally: Counter[str],
) -> pd.DataFrame:
    """New events dated in a ``final`` billing period are errors (already stored ones are
    duplicates, skipped when the file loads); counted per period in ``state.final_periods``."""
    state = context.state
    instants = parsed["timestamp"].dropna()
    labels = periods(instants.dt.tz_convert(context.tz))
    settings = context.config.usage_events
    for period in pd.unique(labels):
        if period not in state.period_status:
            state.period_status[period] = billing.status(
                period, state.now, context.tz, settings.grace_hours, settings.on_hold
            )
    final = labels[labels.map(state.period_status) == billing.FINAL]
    if len(final):
        refs = parsed["event_ref"][final.index]
        stored = state.known.stored(refs.dropna())
        final = final[~refs.isin(stored).to_numpy()]
    messages, values = [], []
    missing = pd.Series(stamp_missing, index=raw.index)
    for row, period in final.items():
        closed = utc_text(billing.closes_at(period, context.tz, settings.grace_hours))
        tally[FINAL_PERIOD_FAILURE + period] += 1
        state.final_periods[period] += 1
        if missing[row]:
            values.append(None)
            messages.append(
                f"timestamp is missing, so the file's receipt time {utc_text(received)} is"
                f" used, which is in billing period {period}, final since {closed}"
            )
        else:
            value = str(raw.at[row, "timestamp"])
            values.append(value)
            messages.append(
                f"timestamp {value!r} is in billing period {period}, final since {closed}:"
                " events of a final period are not accepted"
            )
    return pd.DataFrame(
        {
            "row_number": final.index.to_numpy(dtype=np.int64),
            "column_name": "timestamp",
            "value": values,
            "error": messages,
        },
        columns=ERROR_COLUMNS,
    )


def _rows(
    parsed: pd.DataFrame, raw: pd.DataFrame, layout: Layout, context: FileContext[FileState]
) -> pd.DataFrame:
    """Staging rows (``usage_event_rows`` without ``file_id``) of valid input rows."""
    instants = parsed["timestamp"]
    local = instants.dt.tz_convert(context.tz)
    count = len(parsed)
    meters = [
        (name, json_values(number_cells(raw[column]), numbers=True))
        for column, name in layout.meters
    ]
    properties = [(name, json_values(_text(raw, column))) for column, name in layout.properties]
    return pd.DataFrame(
        {
            "row_number": parsed.index.to_numpy(dtype=np.int64),
            "event_ref": parsed["event_ref"].to_numpy(dtype=object),
            "customer_ref": parsed["customer_ref"].to_numpy(dtype=object),
            "subscription_ref": parsed["subscription_ref"].to_numpy(dtype=object),
            "event": parsed["event"].to_numpy(dtype=object),
            "occurred_at": storage_text(instants, context.state.dialect),
            "day": iso_days(local.dt.tz_localize(None).dt.normalize()),
            "billing_period": periods(local).to_numpy(dtype=object),
            "properties": json_objects(properties, count),
            "meters": json_objects(meters, count),
        }
    )
