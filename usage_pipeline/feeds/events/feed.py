"""The ``events`` feed: its contract, rows (plain files and imports) and store wired into
:class:`Feed`."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.feed_headers import event_import_columns
from usage_pipeline.feeds.base import ChunkResult, Feed, FeedChange, FileContext
from usage_pipeline.feeds.events.contract import (
    KEY_COLUMNS,
    KINDS,
    EventsFileSettings,
    file_settings,
)
from usage_pipeline.feeds.events.imports import folder_hint, import_rows
from usage_pipeline.feeds.events.imports import header_problem as import_header_problem
from usage_pipeline.feeds.events.rows import event_rows
from usage_pipeline.feeds.events.store import apply_file
from usage_pipeline.warehouse.tables import event_candidates


class EventsFeed(Feed[EventsFileSettings]):
    """Back-dated behaviour events: de-duplicated by (identity, event, timestamp), throttled
    per identity and event name, invalid rows rejected one by one. A file in
    ``events/<import>/`` of a configured import is a table export read through it."""

    name = "events"
    required_columns = KEY_COLUMNS
    optional_columns = ()
    extra_columns_allowed = True
    target = event_candidates
    day_column = "day"
    kinds = KINDS

    def columns(
        self, config: PipelineConfig, import_name: str | None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        imp = config.events.import_config(import_name)
        return (tuple(event_import_columns(imp)) if imp else KEY_COLUMNS), ()

    def header_problem(self, header: list[str], context: FileContext) -> str | None:
        """An import's columns; a plain file's, with a hint when it sits in a folder that is
        not a configured import (a typo in the folder name reads as a plain file)."""
        config, name = context.config, context.import_name
        imp = config.events.import_config(name)
        if imp is not None:
            return import_header_problem(header, imp)
        problem = super().header_problem(header, context)
        return f"{problem} ({folder_hint(config, name)})" if problem and name else problem

    def load_state(self, conn: sa.Connection | None, context: FileContext) -> EventsFileSettings:
        return file_settings(conn, context)

    def process_chunk(
        self, raw: pd.DataFrame, context: FileContext[EventsFileSettings]
    ) -> ChunkResult:
        if context.state.imp is not None:
            return import_rows(raw, context)
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
