"""What a loaded file implies downstream, read from materialisation events.

Dagster has no file -> day partition mapping, so the link is the ``days_touched`` metadata
of each ``inbox_file`` materialisation: every touched day gets a rollup run, and every
rolled-up day refreshes the snapshots that already exist within the 60 days after it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg
import sqlalchemy as sa

from usage_pipeline.defs.daily import ACCOUNT_ACTIVITY_DAILY, SNAPSHOT_LOOKBACK_DAYS
from usage_pipeline.defs.ingestion import INBOX_FILE
from usage_pipeline.warehouse.engine import read_connection
from usage_pipeline.warehouse.tables import account_usage_snapshot

BATCH = 1000


@dataclass(frozen=True)
class FollowupCursor:
    """Storage ids of the last ``inbox_file`` and ``account_activity_daily`` events handled."""

    files: int = 0
    rollups: int = 0

    @staticmethod
    def parse(text: str | None) -> FollowupCursor:
        return FollowupCursor(**json.loads(text)) if text else FollowupCursor()

    def dump(self) -> str:
        return json.dumps({"files": self.files, "rollups": self.rollups})


@dataclass(frozen=True)
class PartitionRun:
    partition_key: str
    run_key: str


def _records(instance: dg.DagsterInstance, key: dg.AssetKey, after: int) -> list:
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=BATCH, ascending=True
    )
    return list(result.records)


def plan_rollups(
    instance: dg.DagsterInstance, cursor: FollowupCursor
) -> tuple[list[PartitionRun], FollowupCursor]:
    """One rollup run per day touched by files materialised since the cursor."""
    latest_event: dict[str, int] = {}
    last = cursor.files
    for record in _records(instance, INBOX_FILE, cursor.files):
        last = record.storage_id
        materialization = record.asset_materialization
        value = materialization.metadata.get("days_touched") if materialization else None
        for day in (value.value if value is not None else []) or []:
            latest_event[day] = record.storage_id
    runs = [
        PartitionRun(day, f"rollup:{day}:{event}") for day, event in sorted(latest_event.items())
    ]
    return runs, FollowupCursor(last, cursor.rollups)


def plan_snapshot_refreshes(
    instance: dg.DagsterInstance, engine: sa.Engine, cursor: FollowupCursor
) -> tuple[list[PartitionRun], FollowupCursor]:
    """Existing snapshots that read a day re-rolled since the cursor (60-day windows)."""
    rolled: dict[date, int] = {}
    last = cursor.rollups
    for record in _records(instance, ACCOUNT_ACTIVITY_DAILY, cursor.rollups):
        last = record.storage_id
        if record.partition_key:
            rolled[date.fromisoformat(record.partition_key)] = record.storage_id
    refresh: dict[date, int] = {}
    if rolled:
        column = account_usage_snapshot.c.snapshot_date
        with read_connection(engine) as conn:
            existing = (
                conn.execute(
                    sa.select(column)
                    .distinct()
                    .where(
                        column.between(
                            min(rolled), max(rolled) + timedelta(days=SNAPSHOT_LOOKBACK_DAYS)
                        )
                    )
                )
                .scalars()
                .all()
            )
        for snapshot_day in existing:
            snapshot_day = (
                snapshot_day if isinstance(snapshot_day, date) else date.fromisoformat(snapshot_day)
            )
            for day, event in rolled.items():
                if day <= snapshot_day <= day + timedelta(days=SNAPSHOT_LOOKBACK_DAYS):
                    refresh[snapshot_day] = max(refresh.get(snapshot_day, 0), event)
    runs = [
        PartitionRun(day.isoformat(), f"snapshot:{day.isoformat()}:{event}")
        for day, event in sorted(refresh.items())
    ]
    return runs, FollowupCursor(cursor.files, last)
