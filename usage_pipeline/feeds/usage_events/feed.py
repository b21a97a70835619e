"""The ``usage_events`` feed: its contract, rows and store wired into :class:`Feed`."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd
import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.feeds.base import ChunkResult, Feed, FeedChange, FeedCheck, FileContext
from usage_pipeline.feeds.usage_events.contract import (
    CLOSED_PERIOD_CHECK,
    KINDS,
    OPTIONAL_FIXED,
    REQUIRED_FIXED,
    Layout,
    usage_events_schema,
)
from usage_pipeline.feeds.usage_events.known_refs import KnownRefs
from usage_pipeline.feeds.usage_events.rows import usage_event_rows
from usage_pipeline.feeds.usage_events.state import FileState
from usage_pipeline.feeds.usage_events.store import apply_file, refuse_changing_final_periods
from usage_pipeline.warehouse.tables import usage_event_rows as staging_table


class UsageEventsFeed(Feed[FileState]):
    """Billable usage events, strict, de-duplicated by ``event_ref`` across files."""

    name = "usage_events"
    required_columns = REQUIRED_FIXED
    optional_columns = OPTIONAL_FIXED
    target = staging_table
    day_column = "day"
    strict = True
    kinds = KINDS
    check_names = (CLOSED_PERIOD_CHECK,)

    def columns(
        self, config: PipelineConfig, import_name: str | None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return (*REQUIRED_FIXED, *Layout.of(config).configured_columns), OPTIONAL_FIXED

    def file_problem(self, context: FileContext) -> str | None:
        return Layout.of(context.config).problem()

    def load_state(self, conn: sa.Connection | None, context: FileContext) -> FileState:
        now = context.now
        retired = refuse_changing_final_periods(conn, context, now) if conn is not None else []
        layout = Layout.of(context.config)
        return FileState(
            now=now,
            dialect=conn.dialect.name if conn is not None else "sqlite",
            schema=usage_events_schema(layout.meter_columns, now, context.tz),
            kinds=layout.kinds(),
            known=KnownRefs(conn.engine if conn is not None else None, retired),
        )

    def process_chunk(self, raw: pd.DataFrame, context: FileContext[FileState]) -> ChunkResult:
        return usage_event_rows(raw, context)

    def apply(
        self, conn: sa.Connection, context: FileContext[FileState], file_id: int, removed: list[int]
    ) -> FeedChange:
        return apply_file(conn, context, file_id, removed)

    def checks(self, outcome: Any, state: FileState | None = None) -> list[FeedCheck]:
        """``closed_period_events`` fails with the count of rows dated in final periods."""
        found = state.final_periods if state is not None else Counter()
        per_period = dict(sorted(found.items()))
        total = sum(per_period.values())
        description = (
            "No event is dated in a final billing period."
            if not total
            else f"{total} event(s) are dated in final billing periods"
            f" ({', '.join(f'{p}: {n}' for p, n in per_period.items())}); the file is"
            " rejected. New events of a final period are never accepted (stored ones are"
            " skipped as duplicates); put a period on hold"
            " (usage_events.on_hold) before it closes to keep it open for late usage."
        )
        return [
            FeedCheck(
                CLOSED_PERIOD_CHECK,
                passed=total == 0,
                description=description,
                metadata={"events_in_final_periods": total, "periods": per_period},
            )
        ]


USAGE_EVENTS = UsageEventsFeed()
