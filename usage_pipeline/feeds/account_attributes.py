"""``account_attributes``: Totango account attributes (SPEC §2.3).

File contract: ``account_id``, optional ``date`` (``YYYY-MM-DD``; blank or absent = the
file's drop date), then any attribute columns (text, kept as given; the column name as
written in the header, trimmed, is the attribute name). A blank cell is no observation: it
does not clear the value. A row without ``account_id`` or with a bad ``date`` is rejected
alone (``max_reject_ratio`` applies, as in §2.1).

Each non-blank cell lands in ``attribute_observations``; :meth:`apply` then updates
``account_attribute_history`` for exactly the pairs the file (or the versions it supersedes)
observed — see :mod:`usage_pipeline.feeds.attribute_history`. Attributes are not daily
data: no rollup day is touched.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from usage_pipeline.feeds.attribute_history import (
    ACCOUNT_ID,
    DATE,
    DAY_KIND,
    blank_column_problem,
    day_bounds,
    key_columns_schema,
    observation_rows,
    row_days,
    update_history,
)
from usage_pipeline.feeds.base import ChunkResult, Feed, FeedChange, FileContext
from usage_pipeline.feeds.validation import validate
from usage_pipeline.warehouse.tables import attribute_observations

HISTORY_TABLE = "account_attribute_history"


class AccountAttributesFeed(Feed[None]):
    """Attribute values per account and day; a history row only when the value changes."""

    name = "account_attributes"
    required_columns = (ACCOUNT_ID,)
    optional_columns = (DATE,)
    extra_columns_allowed = True  # every other column is an attribute
    target = attribute_observations
    day_column = "observed_on"
    kinds = {DATE: DAY_KIND}

    def header_problem(self, header: list[str], context: FileContext) -> str | None:
        problem = super().header_problem(header, context) or blank_column_problem(header)
        if problem is None and not [c for c in header if c not in (ACCOUNT_ID, DATE)]:
            return (
                "there are no attribute columns (the account_attributes template is:"
                f" {self.template(context.config)})"
            )
        return problem

    def process_chunk(self, raw: pd.DataFrame, context: FileContext) -> ChunkResult:
        days, dates = row_days(raw, context)
        parsed = pd.DataFrame({ACCOUNT_ID: raw[ACCOUNT_ID]}, index=raw.index)
        if dates is not None:
            parsed[DATE] = dates
        schema = key_columns_schema(*day_bounds(context), counts=False)
        valid, errors, tally = validate(parsed, raw, schema, self.kinds)
        mask = valid.to_numpy()
        attributes = [c for c in raw.columns if c not in (ACCOUNT_ID, DATE)]
        rows = observation_rows(raw[mask], days[mask], attributes)
        return ChunkResult(rows=rows, errors=errors, failures=tally, loaded=int(mask.sum()))

    def apply(
        self, conn: sa.Connection, context: FileContext, file_id: int, removed: list[int]
    ) -> FeedChange:
        change = update_history(conn, file_id, removed)
        return FeedChange(tables={HISTORY_TABLE} if change.touched else set(), notes=change.notes())


ACCOUNT_ATTRIBUTES = AccountAttributesFeed()
