"""The ledger and the ``user_activity`` path: contributions, daily rollups, activity state,
snapshots, the account directory."""

from __future__ import annotations

import sqlalchemy as sa

from usage_pipeline.warehouse.tables.types import STATUS_CHECK, Day, Id, Instant, metadata

ingested_files = sa.Table(
    "ingested_files",
    metadata,
    sa.Column("file_id", Id, primary_key=True, autoincrement=True),
    sa.Column("feed", sa.Text, nullable=False),
    sa.Column("source_key", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("rows_total", sa.BigInteger),
    sa.Column("rows_loaded", sa.BigInteger),
    sa.Column("rows_rejected", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("received_at", Instant, nullable=False),
    sa.Column("processed_at", Instant),
    sa.Column("min_day", Day),
    sa.Column("max_day", Day),
    sa.UniqueConstraint("source_key", "sha256", name="uq_ingested_files_identity"),
    sa.CheckConstraint(STATUS_CHECK, name="ck_ingested_files_status"),
    sa.Index("ix_ingested_files_feed_sha", "feed", "sha256"),
)

rejected_rows = sa.Table(
    "rejected_rows",
    metadata,
    sa.Column("file_id", Id, primary_key=True),
    sa.Column("row_number", sa.BigInteger, primary_key=True),
    sa.Column("column_name", sa.Text, primary_key=True),
    sa.Column("value", sa.Text),
    sa.Column("error", sa.Text, nullable=False),
)

user_activity_contributions = sa.Table(
    "user_activity_contributions",
    metadata,
    sa.Column("file_id", Id, nullable=False),
    sa.Column("row_number", sa.BigInteger),  # the file's row (header = 1); null before lineage
    sa.Column("activity_date", Day, nullable=False),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("module", sa.Text, nullable=False),
    sa.Column("activity", sa.Text, nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Index("ix_user_activity_contributions_day_file", "activity_date", "file_id"),
)

user_activity_daily = sa.Table(
    "user_activity_daily",
    metadata,
    sa.Column("activity_date", Day, primary_key=True),
    sa.Column("account_id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("module", sa.Text, primary_key=True),
    sa.Column("activity", sa.Text, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)

account_activity_daily = sa.Table(
    "account_activity_daily",
    metadata,
    sa.Column("activity_date", Day, primary_key=True),
    sa.Column("account_id", sa.Text, primary_key=True),
    sa.Column("module", sa.Text, primary_key=True),
    sa.Column("activity", sa.Text, primary_key=True),
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("active_users", sa.BigInteger),
)


# What snapshots need from before their window (internal): per user and per account, the
# first day with any row and the last day with count > 0, over all time (``*_state``) and
# per calendar month (``*_months``, from which a state is recomputed after a correction).
# Kept by the daily rollups, so a snapshot reads its 60-day window plus these, never the
# whole history (see activity_state.py).
def _activity_state(name: str, keys: tuple[str, ...], month: bool) -> sa.Table:
    columns = [sa.Column(key, sa.Text, primary_key=True) for key in keys]
    if month:
        columns.append(sa.Column("month", Day, primary_key=True))
    indexes = [] if month else [sa.Index(f"ix_{name}_first", "first_day")]
    indexes += [] if month else [sa.Index(f"ix_{name}_last", "last_active_day")]
    return sa.Table(
        name,
        metadata,
        *columns,
        sa.Column("first_day", Day),  # null only between a recompute and its cleanup
        sa.Column("last_active_day", Day),
        *indexes,
    )


user_activity_state = _activity_state("user_activity_state", ("account_id", "user_id"), False)
user_activity_months = _activity_state("user_activity_months", ("account_id", "user_id"), True)
account_activity_state = _activity_state("account_activity_state", ("account_id",), False)
account_activity_months = _activity_state("account_activity_months", ("account_id",), True)


def _account_usage_columns() -> list[sa.Column]:
    """The usage columns of an account snapshot (fresh objects for each table)."""
    return [
        sa.Column("active_users_1d", sa.BigInteger, nullable=False),
        sa.Column("active_users_7d", sa.BigInteger, nullable=False),
        sa.Column("active_users_30d", sa.BigInteger, nullable=False),
        sa.Column("activity_1d", sa.BigInteger, nullable=False),
        sa.Column("activity_7d", sa.BigInteger, nullable=False),
        sa.Column("activity_30d", sa.BigInteger, nullable=False),
        sa.Column("activity_change_30d_pct", sa.Float),
        sa.Column("top_module_30d", sa.Text),
        sa.Column("last_activity_date", Day),
        sa.Column("days_since_last_activity", sa.Integer),
    ]


account_usage_snapshot = sa.Table(
    "account_usage_snapshot",
    metadata,
    sa.Column("snapshot_date", Day, primary_key=True),
    sa.Column("account_id", sa.Text, primary_key=True),
    *_account_usage_columns(),
)

# The same columns over each account and all its descendants in the directory's hierarchy
# (accounts.parent_account_id), users distinct across the subtree.
account_hierarchy_snapshot = sa.Table(
    "account_hierarchy_snapshot",
    metadata,
    sa.Column("snapshot_date", Day, primary_key=True),
    sa.Column("account_id", sa.Text, primary_key=True),
    sa.Column("accounts_in_subtree", sa.BigInteger, nullable=False),
    *_account_usage_columns(),
)

user_usage_snapshot = sa.Table(
    "user_usage_snapshot",
    metadata,
    sa.Column("snapshot_date", Day, primary_key=True),
    sa.Column("account_id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("last_active_date", Day),
    sa.Column("days_since_last_active", sa.Integer),
    sa.Column("activity_7d", sa.BigInteger, nullable=False),
    sa.Column("activity_30d", sa.BigInteger, nullable=False),
    sa.Column("top_module_30d", sa.Text),
)

# The five most active users of each account in the 30 days ending on snapshot_date (ties:
# user_id in binary order; users without activity are left out).
account_top_users = sa.Table(
    "account_top_users",
    metadata,
    sa.Column("snapshot_date", Day, primary_key=True),
    sa.Column("account_id", sa.Text, primary_key=True),
    sa.Column("rank", sa.SmallInteger, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("activity_30d", sa.BigInteger, nullable=False),
    sa.CheckConstraint("rank BETWEEN 1 AND 5", name="ck_account_top_users_rank"),
)

# The accounts directory (SPEC §2.4); filled by the accounts feed, read by snapshots.
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", sa.Text, primary_key=True),
    sa.Column("crm_id", sa.Text),
    sa.Column("domain", sa.Text),
    sa.Column("name", sa.Text),
    sa.Column("parent_account_id", sa.Text),  # the hierarchy: null for a top-level account
)
