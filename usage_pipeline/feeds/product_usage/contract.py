"""The ``product_usage`` file contract of one import: columns, cell parsers, pandera schema."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from usage_pipeline.config import ImportConfig, PipelineConfig
from usage_pipeline.feed_headers import configured_imports as configured
from usage_pipeline.feed_headers import import_columns, lower
from usage_pipeline.feeds.common import number_cells, text_cells

if TYPE_CHECKING:
    import pandera.pandas as pa

UNMATCHED_CHECK = "unmatched_accounts"
UNMATCHED_LISTED = 20  # identifiers named in notes and check metadata
KEY = ("product", "account_id", "dimension", "period_start")
VALUE_COLUMNS = {"numeric": "value_numeric", "text": "value_text", "boolean": "value_boolean"}
TRUE_WORDS = frozenset({"true", "yes", "1"})
FALSE_WORDS = frozenset({"false", "no", "0"})


def numbers(text: pd.Series) -> pd.Series:
    """Finite numbers of text cells (NaN when blank or not a number)."""
    values = number_cells(text)
    return values.where(np.isfinite(values))


def booleans(text: pd.Series) -> pd.Series:
    """true/false, yes/no, 1/0 in any case -> True/False (None when blank or not one of them)."""
    words = text.astype("string").str.strip().str.lower()
    result = pd.Series(None, index=text.index, dtype=object)
    result[words.isin(TRUE_WORDS).fillna(False).to_numpy(dtype=bool)] = True
    result[words.isin(FALSE_WORDS).fillna(False).to_numpy(dtype=bool)] = False
    return result


PARSERS = {"numeric": numbers, "boolean": booleans, "text": text_cells}


def import_problem(config: PipelineConfig, import_name: str | None) -> str | None:
    """Why a file of ``import_name`` cannot be read as product usage at all, or None."""
    if import_name is None:
        return (
            "it is directly in product_usage/, not in an import folder"
            f" product_usage/<import>/ ({configured(config)})"
        )
    imp = config.import_config(import_name)
    if imp is None:
        return (
            f"folder {import_name!r} under product_usage/ is not a configured"
            f" import ({configured(config)})"
        )
    seen: dict[tuple[str, str], str] = {}
    for mapping in imp.mappings:
        target = (mapping.product, mapping.dimension)
        if target in seen and seen[target] != lower(mapping.column):
            return (
                f"import {imp.name!r} maps both column {seen[target]!r} and column"
                f" {lower(mapping.column)!r} to dimension {mapping.dimension!r} of product"
                f" {mapping.product!r}; map each dimension from one column"
            )
        seen[target] = lower(mapping.column)
    return None


def _type_check(kind: str) -> pa.Check | None:
    """The pandera check a cell of a ``numeric`` or ``boolean`` mapping must pass."""
    import pandera.pandas as pa

    if kind == "numeric":
        return pa.Check(lambda s: numbers(s).notna(), error="is not a number")
    if kind == "boolean":
        return pa.Check(
            lambda s: booleans(s).notna(), error="is not a boolean (true/false, yes/no, 1/0)"
        )
    return None


@lru_cache(maxsize=64)
def product_usage_schema(
    imp: ImportConfig, first_day: pd.Timestamp, last_day: pd.Timestamp
) -> pa.DataFrameSchema:
    """The pandera contract of one import's chunk: identifier present, date valid, each
    mapped cell blank or of its dimension's type."""
    import pandera.pandas as pa

    identifier = lower(imp.identifier_column)
    date_column = lower(imp.date_column) if imp.date_column else None
    kinds: dict[str, list[str]] = {name: [] for name in import_columns(imp)}
    for mapping in imp.mappings:
        column = lower(mapping.column)
        if column != date_column and mapping.type not in kinds[column]:
            kinds[column].append(mapping.type)
    checks = {
        name: [c for c in map(_type_check, found) if c is not None] for name, found in kinds.items()
    }
    columns = {
        name: pa.Column(nullable=name != identifier, checks=found) for name, found in checks.items()
    }
    if date_column:
        day_range = pa.Check(
            lambda s: (s >= first_day) & (s <= last_day),
            error=f"is outside the accepted days {first_day.date()} to {last_day.date()}",
        )
        columns[date_column] = pa.Column("datetime64[ns]", nullable=False, checks=[day_range])
    return pa.DataFrameSchema(columns, strict=True, name=f"product_usage/{imp.name}")
