"""Retire a loaded file version's contribution, inside the caller's transaction: what
``usage-pipeline revert`` does, and the first half of ``reprocess`` (which then loads the
same version again in the same transaction).

A feed already knows how to retire versions: :meth:`Feed.apply` removes the ``removed``
versions' rows and recomputes what depends on them (rollup days to rebuild, attribute
history, the account directory, kept events, product usage, billing periods). Retiring is
that step with a load that adds nothing (:data:`NO_FILE`, an id no version has). The days it
changed are queued for their rollups (which queue the snapshots that read them), exactly
as after a load, and the ledger row becomes ``reverted``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import sqlalchemy as sa

from usage_pipeline import billing
from usage_pipeline.feeds import Feed, FeedChange, FileContext
from usage_pipeline.file_status import FileStatus
from usage_pipeline.rollups import mark_rollups
from usage_pipeline.snapshots import mark_latest_snapshots
from usage_pipeline.warehouse.tables import ingested_files, usage_events

NO_FILE = 0  # ledger ids start at 1


class RetireRefused(ValueError):
    """The version's contribution may not be removed; the message is a clause."""


def _final_periods(conn: sa.Connection, context: FileContext, file_id: int) -> list[str]:
    """Billing periods already final that the version holds usage events of."""
    u = usage_events.c
    periods = conn.execute(
        sa.select(u.billing_period).where(u.file_id == file_id).distinct()
    ).scalars()
    settings = context.config.usage_events
    return sorted(
        period
        for period in periods
        if billing.status(period, context.now, context.tz, settings.grace_hours, settings.on_hold)
        == billing.FINAL
    )


def retire_version(
    conn: sa.Connection, feed: Feed, context: FileContext, file_id: int
) -> FeedChange:
    """Remove loaded version ``file_id``'s contribution (``context`` describes its file);
    raise :class:`RetireRefused` when that is not allowed (events of a final billing period,
    or a file the current config can no longer read)."""
    final = _final_periods(conn, context, file_id) if feed.name == "usage_events" else []
    if final:
        raise RetireRefused(
            f"its usage events in billing period {', '.join(final)} are final, and a final"
            " period never changes"
        )
    try:
        prepared = feed.prepare(conn, context)
    except ValueError as exc:
        raise RetireRefused(str(exc)) from exc
    prepared = dataclasses.replace(prepared, loaded_days=frozenset())
    change = feed.apply(conn, prepared, NO_FILE, [file_id])
    mark_rollups(conn, feed.name, change.days)
    mark_latest_snapshots(conn, feed.refreshes_latest_snapshots)
    conn.execute(
        ingested_files.update()
        .where(ingested_files.c.file_id == file_id)
        .values(status=FileStatus.REVERTED.value, processed_at=datetime.now(timezone.utc))
    )
    return change
