"""Internal tables: per-file contributions that let a correction replace exactly one file,
and the pipeline's bookkeeping."""

from __future__ import annotations

import sqlalchemy as sa

from usage_pipeline.warehouse.tables.types import Day, Id, Instant, metadata

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
    sa.Column("parent_account_id", sa.Text),
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
