"""What every feed provides, and the pandera-driven row validation they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pandera.pandas as pa
import sqlalchemy as sa

ERROR_COLUMNS = ["row_number", "column_name", "value", "error"]


@dataclass(frozen=True)
class FileContext:
    """Facts about the file being read that row rules depend on."""

    key: str
    drop_day: date
    received_at: datetime
    tz: ZoneInfo


@dataclass
class ChunkResult:
    """One chunk after validation: loadable rows, per-cell errors, failure tallies."""

    rows: pd.DataFrame
    errors: pd.DataFrame
    failures: Counter[str] = field(default_factory=Counter)


class Feed(ABC):
    """A feed: its file contract (columns, pandera schema) and how valid rows are stored."""

    name: str
    required_columns: tuple[str, ...]
    optional_columns: tuple[str, ...] = ()
    target: sa.Table
    # What a cell of each column must be, for "is not ..." messages.
    kinds: dict[str, str] = {}

    def template(self) -> str:
        """The CSV header line a user fills in."""
        return ",".join((*self.required_columns, *self.optional_columns))

    def header_problem(self, header: list[str]) -> str | None:
        """A sentence describing what is wrong with the (normalised) header, or None."""
        allowed = set(self.required_columns) | set(self.optional_columns)
        duplicates = sorted({c for c in header if header.count(c) > 1})
        if duplicates:
            return f"column {duplicates[0]!r} appears more than once in the header"
        missing = [c for c in self.required_columns if c not in header]
        if missing:
            return f"required column{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing"
        unknown = [c for c in header if c not in allowed]
        if unknown:
            return (
                f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
                f" (the {self.name} template is: {self.template()})"
            )
        return None

    @abstractmethod
    def process_chunk(self, raw: pd.DataFrame, context: FileContext) -> ChunkResult:
        """Validate one chunk of text cells and return the rows for :attr:`target`."""


def validate(
    parsed: pd.DataFrame, raw: pd.DataFrame, schema: pa.DataFrameSchema, kinds: dict[str, str]
) -> tuple[pd.Series, pd.DataFrame, Counter[str]]:
    """Run ``schema`` over ``parsed`` (typed cells, same index and column names as ``raw``).

    Returns the valid-row mask, per-cell errors (``ERROR_COLUMNS``; one per row and column,
    messages worded from the raw cell) and a tally of failures per ``column: check``.
    """
    try:
        schema.validate(parsed, lazy=True)
    except pa.errors.SchemaErrors as exc:
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
                else f"{column} {value!r} is not {kinds.get(column, 'valid')}"
            )
            tally[f"{column}: {'missing' if value is None else 'unparseable'}"] += 1
        else:
            message = f"{column} {value!r} {check}"
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
