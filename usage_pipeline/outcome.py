"""What happened to one file version: the ingestion result the runs, checks and CLI read."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from usage_pipeline.feeds import FeedCheck


@dataclass
class IngestOutcome:
    """What happened to one file version (also the Dagster materialisation metadata).
    ``status`` is a :class:`~usage_pipeline.file_status.FileStatus` value."""

    source_key: str
    sha256: str
    feed: str
    status: str
    file_id: int | None = None
    rows_total: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    error: str | None = None
    days_touched: list[date] = field(default_factory=list)
    min_day: date | None = None
    max_day: date | None = None
    quarantine: str | None = None
    duplicate_of: int | None = None
    superseded: list[int] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    preview: pd.DataFrame | None = None
    already_done: bool = False
    rows_invalid: int = 0
    tables: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    report: list[str] = field(default_factory=list)
    checks: list[FeedCheck] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.status = str(self.status)  # a plain string: Dagster metadata refuses enums

    @property
    def invalid_ratio(self) -> float:
        """Share of rows with invalid cells (what max_reject_ratio limits)."""
        return self.rows_invalid / self.rows_total if self.rows_total else 0.0
