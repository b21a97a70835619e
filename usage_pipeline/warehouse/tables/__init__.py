"""SQLAlchemy Core metadata: the single definition of every warehouse table.

Public tables (names and columns are the analysts' contract, SPEC §3) and the internal
per-file tables (``user_activity_contributions`` and the others) that keep each loaded
file's rows, with their row numbers, so that a correction or a revert can replace exactly
that file's contribution and ``explain`` can name the rows behind a number. Import tables
from here; the modules group them (core path, other feeds, internal).
"""

from __future__ import annotations

from usage_pipeline.warehouse.tables.core import (
    account_activity_daily,
    account_activity_months,
    account_activity_state,
    account_hierarchy_snapshot,
    account_top_users,
    account_usage_snapshot,
    accounts,
    ingested_files,
    rejected_rows,
    user_activity_contributions,
    user_activity_daily,
    user_activity_months,
    user_activity_state,
    user_usage_snapshot,
)
from usage_pipeline.warehouse.tables.feeds import (
    account_attribute_history,
    billing_periods,
    events,
    events_daily,
    product_dimensions,
    product_usage,
    usage_events,
    usage_meter_daily,
)
from usage_pipeline.warehouse.tables.internal import (
    account_observations,
    account_usage_contributions,
    alerts_sent,
    attribute_observations,
    event_candidates,
    pending_work,
    pipeline_state,
    product_usage_observations,
    snapshot_dates,
    usage_event_meters,
    usage_event_rows,
)
from usage_pipeline.warehouse.tables.types import (
    FILE_STATUSES,
    STATUS_CHECK,
    Day,
    Id,
    Instant,
    metadata,
)

__all__ = [
    "FILE_STATUSES",
    "STATUS_CHECK",
    "Day",
    "Id",
    "Instant",
    "metadata",
    "ingested_files",
    "rejected_rows",
    "user_activity_contributions",
    "user_activity_daily",
    "account_activity_daily",
    "user_activity_state",
    "user_activity_months",
    "account_activity_state",
    "account_activity_months",
    "account_usage_snapshot",
    "user_usage_snapshot",
    "account_hierarchy_snapshot",
    "account_top_users",
    "accounts",
    "account_attribute_history",
    "product_usage",
    "product_dimensions",
    "usage_events",
    "usage_meter_daily",
    "billing_periods",
    "events",
    "events_daily",
    "account_usage_contributions",
    "attribute_observations",
    "account_observations",
    "product_usage_observations",
    "usage_event_meters",
    "event_candidates",
    "usage_event_rows",
    "pending_work",
    "snapshot_dates",
    "pipeline_state",
    "alerts_sent",
]
