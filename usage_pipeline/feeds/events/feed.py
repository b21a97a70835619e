"""The ``events`` feed: its contract, rows and store wired into :class:`Feed`."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from usage_pipeline.feeds.base import ChunkResult, Feed, FeedChange, FileContext
from usage_pipeline.feeds.events.contract import (
    KEY_COLUMNS,
    KINDS,
    EventsFileSettings,
    file_settings,
)
from usage_pipeline.feeds.events.rows import event_rows
from usage_pipeline.feeds.events.store import apply_file
from usage_pipeline.warehouse.tables import event_candidates


class EventsFeed(Feed[EventsFileSettings]):
    """Back-dated behaviour events: de-duplicated by (identity, event, timestamp), throttled
    per identity and event name, invalid rows rejected one by one."""

    name = "events"
    required_columns = KEY_COLUMNS
    optional_columns = ()
    extra_columns_allowed = True
    target = event_candidates
    day_column = "day"
    kinds = KINDS

    def load_state(self, conn: sa.Connection | None, context: FileContext) -> EventsFileSettings:
        return file_settings(conn, context)

    def process_chunk(
        self, raw: pd.DataFrame, context: FileContext[EventsFileSettings]
    ) -> ChunkResult:
        return event_rows(raw, context)

    def apply(
        self,
        conn: sa.Connection,
        context: FileContext[EventsFileSettings],
        file_id: int,
        removed: list[int],
    ) -> FeedChange:
        return apply_file(conn, context, file_id, removed)


EVENTS = EventsFeed()
