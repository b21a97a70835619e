"""Row validation every feed shares: a pandera schema over typed cells, worded from the raw
cells, and the rule that a cell holding a NUL byte rejects its row."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from usage_pipeline.feeds.common import ERROR_COLUMNS
from usage_pipeline.reading import NUL_STANDIN
from usage_pipeline.wording import shown

if TYPE_CHECKING:
    import pandera.pandas as pa


@lru_cache(maxsize=1)
def _record_absent_geopandas() -> None:
    """pandera tries ``import geopandas`` for every column it checks; when geopandas is not
    installed, that failed import searches ``sys.path`` again each time (about half of a
    1,000-row chunk's validation). Recording the module as absent once (``None`` in
    ``sys.modules`` makes its import fail at once) changes nothing else."""
    if "geopandas" not in sys.modules and importlib.util.find_spec("geopandas") is None:
        sys.modules["geopandas"] = None  # type: ignore[assignment]


def validate(
    parsed: pd.DataFrame, raw: pd.DataFrame, schema: pa.DataFrameSchema, kinds: dict[str, str]
) -> tuple[pd.Series, pd.DataFrame, Counter[str]]:
    """Run ``schema`` over ``parsed`` (typed cells, same index and column names as ``raw``).

    Returns the valid-row mask, per-cell errors (``ERROR_COLUMNS``; one per row and column,
    messages worded from the raw cell) and a tally of failures per ``column: check``.
    """
    from pandera.errors import SchemaErrors

    _record_absent_geopandas()
    try:
        # inplace: no copy of the chunk (the schemas only check; none coerces or adds)
        schema.validate(parsed, lazy=True, inplace=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return pd.Series(True, index=parsed.index), pd.DataFrame(columns=ERROR_COLUMNS), Counter()
    cases = cases[cases["index"].notna() & cases["column"].notna()]
    rows = cases["index"].astype("int64").to_numpy()
    columns = cases["column"].astype(str).to_numpy()
    checks = cases["check"].astype(str).to_numpy()
    errors, tally = [], Counter()
    for row, column, check in zip(rows, columns, checks, strict=True):
        value = raw.at[row, column] if column in raw.columns else None
        value = None if pd.isna(value) else str(value)
        if check == "not_nullable":
            message = (
                f"{column} is missing"
                if value is None
                else f"{column} {shown(value)} is not {kinds.get(column, 'valid')}"
            )
            tally[f"{column}: {'missing' if value is None else 'unparseable'}"] += 1
        else:
            message = f"{column} {shown(value)} {check}"
            tally[f"{column}: {check}"] += 1
        errors.append((int(row), column, value, message))
    frame = pd.DataFrame(errors, columns=ERROR_COLUMNS)
    frame = (
        frame.groupby(["row_number", "column_name"], as_index=False, sort=True)
        .agg(value=("value", "first"), error=("error", "; ".join))
        .loc[:, ERROR_COLUMNS]
    )
    valid = ~parsed.index.isin(frame["row_number"].unique())
    return pd.Series(valid, index=parsed.index), frame, tally


def split_nul_rows(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows without a NUL byte, one error per cell holding one): such a row is rejected,
    never stored cut short; the error's value shows the byte as ``\\x00``."""
    errors = []
    bad = np.zeros(len(raw), dtype=bool)
    for column in raw.columns:
        hit = raw[column].str.contains(NUL_STANDIN, regex=False, na=False).to_numpy(dtype=bool)
        if hit.any():
            bad |= hit
            for row, value in raw[column][hit].items():
                shown_value = str(value).replace(NUL_STANDIN, "\\x00")
                errors.append((int(row), column, shown_value, f"{column} has a NUL byte"))
    frame = pd.DataFrame(errors, columns=ERROR_COLUMNS).sort_values(["row_number", "column_name"])
    return raw[~bad], frame.reset_index(drop=True)
