"""``accounts``: the account directory used for matching (SPEC §2.4).

File contract: ``account_id``, optional ``crm_id``, then ``domain`` and ``name`` (a missing
``domain`` or ``name`` column rejects the file; a blank cell is a missing value), optional
``parent_account_id`` (the hierarchy). Values are stored as given: matching normalises them
(:mod:`usage_pipeline.matching`). A row without ``account_id``, or whose parent is not in the
directory after the file loads or leads back to the account (a cycle), is rejected alone
(``max_reject_ratio`` applies, as in §2.1; the rule: :mod:`account_parents`). A file with a
``parent_account_id`` column is read twice: first to know every row's parent. The stored
directory's parents are read once per file (memory bounded by the directory, as matching's).

**Latest file wins per account**: an account's row in ``accounts`` is its last row in the
loaded file with the highest ``file_id`` that lists it (the whole row: a blank ``crm_id``
there means no CRM ID, not "keep the old one"). Each file's rows are kept in
``account_observations``, so a correction (same key, new bytes) replaces that file's rows and
the accounts it touched fall back to the next latest file; an account listed only by
retired versions disappears.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import pandas as pd
import sqlalchemy as sa

from usage_pipeline.feed_headers import ACCOUNT_PARENT, ACCOUNT_VALUE_COLUMNS
from usage_pipeline.feeds.account_parents import parent_errors
from usage_pipeline.feeds.attribute_history import ACCOUNT_ID, blank_column_problem, lock
from usage_pipeline.feeds.base import ChunkResult, Feed, FeedChange, FileContext
from usage_pipeline.feeds.common import ERROR_COLUMNS, merge_errors
from usage_pipeline.feeds.validation import validate
from usage_pipeline.warehouse.tables import account_observations, accounts

if TYPE_CHECKING:
    import pandera.pandas as pa

VALUE_COLUMNS = ACCOUNT_VALUE_COLUMNS
ACCOUNTS_LOCK = 0x41434354  # "ACCT": serialises directory updates on PostgreSQL


@lru_cache(maxsize=1)
def accounts_schema() -> pa.DataFrameSchema:
    """The pandera contract of an accounts chunk: every row names its account."""
    import pandera.pandas as pa

    return pa.DataFrameSchema(
        {ACCOUNT_ID: pa.Column(object, nullable=False)}, strict=False, name="accounts"
    )


@dataclass
class DirectoryParents:
    """What an accounts file's parents are checked against (``FileContext.lookup``)."""

    stored: dict[str, str | None]  # the stored directory: account -> parent
    errors: dict[int, tuple[str, str]] | None = None  # row -> (kind, sentence), after survey


def _present(values: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) else str(v) for v in values]


def _parent_error_rows(failed: pd.DataFrame, hierarchy: dict[int, tuple[str, str]]) -> pd.DataFrame:
    """The errors (``ERROR_COLUMNS``) of the rows that break the hierarchy rule."""
    return pd.DataFrame(
        {
            "row_number": failed.index.to_numpy(dtype="int64"),
            "column_name": ACCOUNT_PARENT,
            "value": failed[ACCOUNT_PARENT].to_numpy(dtype=object),
            "error": [hierarchy[n][1] for n in failed.index],
        },
        columns=ERROR_COLUMNS,
    )


class AccountsFeed(Feed[DirectoryParents]):
    """One row per account; the latest loaded file that lists an account wins."""

    name = "accounts"
    required_columns = (ACCOUNT_ID, "domain", "name")
    optional_columns = ("crm_id", ACCOUNT_PARENT)
    target = account_observations
    # Snapshot membership includes every account of the directory; the hierarchy too.
    refreshes_latest_snapshots = ("account_usage_snapshot", "account_hierarchy_snapshot")

    def header_problem(self, header: list[str], context: FileContext) -> str | None:
        return blank_column_problem(header) or super().header_problem(header, context)

    def load_state(self, conn: sa.Connection | None, context: FileContext) -> DirectoryParents:
        """The stored directory's parents, read before any row is written (on PostgreSQL the
        rows stream through one COPY, during which nothing else runs on the connection)."""
        if conn is None:
            return DirectoryParents({})
        query = sa.select(accounts.c.account_id, accounts.c.parent_account_id)
        return DirectoryParents({str(a): p for a, p in conn.execute(query).tuples()})

    def surveys(self, header: list[str]) -> bool:
        return ACCOUNT_PARENT in header

    def survey(self, valid_rows: Iterator[pd.DataFrame], context: FileContext) -> None:
        rows: list[tuple[int, str, str | None]] = []
        for frame in valid_rows:
            ids, parents = _present(frame[ACCOUNT_ID]), _present(frame[ACCOUNT_PARENT])
            rows += zip(frame["row_number"].tolist(), ids, parents, strict=True)
        context.state.errors = parent_errors(context.state.stored, rows)

    def process_chunk(self, raw: pd.DataFrame, context: FileContext) -> ChunkResult:
        valid, errors, tally = validate(raw[[ACCOUNT_ID]], raw, accounts_schema(), self.kinds)
        good = raw[valid.to_numpy()]
        hierarchy = context.lookup.errors if context.lookup is not None else None
        if hierarchy:
            failed = good.index.isin(list(hierarchy))
            tally.update(f"{ACCOUNT_PARENT}: {hierarchy[n][0]}" for n in good.index[failed])
            errors = merge_errors([errors, _parent_error_rows(good[failed], hierarchy)])
            good = good[~failed]
        rows = pd.DataFrame(
            {
                "row_number": good.index.to_numpy(dtype="int64"),
                ACCOUNT_ID: good[ACCOUNT_ID].to_numpy(dtype=object),
                **{
                    column: good[column].to_numpy(dtype=object) if column in good.columns else None
                    for column in VALUE_COLUMNS
                },
            }
        )
        return ChunkResult(rows=rows, errors=errors, failures=tally)

    def apply(
        self, conn: sa.Connection, context: FileContext, file_id: int, removed: list[int]
    ) -> FeedChange:
        """Rewrite the ``accounts`` rows of the accounts this file or the retired versions
        list, from the observations still loaded; then drop the retired observations.

        When no retired version is involved and no loaded file is newer than this one (the
        nightly case), this file wins for every account it lists, so only its own rows are
        read; otherwise every remaining observation of the touched accounts is ranked."""
        lock(conn, ACCOUNTS_LOCK)
        o = account_observations.c
        changed = [file_id, *removed]
        touched = sa.select(o.account_id).where(o.file_id.in_(changed))
        newer = conn.execute(
            sa.select(o.file_id).where(o.file_id > file_id).limit(1)
        ).scalar_one_or_none()
        gone = 0
        if removed:  # an account none of the remaining files lists disappears
            gone = conn.execute(
                sa.select(sa.func.count(o.account_id.distinct())).where(o.file_id.in_(changed))
            ).scalar_one()
        conn.execute(accounts.delete().where(accounts.c.account_id.in_(touched)))
        ranked = sa.select(
            o.account_id,
            *(o[c] for c in VALUE_COLUMNS),
            sa.func.row_number()
            .over(partition_by=o.account_id, order_by=[o.file_id.desc(), o.row_number.desc()])
            .label("recency"),
        )
        if removed or newer is not None:
            ranked = ranked.where(o.account_id.in_(touched))
            if removed:
                ranked = ranked.where(o.file_id.not_in(removed))
        else:
            ranked = ranked.where(o.file_id == file_id)
        ranked = ranked.subquery("ranked")
        latest = sa.select(ranked.c.account_id, *(ranked.c[c] for c in VALUE_COLUMNS)).where(
            ranked.c.recency == 1
        )
        written = conn.execute(
            accounts.insert()
            .from_select([ACCOUNT_ID, *VALUE_COLUMNS], latest)
            .execution_options(preserve_rowcount=True)
        ).rowcount
        written = int(written or 0)
        if removed:
            conn.execute(account_observations.delete().where(o.file_id.in_(removed)))
            gone -= written
        return FeedChange(
            tables={"accounts"}, notes={"accounts_written": written, "accounts_removed": gone}
        )


ACCOUNTS = AccountsFeed()
