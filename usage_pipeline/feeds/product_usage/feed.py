"""The ``product_usage`` feed: its contract, rows and store wired into :class:`Feed`."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.feeds.base import ChunkResult, Feed, FeedChange, FeedCheck, FileContext
from usage_pipeline.feeds.product_usage.contract import (
    UNMATCHED_CHECK,
    import_columns,
    import_problem,
)
from usage_pipeline.feeds.product_usage.rows import product_usage_rows
from usage_pipeline.feeds.product_usage.state import PreparedImport
from usage_pipeline.feeds.product_usage.store import apply_file, check_dimension_types
from usage_pipeline.matching import load_directory
from usage_pipeline.periods import auto_period_start
from usage_pipeline.warehouse.tables import product_usage_observations


class ProductUsageFeed(Feed[PreparedImport]):
    """Statisfy product-usage imports: one value per (product, account, dimension, period),
    or every value as history."""

    name = "product_usage"
    target = product_usage_observations
    day_column = None  # periods, not daily rollups
    check_names = (UNMATCHED_CHECK,)

    def columns(
        self, config: PipelineConfig, import_name: str | None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        imp = config.import_config(import_name) if import_name else None
        return (tuple(import_columns(imp)) if imp else ()), ()

    def file_problem(self, context: FileContext) -> str | None:
        return import_problem(context.config, context.import_name)

    def load_state(self, conn: sa.Connection | None, context: FileContext) -> PreparedImport:
        imp = context.config.import_config(context.import_name or "")
        if imp is None:  # file_problem refused it already; keep the dry run honest
            raise ValueError(self.file_problem(context) or "no import configured")
        if conn is not None:
            check_dimension_types(conn, imp)
        as_of_day = context.now.astimezone(context.tz).date()
        periods = {
            m.product: context.config.product(m.product).snapshot_period for m in imp.mappings
        }
        return PreparedImport(
            imp=imp,
            directory=load_directory(conn, imp.identifier_kind),
            periods=periods,
            auto_starts={
                p: auto_period_start(as_of_day, s).isoformat() for p, s in periods.items()
            },
            warehouse=conn is not None,
        )

    def process_chunk(self, raw: pd.DataFrame, context: FileContext[PreparedImport]) -> ChunkResult:
        return product_usage_rows(raw, context)

    def apply(
        self,
        conn: sa.Connection,
        context: FileContext[PreparedImport],
        file_id: int,
        removed: list[int],
    ) -> FeedChange:
        return apply_file(conn, context, file_id, removed)

    def checks(self, outcome: Any, state: PreparedImport | None = None) -> list[FeedCheck]:
        if outcome.status != "loaded":
            return [
                FeedCheck(
                    UNMATCHED_CHECK,
                    passed=True,
                    description=f"Not evaluated: the file was {outcome.status}.",
                )
            ]
        unmatched = int(outcome.notes.get("unmatched_rows", 0))
        total = outcome.rows_total
        ratio = unmatched / total if total else 0.0
        names = outcome.notes.get("unmatched_identifiers", [])
        metadata = {
            "unmatched_rows": unmatched,
            "rows_total": total,
            "unmatched_ratio": round(ratio, 6),
            "unmatched_identifiers": ", ".join(names),
        }
        if not unmatched:
            return [
                FeedCheck(
                    UNMATCHED_CHECK,
                    True,
                    f"Every row of {outcome.source_key} matched an account.",
                    metadata,
                )
            ]
        more = " …" if unmatched > len(names) else ""
        return [
            FeedCheck(
                UNMATCHED_CHECK,
                passed=False,
                description=(
                    f"{unmatched} of {total} rows of {outcome.source_key} ({ratio:.1%}) match no"
                    f" account and were not loaded: {', '.join(names)}{more}."
                ),
                metadata=metadata,
            )
        ]


PRODUCT_USAGE = ProductUsageFeed()
