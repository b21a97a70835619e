"""How ``usage_events`` rows are stored: staged rows -> new ``usage_events`` and their
``usage_event_meters`` (known refs skipped as duplicates), staging emptied, billing periods
refreshed; and the refusal of a correction that would change a final period."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from usage_pipeline import billing
from usage_pipeline.feeds.base import FeedChange, FileContext
from usage_pipeline.feeds.common import as_date
from usage_pipeline.feeds.usage_events.contract import Layout
from usage_pipeline.feeds.usage_events.state import FileState
from usage_pipeline.warehouse.engine import conflict_insert
from usage_pipeline.warehouse.tables import (
    ingested_files,
    usage_event_meters,
    usage_event_rows,
    usage_events,
)

FEED_NAME = "usage_events"


def refuse_changing_final_periods(
    conn: sa.Connection, context: FileContext, now: datetime
) -> list[int]:
    """A correction retires its key's loaded version; refuse it when that version's
    events lie in a final period (a final period never changes). Returns the versions
    the file retires."""
    f, u = ingested_files.c, usage_events.c
    loaded = sa.select(f.file_id).where(
        f.source_key == context.key, f.status == "loaded", f.feed == FEED_NAME
    )
    ids = [int(i) for i in conn.execute(loaded).scalars()]
    if not ids:
        return ids
    grouped = (
        sa.select(u.billing_period, sa.func.count())
        .where(u.file_id.in_(ids))
        .group_by(u.billing_period)
        .order_by(u.billing_period)
    )
    settings = context.config.usage_events
    for period, count in conn.execute(grouped).all():
        state = billing.status(period, now, context.tz, settings.grace_hours, settings.on_hold)
        if state == billing.FINAL:
            raise ValueError(
                f"it corrects file {ids[0]} (same key), whose {count} event(s) in billing"
                f" period {period} are final, and a final period cannot change; send new"
                " events under a new file name instead"
            )
    return ids


def apply_file(
    conn: sa.Connection, context: FileContext[FileState], file_id: int, removed: list[int]
) -> FeedChange:
    """Retire the superseded versions' events, add this file's new events and their
    meters, count the known refs skipped, empty the staging rows, refresh periods."""
    state = context.state
    s, u = usage_event_rows.c, usage_events.c
    days: set[date] = set()
    lost_periods: set[str] = set()
    events_removed = 0
    if removed:
        days |= _remove_meters(conn, removed)
        lost_periods = set(
            conn.execute(sa.select(u.billing_period).where(u.file_id.in_(removed)).distinct())
            .scalars()
            .all()
        )
        gone = conn.execute(usage_events.delete().where(u.file_id.in_(removed)))
        events_removed = int(gone.rowcount or 0)
        conn.execute(usage_event_rows.delete().where(s.file_id.in_(removed)))

    staged = conn.execute(sa.select(sa.func.count()).where(s.file_id == file_id)).scalar_one()
    conn.execute(_insert_new_events(conn, file_id))
    added = conn.execute(sa.select(sa.func.count()).where(u.file_id == file_id)).scalar_one()
    for _, name in Layout.of(context.config).meters:
        conn.execute(_insert_meters(conn, file_id, name))
    this_file = s.file_id == file_id
    new = usage_events.join(usage_event_rows, (s.event_ref == u.event_ref) & this_file)
    days |= {
        as_date(d)
        for d in conn.execute(
            sa.select(s.day).select_from(new).where(u.file_id == file_id).distinct()
        ).scalars()
    }
    added_periods = set(
        conn.execute(sa.select(u.billing_period).where(u.file_id == file_id).distinct())
        .scalars()
        .all()
    )
    differing, first = _duplicates(conn, file_id)
    conn.execute(usage_event_rows.delete().where(this_file))
    periods = billing.refresh_billing_periods(
        conn, context.config, state.now, has_events=added_periods, recheck=lost_periods
    )
    touched = added_periods | lost_periods
    notes: dict[str, Any] = {
        "events_staged": int(staged),
        "events_added": int(added),
        "duplicate_event_refs": int(staged) - int(added),
        "billing_periods": {p.period: p.status for p in periods if p.period in touched},
    }
    if differing:
        notes["duplicates_with_other_values"] = differing
    if first:
        notes["first_duplicate"] = first
    if removed:
        notes["events_removed"] = events_removed
    duplicates = int(staged) - int(added)
    return FeedChange(
        days=days,
        tables={"usage_events"} if (added or events_removed) else set(),
        notes=notes,
        rows_loaded=int(added) if duplicates else None,
        ledger_note=(
            f"File {context.key}: {duplicates} of {int(staged)} rows skipped as duplicates,"
            f" their event_ref already ingested (first: {first})."
            if duplicates
            else None
        ),
    )


def _remove_meters(conn: sa.Connection, removed: list[int]) -> set[date]:
    """Delete the removed versions' meters; return their days. The ledger's day range
    of each version bounds the (day, file_id) index search."""
    f, m = ingested_files.c, usage_event_meters.c
    bounds = conn.execute(
        sa.select(sa.func.min(f.min_day), sa.func.max(f.max_day)).where(f.file_id.in_(removed))
    ).one()
    if bounds[0] is None:
        return set()
    where = [m.day >= bounds[0], m.day <= bounds[1], m.file_id.in_(removed)]
    found = conn.execute(sa.select(m.day).where(*where).distinct()).scalars()
    days = {as_date(d) for d in found}
    conn.execute(usage_event_meters.delete().where(*where))
    return days


def _insert_new_events(conn: sa.Connection, file_id: int) -> sa.Executable:
    """Staged events whose event_ref is not stored yet. ON CONFLICT DO NOTHING also covers
    a concurrent file committing the same new ref first (PostgreSQL)."""
    s, u = usage_event_rows.c, usage_events.c
    columns = [
        "event_ref",
        "customer_ref",
        "subscription_ref",
        "event",
        "occurred_at",
        "billing_period",
        "properties",
        "meters",
        "file_id",
    ]
    rows = (
        sa.select(*(s[c] for c in columns))
        .where(s.file_id == file_id)
        .where(~sa.exists().where(u.event_ref == s.event_ref))
    )
    return (
        conflict_insert(conn, usage_events)
        .from_select(columns, rows)
        .on_conflict_do_nothing(index_elements=["event_ref"])
    )


def _insert_meters(conn: sa.Connection, file_id: int, meter: str) -> sa.Executable:
    """One ``usage_event_meters`` row per new event of this file with a value for
    ``meter``, read from the staged meters JSON (JSON_EXTRACT / ->>)."""
    s, u = usage_event_rows.c, usage_events.c
    if conn.dialect.name == "postgresql":
        document = sa.cast(s.meters, postgresql.JSONB)
    else:
        document = sa.type_coerce(s.meters, sa.JSON)
    value = document[meter].as_float()
    rows = (
        sa.select(
            s.file_id,
            s.row_number,
            s.event_ref,
            s.day,
            s.customer_ref,
            sa.func.coalesce(s.subscription_ref, ""),
            s.event,
            sa.literal(meter, sa.Text),
            value,
        )
        .select_from(
            usage_event_rows.join(
                usage_events, (u.event_ref == s.event_ref) & (u.file_id == s.file_id)
            )
        )
        .where(s.file_id == file_id, value.is_not(None))
    )
    columns = [
        "file_id",
        "row_number",
        "event_ref",
        "day",
        "customer_ref",
        "subscription_ref",
        "event",
        "meter",
        "value",
    ]
    return usage_event_meters.insert().from_select(columns, rows)


def _duplicates(conn: sa.Connection, file_id: int) -> tuple[int, str | None]:
    """Of the staged refs already stored by another file: how many differ in any value
    from the stored event, and the first one as a phrase."""
    s, u = usage_event_rows.c, usage_events.c
    earlier = usage_event_rows.join(
        usage_events, (u.event_ref == s.event_ref) & (u.file_id != file_id)
    )
    differs = sa.or_(
        u.customer_ref != s.customer_ref,
        sa.func.coalesce(u.subscription_ref, "") != sa.func.coalesce(s.subscription_ref, ""),
        u.event != s.event,
        u.occurred_at != s.occurred_at,
        u.properties != s.properties,
        u.meters != s.meters,
    )
    differing = conn.execute(
        sa.select(sa.func.count()).select_from(earlier).where(s.file_id == file_id, differs)
    ).scalar_one()
    first = conn.execute(
        sa.select(s.row_number, s.event_ref, u.file_id)
        .select_from(earlier)
        .where(s.file_id == file_id)
        .order_by(s.row_number)
        .limit(1)
    ).first()
    sentence = (
        f"row {first.row_number}: event_ref {first.event_ref!r} is already stored from"
        f" file {first.file_id}"
        if first is not None
        else None
    )
    return int(differing), sentence
