"""Account attribute history (SPEC §2.3), shared by ``account_attributes`` and the attribute
columns of ``account_usage`` (SPEC §2.2).

Every loaded file's non-blank attribute cells are kept in ``attribute_observations`` (one row
per cell: file, row number, account, attribute, day, value). ``account_attribute_history`` is
a function of those observations, per (account, attribute):

- the value of a day is the value of its last observation (the highest ``file_id``, then the
  highest ``row_number``: on one day a later file wins, in one file a later row wins);
- a history row starts (``valid_from``) on each observed day whose value differs from the
  previous observed day's; ``valid_to`` is the next row's ``valid_from`` (exclusive) or null
  for the current value. Rows of one pair never overlap and leave no gaps; nothing is known
  before the first observation;
- a blank cell is no observation: it neither clears nor repeats a value.

:func:`update_history` keeps that function up to date incrementally, inside the file's
transaction: for each (account, attribute) pair the file (or the versions it supersedes)
observed, only the history from the pair's earliest changed day ``d0`` is rewritten, seeded
by the value in force before ``d0``. Every statement is driven by the file's observations
(``file_id`` index) and the history's primary key, so the cost follows the touched pairs, not
the whole history. (Reading a pair's observations from ``d0`` on goes through the
``(account_id, attribute)`` index, i.e. through the pair's index entries; adding
``observed_on`` to that index would make it a range scan from ``d0``.)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sqlalchemy as sa

from usage_pipeline.days import FIRST_DAY, iso_days, parse_dates
from usage_pipeline.feed_headers import ACCOUNT_ID, DATE
from usage_pipeline.feeds.base import FileContext
from usage_pipeline.warehouse.tables import account_attribute_history, attribute_observations

if TYPE_CHECKING:  # pandera is imported where a schema is built: a run with
    import pandera.pandas as pa  # nothing to validate never pays for it


DAY_KIND = "a YYYY-MM-DD date"
# Serialises history updates of concurrent files on PostgreSQL (READ COMMITTED): each update
# then sees every observation committed before it. SQLite serialises writers anyway.
HISTORY_LOCK = 0x41545452  # "ATTR"
_UNNAMED = re.compile(r"^unnamed: \d+$")  # pandas' name for a blank header cell


def lock(conn: sa.Connection, key: int) -> None:
    """Hold a transaction-scoped lock on ``key`` (PostgreSQL; a no-op on SQLite)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def blank_column_problem(header: list[str]) -> str | None:
    """A header cell left blank (e.g. a trailing comma) would become a nameless attribute."""
    for position, name in enumerate(header, start=1):
        if not name or _UNNAMED.match(name):
            return f"column {position} of the header has no name"
    return None


def day_bounds(context: FileContext) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Accepted days: 2009-01-01 up to the day after receipt (or the drop date if later)."""
    last = pd.Timestamp(context.received_at.astimezone(context.tz).date() + timedelta(days=1))
    return pd.Timestamp(FIRST_DAY), max(last, pd.Timestamp(context.drop_day))


@lru_cache(maxsize=64)
def key_columns_schema(
    first_day: pd.Timestamp, last_day: pd.Timestamp, counts: bool
) -> pa.DataFrameSchema:
    """pandera contract of ``account_id`` and ``date`` (and ``##`` counts when ``counts``)."""
    import pandera.pandas as pa

    day_range = pa.Check(
        lambda s: (s >= first_day) & (s <= last_day),
        error=f"is outside the accepted days {first_day.date()} to {last_day.date()}",
    )
    columns: dict[str, pa.Column] = {
        ACCOUNT_ID: pa.Column(object, nullable=False),
        DATE: pa.Column("datetime64[ns]", nullable=False, required=False, checks=[day_range]),
    }
    if counts:
        columns[r"^.*##.*$"] = pa.Column(
            float,
            nullable=False,
            regex=True,
            required=False,
            checks=[
                pa.Check(lambda s: s >= 0, error="is negative"),
                pa.Check(lambda s: s == np.floor(s), error="is not a whole number"),
                pa.Check(lambda s: s <= 2**53 - 1, error="is too large"),
            ],
        )
    return pa.DataFrameSchema(columns, strict=False, name="account keys")


def row_days(raw: pd.DataFrame, context: FileContext) -> tuple[pd.Series, pd.Series | None]:
    """(day of every row, parsed ``date`` column for validation or None).

    A row's day is its ``date`` (``YYYY-MM-DD``), else the file's drop date.
    """
    fallback = pd.Timestamp(context.drop_day)
    day = pd.Series(fallback, index=raw.index, dtype="datetime64[ns]")
    if DATE not in raw.columns:
        return day, None
    dates = parse_dates(raw[DATE])
    return day.where(raw[DATE].isna(), dates), dates.where(raw[DATE].notna(), fallback)


def observation_rows(
    raw: pd.DataFrame, days: pd.Series, attributes: list[str], day_column: str = "observed_on"
) -> pd.DataFrame:
    """One row per non-blank attribute cell of ``raw`` (valid rows only, already filtered):
    ``row_number``, ``account_id``, ``attribute``, ``day_column``, ``value``."""
    columns = ["row_number", ACCOUNT_ID, "attribute", day_column, "value"]
    if not attributes or raw.empty:
        return pd.DataFrame(columns=columns)
    labels = iso_days(days)
    frames = []
    for attribute in attributes:
        present = raw[attribute].notna().to_numpy()
        if not present.any():
            continue
        frames.append(
            pd.DataFrame(
                {
                    "row_number": raw.index.to_numpy(dtype="int64")[present],
                    ACCOUNT_ID: raw[ACCOUNT_ID].to_numpy(dtype=object)[present],
                    "attribute": attribute,
                    day_column: labels[present],
                    "value": raw[attribute].to_numpy(dtype=object)[present],
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True).sort_values("row_number", kind="stable")


@dataclass(frozen=True)
class HistoryChange:
    """What :func:`update_history` did."""

    pairs: int  # (account, attribute) pairs whose history was recomputed
    rows_deleted: int
    rows_inserted: int

    @property
    def touched(self) -> bool:
        return self.pairs > 0

    def notes(self) -> dict[str, int]:
        return {
            "attribute_pairs_touched": self.pairs,
            "history_rows_inserted": self.rows_inserted,
            "history_rows_deleted": self.rows_deleted,
        }


def update_history(conn: sa.Connection, file_id: int, removed: list[int]) -> HistoryChange:
    """Bring ``account_attribute_history`` up to date after file ``file_id``'s observations
    were added and before the superseded versions' ``removed`` ones are deleted (this does
    it). Runs in the caller's transaction.

    Per touched pair with earliest changed day ``d0``: delete its rows starting on or after
    ``d0``; insert a row for each change among the daily values from ``d0`` on (the first
    compared with the value in force before ``d0``); then reset ``valid_to`` of the rows
    that may now end differently (the one in force before ``d0`` and the new ones).
    """
    lock(conn, HISTORY_LOCK)
    o, h = attribute_observations, account_attribute_history
    changed = [file_id, *removed]
    # d0 of every touched pair: its earliest day among the new and the retired observations.
    starts = (
        sa.select(o.c.account_id, o.c.attribute, sa.func.min(o.c.observed_on).label("d0"))
        .where(o.c.file_id.in_(changed))
        .group_by(o.c.account_id, o.c.attribute)
        .subquery("starts")
    )
    pair_count = conn.execute(sa.select(sa.func.count()).select_from(starts)).scalar_one()
    if not pair_count:
        return HistoryChange(0, 0, 0)

    def touched_rows(condition: Callable[[sa.Alias], sa.ColumnElement[bool]]) -> sa.Select:
        """Keys of the touched pairs' history rows meeting ``condition`` (row, d0); joined,
        not correlated, so every database drives it from the file's observations."""
        row = h.alias("touched")
        same_pair = (row.c.account_id == starts.c.account_id) & (
            row.c.attribute == starts.c.attribute
        )
        return (
            sa.select(row.c.account_id, row.c.attribute, row.c.valid_from)
            .select_from(row.join(starts, same_pair))
            .where(condition(row))
        )

    history_key = sa.tuple_(h.c.account_id, h.c.attribute, h.c.valid_from)
    deleted = conn.execute(
        h.delete().where(history_key.in_(touched_rows(lambda r: r.c.valid_from >= starts.c.d0)))
    ).rowcount

    # The daily value (last observation of the day) of every touched pair from d0 on.
    obs = o.alias("obs")
    pair = (obs.c.account_id, obs.c.attribute)
    ranked = sa.select(
        *pair,
        obs.c.observed_on,
        obs.c.value,
        sa.func.row_number()
        .over(
            partition_by=[*pair, obs.c.observed_on],
            order_by=[obs.c.file_id.desc(), obs.c.row_number.desc()],
        )
        .label("recency"),
    ).select_from(
        obs.join(
            starts,
            (obs.c.account_id == starts.c.account_id)
            & (obs.c.attribute == starts.c.attribute)
            & (obs.c.observed_on >= starts.c.d0),
        )
    )
    if removed:
        ranked = ranked.where(obs.c.file_id.not_in(removed))
    ranked = ranked.subquery("ranked")
    daily = (
        sa.select(
            ranked.c.account_id,
            ranked.c.attribute,
            ranked.c.observed_on,
            ranked.c.value,
            sa.func.lag(ranked.c.value)
            .over(
                partition_by=[ranked.c.account_id, ranked.c.attribute],
                order_by=ranked.c.observed_on,
            )
            .label("previous"),
        )
        .where(ranked.c.recency == 1)
        .subquery("daily")
    )
    # The value in force before d0: the latest row left after the delete above.
    seed = h.alias("seed")
    in_force = (
        sa.select(seed.c.value)
        .where(seed.c.account_id == daily.c.account_id, seed.c.attribute == daily.c.attribute)
        .order_by(seed.c.valid_from.desc())
        .limit(1)
        .scalar_subquery()
    )
    steps = sa.select(
        daily.c.account_id,
        daily.c.attribute,
        daily.c.observed_on,
        daily.c.value,
        sa.case((daily.c.previous.is_(None), in_force), else_=daily.c.previous).label("before"),
    ).subquery("steps")
    changes = sa.select(
        steps.c.account_id, steps.c.attribute, steps.c.observed_on, steps.c.value
    ).where(sa.or_(steps.c.before.is_(None), steps.c.before != steps.c.value))
    inserted = conn.execute(
        h.insert()
        .from_select(["account_id", "attribute", "valid_from", "value"], changes)
        .execution_options(preserve_rowcount=True)
    ).rowcount

    later = h.alias("later")
    next_start = (
        sa.select(sa.func.min(later.c.valid_from))
        .where(
            later.c.account_id == h.c.account_id,
            later.c.attribute == h.c.attribute,
            later.c.valid_from > h.c.valid_from,
        )
        .scalar_subquery()
    )
    ending = touched_rows(lambda r: r.c.valid_to.is_(None) | (r.c.valid_to >= starts.c.d0))
    conn.execute(
        h.update()
        .where(history_key.in_(ending), h.c.valid_to.is_distinct_from(next_start))
        .values(valid_to=next_start)
    )
    if removed:
        conn.execute(o.delete().where(o.c.file_id.in_(removed)))
    return HistoryChange(int(pair_count), int(deleted or 0), int(inserted or 0))
