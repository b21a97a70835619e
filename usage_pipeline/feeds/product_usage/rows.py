"""``product_usage`` rows: one chunk of text cells -> observations, row errors and report
lines (no database: accounts are matched through the state's directory)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from usage_pipeline.days import FIRST_DAY
from usage_pipeline.feeds.base import ChunkResult, FileContext
from usage_pipeline.feeds.common import ERROR_COLUMNS, merge_errors
from usage_pipeline.feeds.product_usage.contract import (
    PARSERS,
    VALUE_COLUMNS,
    import_columns,
    lower,
    product_usage_schema,
)
from usage_pipeline.feeds.product_usage.report import report_lines
from usage_pipeline.feeds.product_usage.state import PreparedImport
from usage_pipeline.feeds.validation import validate
from usage_pipeline.periods import period_starts
from usage_pipeline.timestamps import TIMESTAMP_KIND, parse_days
from usage_pipeline.warehouse.tables import product_usage_observations

OBSERVATION_COLUMNS = [c.name for c in product_usage_observations.columns if c.name != "file_id"]


def product_usage_rows(raw: pd.DataFrame, context: FileContext[PreparedImport]) -> ChunkResult:
    """Validate one chunk of an import and return one observation per matched, non-blank
    mapped cell; unmatched identifiers are errors that do not count as invalid rows."""
    prepared = context.state
    imp = prepared.imp
    identifier = lower(imp.identifier_column)
    date_column = lower(imp.date_column) if imp.date_column else None
    parsed = raw.loc[:, import_columns(imp)].copy()
    dates = None
    if date_column:
        as_of = pd.Timestamp(context.now.astimezone(context.tz).date())
        dates = parse_days(raw[date_column], context.tz)
        parsed[date_column] = dates.where(raw[date_column].notna(), as_of)
        dates = dates.where(raw[date_column].notna())  # NaT: use the as-of rule
    last = max(
        context.now.astimezone(context.tz).date(),
        context.received_at.astimezone(context.tz).date(),
    )
    schema = product_usage_schema(
        imp, pd.Timestamp(FIRST_DAY), pd.Timestamp(last + timedelta(days=1))
    )
    kinds = {identifier: f"a {imp.identifier_kind}"}
    if date_column:
        kinds[date_column] = f"a YYYY-MM-DD date or {TIMESTAMP_KIND}"
    _valid, errors, failures = validate(parsed, raw, schema, kinds)

    # rows that can be placed: identifier present and a valid date (or none needed)
    row_columns = {identifier, date_column} - {None}
    unusable = set(errors.loc[errors["column_name"].isin(row_columns), "row_number"])
    usable = ~raw.index.isin(list(unusable)) & raw[identifier].notna().to_numpy()
    account, reason = prepared.directory.match_series(raw[identifier].where(usable))
    matched = usable & account.notna().to_numpy()
    unmatched = usable & ~matched

    unmatched_errors = pd.DataFrame(
        {
            "row_number": raw.index[unmatched].astype("int64"),
            "column_name": identifier,
            "value": raw[identifier][unmatched].astype(str).to_numpy(),
            "error": [f"{r}; the row is not loaded" for r in reason[unmatched]],
        },
        columns=ERROR_COLUMNS,
    )
    invalid = int(errors["row_number"].nunique()) if len(errors) else 0
    errors = merge_errors([errors, unmatched_errors])
    if unmatched.any():
        failures[f"{identifier}: unmatched account"] += int(unmatched.sum())
        prepared.unmatched.add([str(v) for v in raw[identifier][unmatched]])

    starts = chunk_period_starts(prepared, dates, raw.index)
    rows = _observations(raw, prepared, account, matched, starts)
    clean = matched & ~raw.index.isin(errors["row_number"].to_list())
    report = report_lines(raw, prepared, account, reason, starts, errors, usable, matched)
    return ChunkResult(
        rows=rows,
        errors=errors,
        failures=failures,
        loaded=int(clean.sum()),
        invalid=invalid,
        report=report,
    )


def _observations(
    raw: pd.DataFrame,
    prepared: PreparedImport,
    account: pd.Series,
    matched: np.ndarray,
    starts: dict[str, np.ndarray],
) -> pd.DataFrame:
    """``product_usage_observations`` rows (without ``file_id``) of the matched rows."""
    observations = []
    for mapping in prepared.imp.mappings:
        values = PARSERS[mapping.type](raw[lower(mapping.column)])
        keep = matched & values.notna().to_numpy()
        if not keep.any():
            continue
        frame = pd.DataFrame(
            {
                "row_number": raw.index[keep].astype("int64"),
                "product": mapping.product,
                "account_id": account[keep].to_numpy(),
                "dimension": mapping.dimension,
                "period_start": starts[mapping.product][keep],
                "period": prepared.periods[mapping.product],
                "value_numeric": np.nan,
                "value_text": None,
                "value_boolean": None,
            }
        )
        frame[VALUE_COLUMNS[mapping.type]] = values[keep].to_numpy()
        observations.append(frame)
    rows = (
        pd.concat(observations, ignore_index=True)
        if observations
        else pd.DataFrame(columns=OBSERVATION_COLUMNS)
    )
    rows["value_boolean"] = rows["value_boolean"].astype(object)
    rows["value_text"] = rows["value_text"].astype(object)
    return rows.loc[:, OBSERVATION_COLUMNS]


def chunk_period_starts(
    prepared: PreparedImport, dates: pd.Series | None, index: pd.Index
) -> dict[str, np.ndarray]:
    """product -> each row's period_start (ISO) in this chunk: the row's date snapped to the
    product's period, or the as-of rule's start for rows without one."""
    by_period: dict[str, np.ndarray] = {}
    starts = {}
    for product, period in prepared.periods.items():
        result = np.full(len(index), prepared.auto_starts[product], dtype=object)
        if dates is not None:
            if period not in by_period:
                present = dates.notna().to_numpy()
                snapped = np.full(len(index), None, dtype=object)
                if present.any():
                    snapped[present] = period_starts(dates[present], period)
                by_period[period] = snapped
            snapped = by_period[period]
            result = np.where(pd.notna(snapped), snapped, result)
        starts[product] = result
    return starts
