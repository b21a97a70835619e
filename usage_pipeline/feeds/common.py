"""Small helpers every feed shares: error frames, text and number cells, JSON text, dates."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from usage_pipeline.days import as_date  # noqa: F401  (re-exported for the feeds)

ERROR_COLUMNS = ["row_number", "column_name", "value", "error"]


def no_errors() -> pd.DataFrame:
    """An empty error frame (``ERROR_COLUMNS``)."""
    return pd.DataFrame(columns=ERROR_COLUMNS)


def merge_errors(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One error per (row, column), messages joined with ``; ``, ordered by row then column."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return no_errors()
    merged = pd.concat(frames, ignore_index=True)
    merged["row_number"] = merged["row_number"].astype("int64")
    return (
        merged.groupby(["row_number", "column_name"], as_index=False, sort=True)
        .agg(value=("value", "first"), error=("error", "; ".join))
        .loc[:, ERROR_COLUMNS]
    )


def text_cells(values: pd.Series) -> pd.Series:
    """Text cells with surrounding blanks trimmed (object dtype; None when blank)."""
    text = values.astype("string").str.strip()
    return text.astype(object).where(text.notna() & (text != ""), None)


def number_cells(values: pd.Series) -> pd.Series:
    """Cells as float64 numbers, surrounding blanks trimmed (NaN when blank or not a number;
    ``inf`` stays ``inf``)."""
    text = values.astype("string").str.strip()
    return pd.to_numeric(text, errors="coerce").astype("float64")


def json_values(values: pd.Series, numbers: bool = False) -> np.ndarray:
    """Each cell as JSON text (None when missing), encoding each distinct value once; with
    ``numbers``, whole numbers are written without a fraction (3, not 3.0)."""
    codes, uniques = pd.factorize(values)

    def encode(value: Any) -> str:
        if numbers:
            value = float(value)
            if value.is_integer() and abs(value) < 2**53:
                value = int(value)
        return json.dumps(value, ensure_ascii=False)

    encoded = np.array([encode(v) for v in uniques] + [None], dtype=object)
    return encoded[codes]  # code -1 (missing) picks the trailing None


def json_objects(columns: list[tuple[str, np.ndarray]], count: int) -> np.ndarray:
    """One JSON object per row from (name, :func:`json_values`) columns, in column order,
    leaving missing values out: the text ``json.dumps`` gives for the same dict."""
    body = np.full(count, "", dtype=object)
    for name, encoded in columns:
        present = pd.notna(encoded)
        if present.any():
            key = json.dumps(name, ensure_ascii=False) + ": "
            before = body[present]
            body[present] = before + np.where(before == "", "", ", ") + key + encoded[present]
    return ("{" + body + "}") if count else np.array([], dtype=object)
