"""``account_usage``: Totango aggregated account usage (SPEC §2.2).

File contract: ``account_id``, optional ``date`` (``YYYY-MM-DD``; blank or absent = the
file's drop date), then

- ``<Module>##<Activity>`` columns: a non-negative whole-number count for that module and
  activity (blank = missing, ``0`` = a real zero); anything else in the cell rejects the row;
- any other column: an account attribute, recorded in ``account_attribute_history`` exactly
  like an ``account_attributes`` column (SPEC §2.3).

Invalid rows are rejected one by one under ``max_reject_ratio`` (as in §2.1). Module,
activity and attribute names are kept as written in the header (``Reports##View`` -> module
``Reports``, activity ``View``; blanks around ``##`` trimmed); ``account_id`` and ``date`` are
matched case-insensitively.

**Last row wins**: within one file, the last valid row of an account (per day when the file
has a ``date`` column) is that account's row; earlier rows of the same account and day are
ignored as a whole — their counts and their attributes (a blank cell in the winning row
is missing, it does not fall back to an earlier row).

How: a file is read in chunks, so an account's rows can be chunks apart. Rows are staged
cell by cell, with their row numbers, in a temporary table of the file's transaction
(``account_usage_staging``, dropped at commit); :meth:`AccountUsageFeed.apply` keeps the
cells of each (account, day)'s highest row number and moves them into
``account_usage_contributions`` (counts; rolled up into ``account_activity_daily`` with source
``account_usage`` and no active users) and ``attribute_observations`` (attributes). Memory
stays bounded by the chunk size; the database does the de-duplication.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from usage_pipeline.days import iso_days
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
from usage_pipeline.feeds.base import ChunkResult, Feed, FeedChange, FileContext, remove_file_rows
from usage_pipeline.feeds.validation import validate
from usage_pipeline.warehouse.engine import READ_ONLY
from usage_pipeline.warehouse.tables import (
    Day,
    Id,
    account_usage_contributions,
    attribute_observations,
)

SEPARATOR = "##"
COUNT_KIND = "a non-negative whole number"
HISTORY_TABLE = "account_attribute_history"

# Per-file staging (never part of the warehouse metadata): one row per count cell, per
# attribute cell, and one marker row (all item columns null) per valid row, so that a last
# row with only blank cells still wins over earlier ones.
account_usage_staging = sa.Table(
    "account_usage_staging",
    sa.MetaData(),
    sa.Column("file_id", Id, nullable=False),
    sa.Column("row_number", sa.BigInteger, nullable=False),
    sa.Column("activity_date", Day, nullable=False),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("module", sa.Text),
    sa.Column("activity", sa.Text),
    sa.Column("count", sa.BigInteger),
    sa.Column("attribute", sa.Text),
    sa.Column("value", sa.Text),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
STAGING_COLUMNS = [c.name for c in account_usage_staging.columns if c.name != "file_id"]


def _is_count(column: str) -> bool:
    return SEPARATOR in column


def split_item(column: str) -> tuple[str, str]:
    """``'reports ## view'`` -> ``('reports', 'view')`` (a count column's module, activity)."""
    module, activity = column.split(SEPARATOR, 1)
    return module.strip(), activity.strip()


class AccountUsageFeed(Feed[None]):
    """Daily counts per account and module/activity, plus account attributes."""

    name = "account_usage"
    required_columns = (ACCOUNT_ID,)
    optional_columns = (DATE,)
    extra_columns_allowed = True  # the ## count columns and the attribute columns
    target = account_usage_staging
    day_column = "activity_date"
    kinds = {DATE: DAY_KIND}

    def header_problem(self, header: list[str], context: FileContext) -> str | None:
        problem = super().header_problem(header, context) or blank_column_problem(header)
        if problem:
            return problem
        for column in filter(_is_count, header):
            module, activity = split_item(column)
            if not module or not activity or SEPARATOR in activity:
                return (
                    f"column {column!r} is not a count column of the form"
                    " <Module>##<Activity> (one '##' between a module and an activity)"
                )
        if not [c for c in header if c not in (ACCOUNT_ID, DATE)]:
            return (
                "there are no <Module>##<Activity> or attribute columns (the account_usage"
                f" template is: {self.template(context.config)})"
            )
        return None

    def load_state(self, conn: sa.Connection | None, context: FileContext) -> None:
        """Create the file's staging table (not for a dry run, which writes nothing)."""
        if conn is not None and not conn.get_execution_options().get(READ_ONLY, False):
            if conn.dialect.name == "sqlite":  # PostgreSQL drops it at commit or rollback
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{account_usage_staging.name}")
            account_usage_staging.create(conn)

    def process_chunk(self, raw: pd.DataFrame, context: FileContext) -> ChunkResult:
        counts = [c for c in raw.columns if _is_count(c)]
        attributes = [c for c in raw.columns if c not in (ACCOUNT_ID, DATE) and not _is_count(c)]
        days, dates = row_days(raw, context)
        parsed = pd.DataFrame({ACCOUNT_ID: raw[ACCOUNT_ID]}, index=raw.index)
        if dates is not None:
            parsed[DATE] = dates
        for column in counts:
            # a blank cell is missing (valid); anything unparseable becomes NaN (an error)
            number = pd.to_numeric(raw[column], errors="coerce").astype("float64")
            parsed[column] = number.where(raw[column].notna(), 0.0)
        kinds = {**self.kinds, **dict.fromkeys(counts, COUNT_KIND)}
        schema = key_columns_schema(*day_bounds(context), counts=True)
        valid, errors, tally = validate(parsed, raw, schema, kinds)
        mask = valid.to_numpy()
        good, good_days = raw[mask], days[mask]
        labels = iso_days(good_days) if len(good) else np.array([], dtype=object)
        frames = []
        for column in counts:
            present = good[column].notna().to_numpy()
            if present.any():
                module, activity = split_item(column)
                frames.append(
                    pd.DataFrame(
                        {
                            "row_number": good.index.to_numpy(dtype="int64")[present],
                            "activity_date": labels[present],
                            ACCOUNT_ID: good[ACCOUNT_ID].to_numpy(dtype=object)[present],
                            "module": module,
                            "activity": activity,
                            "count": parsed.loc[good.index, column]
                            .to_numpy()[present]
                            .astype("int64"),
                        }
                    )
                )
        frames.append(observation_rows(good, good_days, attributes, day_column="activity_date"))
        frames.append(  # the row markers
            pd.DataFrame(
                {
                    "row_number": good.index.to_numpy(dtype="int64"),
                    "activity_date": labels,
                    ACCOUNT_ID: good[ACCOUNT_ID].to_numpy(dtype=object),
                }
            )
        )
        rows = pd.concat([f for f in frames if len(f)] or frames[-1:], ignore_index=True)
        rows = rows.reindex(columns=STAGING_COLUMNS)
        rows["count"] = rows["count"].astype("Int64")
        return ChunkResult(rows=rows, errors=errors, failures=tally, loaded=int(mask.sum()))

    def apply(
        self, conn: sa.Connection, context: FileContext, file_id: int, removed: list[int]
    ) -> FeedChange:
        """Keep each (account, day)'s last row, retire the superseded versions' counts and
        observations, and update the attribute history of the pairs involved."""
        s = account_usage_staging.c
        winners = sa.select(sa.func.max(s.row_number)).group_by(s.account_id, s.activity_date)
        staged_rows = conn.execute(sa.select(sa.func.count(s.row_number.distinct()))).scalar_one()
        conn.execute(
            account_usage_contributions.insert().from_select(
                ["file_id", "row_number", "activity_date", "account_id", "module", "activity"]
                + ["count"],
                sa.select(
                    s.file_id,
                    s.row_number,
                    s.activity_date,
                    s.account_id,
                    s.module,
                    s.activity,
                    s["count"],
                )
                .where(s.module.is_not(None), s.row_number.in_(winners))
                .order_by(s.activity_date, s.account_id, s.module, s.activity),
            )
        )
        conn.execute(
            attribute_observations.insert().from_select(
                ["file_id", "row_number", "account_id", "attribute", "observed_on", "value"],
                sa.select(
                    s.file_id, s.row_number, s.account_id, s.attribute, s.activity_date, s.value
                ).where(s.attribute.is_not(None), s.row_number.in_(winners)),
            )
        )
        kept_rows = conn.execute(
            sa.select(sa.func.count()).select_from(winners.subquery())
        ).scalar_one()
        account_usage_staging.drop(conn)
        days = remove_file_rows(
            conn, account_usage_contributions, self.day_column, removed, context.loaded_days
        )
        history = update_history(conn, file_id, removed)
        return FeedChange(
            days=days,
            tables={HISTORY_TABLE} if history.touched else set(),
            notes={"rows_superseded_in_file": int(staged_rows - kept_rows), **history.notes()},
        )


ACCOUNT_USAGE = AccountUsageFeed()
