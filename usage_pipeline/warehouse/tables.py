"""SQLAlchemy Core metadata: the single definition of every warehouse table.

Public tables (names and columns are the analysts' contract, SPEC §3) and the internal
per-file tables (``user_activity_contributions`` and the others) that keep each loaded
file's rows, with their row numbers, so that a correction or a revert can replace exactly
that file's contribution and ``explain`` can name the rows behind a number.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# BIGINT in PostgreSQL, INTEGER (the rowid alias that autoincrements) in SQLite.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Day = sa.Date
Instant = sa.DateTime(timezone=True)

FILE_STATUSES = ("processing", "loaded", "rejected", "duplicate", "superseded", "reverted")
STATUS_CHECK = f"status IN ({', '.join(repr(status) for status in FILE_STATUSES)})"

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

account_usage_snapshot = sa.Table(
    "account_usage_snapshot",
    metadata,
    sa.Column("snapshot_date", Day, primary_key=True),
    sa.Column("account_id", sa.Text, primary_key=True),
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
)

# ---------------------------------------------------------------------------------------
# Seed feeds beyond user_activity (SPEC §2.2-§2.7). Public tables first, then the internal
# per-file tables that let a correction replace exactly one file's contribution.

account_attribute_history = sa.Table(
    "account_attribute_history",
    metadata,
    sa.Column("account_id", sa.Text, primary_key=True),
    sa.Column("attribute", sa.Text, primary_key=True),
    sa.Column("valid_from", Day, primary_key=True),
    sa.Column("value", sa.Text),
    sa.Column("valid_to", Day),  # exclusive: the day the next value starts; null = current
)

product_usage = sa.Table(
    "product_usage",
    metadata,
    sa.Column("product", sa.Text, primary_key=True),
    sa.Column("account_id", sa.Text, primary_key=True),
    sa.Column("dimension", sa.Text, primary_key=True),
    sa.Column("period_start", Day, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("period", sa.String(16), nullable=False),
    sa.Column("value_numeric", sa.Float),
    sa.Column("value_text", sa.Text),
    sa.Column("value_boolean", sa.Boolean),
    sa.Column("file_id", Id, nullable=False),
)

product_dimensions = sa.Table(
    "product_dimensions",
    metadata,
    sa.Column("product", sa.Text, primary_key=True),
    sa.Column("dimension", sa.Text, primary_key=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("created_file_id", Id, nullable=False),
)

usage_events = sa.Table(
    "usage_events",
    metadata,
    sa.Column("event_ref", sa.Text, primary_key=True),
    sa.Column("customer_ref", sa.Text, nullable=False),
    sa.Column("subscription_ref", sa.Text),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("occurred_at", Instant, nullable=False),
    sa.Column("billing_period", sa.String(7), nullable=False),
    sa.Column("properties", sa.Text, nullable=False),
    sa.Column("meters", sa.Text, nullable=False),
    sa.Column("file_id", Id, nullable=False),
    sa.Index("ix_usage_events_file", "file_id"),
    sa.Index("ix_usage_events_period", "billing_period"),
)

usage_meter_daily = sa.Table(
    "usage_meter_daily",
    metadata,
    sa.Column("day", Day, primary_key=True),
    sa.Column("customer_ref", sa.Text, primary_key=True),
    sa.Column("subscription_ref", sa.Text, primary_key=True),  # '' when the event had none
    sa.Column("event", sa.Text, primary_key=True),
    sa.Column("meter", sa.Text, primary_key=True),
    sa.Column("total", sa.Float, nullable=False),
    sa.Column("events", sa.BigInteger, nullable=False),
)

billing_periods = sa.Table(
    "billing_periods",
    metadata,
    sa.Column("period", sa.String(7), primary_key=True),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("closes_at", Instant, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("identity", sa.Text, primary_key=True),
    sa.Column("event", sa.Text, primary_key=True),
    sa.Column("occurred_at", Instant, primary_key=True),
    sa.Column("properties", sa.Text, nullable=False),
    sa.Column("file_id", Id, nullable=False),
)

events_daily = sa.Table(
    "events_daily",
    metadata,
    sa.Column("day", Day, primary_key=True),
    sa.Column("event", sa.Text, primary_key=True),
    sa.Column("events", sa.BigInteger, nullable=False),
    sa.Column("identities", sa.BigInteger, nullable=False),
)

# Internal per-file tables -------------------------------------------------------------

account_usage_contributions = sa.Table(
    "account_usage_contributions",
    metadata,
    sa.Column("file_id", Id, nullable=False),
    sa.Column("row_number", sa.BigInteger),  # the account's winning row; null before lineage
    sa.Column("activity_date", Day, nullable=False),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("module", sa.Text, nullable=False),
    sa.Column("activity", sa.Text, nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Index("ix_account_usage_contributions_day_file", "activity_date", "file_id"),
)

attribute_observations = sa.Table(
    "attribute_observations",
    metadata,
    sa.Column("file_id", Id, nullable=False),
    sa.Column("row_number", sa.BigInteger, nullable=False),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("attribute", sa.Text, nullable=False),
    sa.Column("observed_on", Day, nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index("ix_attribute_observations_account", "account_id", "attribute"),
    sa.Index("ix_attribute_observations_file", "file_id"),
)

account_observations = sa.Table(
    "account_observations",
    metadata,
    sa.Column("file_id", Id, nullable=False),
    sa.Column("row_number", sa.BigInteger, nullable=False),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("crm_id", sa.Text),
    sa.Column("domain", sa.Text),
    sa.Column("name", sa.Text),
    sa.Index("ix_account_observations_account", "account_id"),
    sa.Index("ix_account_observations_file", "file_id"),
)

product_usage_observations = sa.Table(
    "product_usage_observations",
    metadata,
    sa.Column("file_id", Id, nullable=False),
    sa.Column("row_number", sa.BigInteger, nullable=False),
    sa.Column("product", sa.Text, nullable=False),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("dimension", sa.Text, nullable=False),
    sa.Column("period_start", Day, nullable=False),
    sa.Column("period", sa.String(16), nullable=False),
    sa.Column("value_numeric", sa.Float),
    sa.Column("value_text", sa.Text),
    sa.Column("value_boolean", sa.Boolean),
    sa.Index("ix_product_usage_observations_key", "product", "account_id", "dimension"),
    sa.Index("ix_product_usage_observations_file", "file_id"),
)

usage_event_meters = sa.Table(
    "usage_event_meters",
    metadata,
    sa.Column("file_id", Id, nullable=False),
    sa.Column("row_number", sa.BigInteger),  # the event's row in its file; null before lineage
    sa.Column("event_ref", sa.Text, nullable=False),
    sa.Column("day", Day, nullable=False),
    sa.Column("customer_ref", sa.Text, nullable=False),
    sa.Column("subscription_ref", sa.Text, nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("meter", sa.Text, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Index("ix_usage_event_meters_day_file", "day", "file_id"),
)

event_candidates = sa.Table(
    "event_candidates",
    metadata,
    sa.Column("file_id", Id, nullable=False),
    sa.Column("row_number", sa.BigInteger, nullable=False),
    sa.Column("identity", sa.Text, nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("occurred_at", Instant, nullable=False),
    sa.Column("day", Day, nullable=False),
    sa.Column("properties", sa.Text, nullable=False),
    sa.Index("ix_event_candidates_key", "identity", "event", "occurred_at"),
    sa.Index("ix_event_candidates_file", "file_id"),
)

# Staging of a usage_events file before event_ref de-duplication (one file at a time).
usage_event_rows = sa.Table(
    "usage_event_rows",
    metadata,
    sa.Column("file_id", Id, nullable=False),
    sa.Column("row_number", sa.BigInteger, nullable=False),
    sa.Column("event_ref", sa.Text, nullable=False),
    sa.Column("customer_ref", sa.Text, nullable=False),
    sa.Column("subscription_ref", sa.Text),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("occurred_at", Instant, nullable=False),
    sa.Column("day", Day, nullable=False),
    sa.Column("billing_period", sa.String(7), nullable=False),
    sa.Column("properties", sa.Text, nullable=False),
    sa.Column("meters", sa.Text, nullable=False),
    sa.Index("ix_usage_event_rows_file", "file_id"),
)

# Pipeline bookkeeping (internal) -------------------------------------------------------

# Days whose derived tables must be rebuilt: an outbox written in the transaction that
# changes their inputs (a file's load, a rollup) and consumed by the rebuild, which deletes
# the rows it saw. ``kind`` is a daily rollup's name or ``snapshots``.
pending_work = sa.Table(
    "pending_work",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("day", Day, nullable=False),
    sa.Index("ix_pending_work_kind_day", "kind", "day"),
)

# Every (snapshot table, date) built, also when it has no rows: for refreshes after late
# files and for building the nights that were missed.
snapshot_dates = sa.Table(
    "snapshot_dates",
    metadata,
    sa.Column("snapshot_table", sa.String(32), primary_key=True),
    sa.Column("snapshot_date", Day, primary_key=True),
    sa.Column("built_at", Instant, nullable=False),
)

# Small named values the pipeline keeps between runs (the CLI's inbox cursor).
pipeline_state = sa.Table(
    "pipeline_state",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", Instant, nullable=False),
)

# Webhook alerts already delivered, one row per cause (a rejected file version, a failing
# drop watch of one feed and night, ...): an alert is never posted twice for one cause.
# ``subject`` groups the causes of one watch and night (for the "cleared" message).
alerts_sent = sa.Table(
    "alerts_sent",
    metadata,
    sa.Column("cause", sa.Text, primary_key=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("sent_at", Instant, nullable=False),
    sa.Index("ix_alerts_sent_subject", "subject"),
)
