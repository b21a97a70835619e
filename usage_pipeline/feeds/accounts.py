"""``accounts``: the account directory used for matching (SPEC §2.4).

File contract: ``account_id``, optional ``crm_id``, then ``domain`` and ``name`` (a missing
``domain`` or ``name`` column rejects the file; a blank cell is a missing value). Values are
stored as given: matching normalises them (:mod:`usage_pipeline.matching`). A row without
``account_id`` is rejected alone (``max_reject_ratio`` applies, as in §2.1).

**Latest file wins per account**: an account's row in ``accounts`` is its last row in the
loaded file with the highest ``file_id`` that lists it (the whole row: a blank ``crm_id``
there means no CRM ID, not "keep the old one"). Each file's rows are kept in
``account_observations``, so a correction (same key, new bytes) replaces that file's rows and
the accounts it touched fall back to the next latest file; an account listed only by
retired versions disappears.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import pandas as pd
import sqlalchemy as sa

from usage_pipeline.feed_headers import ACCOUNT_VALUE_COLUMNS
from usage_pipeline.feeds.attribute_history import ACCOUNT_ID, blank_column_problem, lock
from usage_pipeline.feeds.base import ChunkResult, Feed, FeedChange, FileContext
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


class AccountsFeed(Feed[None]):
    """One row per account; the latest loaded file that lists an account wins."""

    name = "accounts"
    required_columns = (ACCOUNT_ID, "domain", "name")
    optional_columns = ("crm_id",)
    target = account_observations
    # Snapshot membership includes every account of the directory.
    refreshes_latest_snapshots = ("account_usage_snapshot",)

    def header_problem(self, header: list[str], context: FileContext) -> str | None:
        return blank_column_problem(header) or super().header_problem(header, context)

    def process_chunk(self, raw: pd.DataFrame, context: FileContext) -> ChunkResult:
        valid, errors, tally = validate(raw[[ACCOUNT_ID]], raw, accounts_schema(), self.kinds)
        good = raw[valid.to_numpy()]
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
