"""Public tables of the seed feeds beyond ``user_activity`` (SPEC §2.2-§2.7)."""

from __future__ import annotations

import sqlalchemy as sa

from usage_pipeline.warehouse.tables.types import Day, Id, Instant, metadata

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
