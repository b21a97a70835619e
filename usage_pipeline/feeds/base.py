"""What every feed provides, and the pandera-driven row validation they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.feeds.common import ERROR_COLUMNS, as_date
from usage_pipeline.feeds.validation import split_nul_rows
from usage_pipeline.warehouse.tables import ingested_files
from usage_pipeline.wording import name_list

__all__ = [
    "ERROR_COLUMNS",
    "ChunkResult",
    "Feed",
    "FeedChange",
    "FeedCheck",
    "FileContext",
    "process_chunk",
]

StateT = TypeVar("StateT")


@dataclass(frozen=True)
class FileContext(Generic[StateT]):
    """Facts about the file being read that row rules depend on; ``lookup`` is the feed's own
    per-file state (``StateT``), made by :meth:`Feed.prepare` (None before it runs)."""

    key: str
    drop_day: date
    received_at: datetime
    tz: ZoneInfo
    config: PipelineConfig = field(default_factory=PipelineConfig)
    as_of: datetime | None = None  # the run's "now" (``run --as-of``); None means the clock
    import_name: str | None = None  # product_usage/<import>/...
    lookup: StateT | None = None  # the feed's per-file state (Feed.load_state)
    loaded_days: frozenset[date] = frozenset()  # days of the rows this file loaded (for apply)

    @property
    def now(self) -> datetime:
        return self.as_of or datetime.now(timezone.utc)

    @property
    def state(self) -> StateT:
        """The feed's per-file state; an error when :meth:`Feed.prepare` has not run."""
        if self.lookup is None:
            raise RuntimeError(f"Feed.prepare() must run before the rows of {self.key} are read.")
        return self.lookup


@dataclass
class ChunkResult:
    """One chunk after validation: loadable rows, per-cell errors, failure tallies.

    ``loaded`` counts input rows that contributed data (default: ``len(rows)``); ``invalid``
    counts input rows with validation errors, the ones ``max_reject_ratio`` is about
    (default: rows with an error). ``report`` holds lines for ``usage-pipeline check``.
    """

    rows: pd.DataFrame
    errors: pd.DataFrame
    failures: Counter[str] = field(default_factory=Counter)
    loaded: int | None = None
    invalid: int | None = None
    report: list[str] = field(default_factory=list)

    @property
    def loaded_rows(self) -> int:
        return len(self.rows) if self.loaded is None else self.loaded

    @property
    def invalid_rows(self) -> int:
        if self.invalid is not None:
            return self.invalid
        return int(self.errors["row_number"].nunique()) if len(self.errors) else 0


@dataclass
class FeedChange:
    """What applying a file (and retiring the versions it supersedes) changed."""

    days: set[date] = field(default_factory=set)  # days whose daily rollups must be rebuilt
    tables: set[str] = field(default_factory=set)  # non-daily tables rewritten (for Dagster)
    notes: dict[str, Any] = field(default_factory=dict)  # materialisation metadata
    rows_loaded: int | None = None  # rows that really added data, when fewer than validated
    ledger_note: str | None = None  # a sentence for the ledger's error column


@dataclass(frozen=True)
class FeedCheck:
    """A per-file asset check result a feed adds (e.g. unmatched accounts)."""

    name: str
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


class Feed(ABC, Generic[StateT]):
    """A feed: its file contract (columns, pandera schema) and how valid rows are stored.

    The ingestion mechanism (ledger, reading, validation loop, one transaction, quarantine)
    is shared; a feed supplies the columns, :meth:`load_state` (its typed per-file state,
    ``StateT``), :meth:`process_chunk` (pure: text cells in, rows for :attr:`target` out),
    when it keeps derived tables :meth:`apply`, and its own :meth:`checks`.
    """

    name: str
    required_columns: tuple[str, ...] = ()
    optional_columns: tuple[str, ...] = ()
    extra_columns_allowed: bool = False
    target: sa.Table
    day_column: str | None = None  # column of ``target`` naming the day rows roll up into
    strict: bool = False  # one invalid row rejects the whole file
    # What a cell of each column must be, for "is not ..." messages.
    kinds: dict[str, str] = {}
    # Names of the per-file checks :meth:`checks` returns (declared on the inbox_file asset).
    check_names: tuple[str, ...] = ()
    # Snapshot tables whose latest built date must be refreshed after a load (data without
    # a day, such as the account directory, counts as of the latest snapshot).
    refreshes_latest_snapshots: tuple[str, ...] = ()

    def columns(
        self, config: PipelineConfig, import_name: str | None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(required, optional) columns; feeds whose template depends on config override."""
        return self.required_columns, self.optional_columns

    def template(self, config: PipelineConfig, import_name: str | None = None) -> str:
        """The CSV header line a user fills in (see :mod:`usage_pipeline.feed_headers`)."""
        from usage_pipeline.feed_headers import template

        return template(self.name, config, import_name)

    def file_problem(self, context: FileContext) -> str | None:
        """Why this file cannot be read as this feed at all (before opening it), or None."""
        return None

    def batch_key(self, context: FileContext) -> Hashable | None:
        """What :meth:`process_chunk` reads of ``context``, for feeds whose small files may be
        processed as one frame (see :mod:`usage_pipeline.read_ahead`): files with equal keys
        give each row the result it gets alone. None (the default): never together. A feed
        returns a key only when its chunks are judged row by row, reading nothing of
        ``context.lookup``, and its :class:`ChunkResult` holds rows, errors and failures only.
        """
        return None

    def header_problem(self, header: list[str], context: FileContext) -> str | None:
        """A sentence describing what is wrong with the (normalised) header, or None."""
        required, optional = self.columns(context.config, context.import_name)
        allowed = set(required) | set(optional)
        missing = [c for c in required if c not in header]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            return f"required column{plural} {name_list(missing, quoted=False)} missing"
        unknown = [c for c in header if c not in allowed]
        if unknown and not self.extra_columns_allowed:
            template = self.template(context.config, context.import_name)
            plural = "s" if len(unknown) > 1 else ""
            return (
                f"unknown column{plural} {name_list(unknown)} (the {self.name} template is:"
                f" {template})"
            )
        return None

    def prepare(self, conn: sa.Connection | None, context: FileContext) -> FileContext[StateT]:
        """``context`` with the file's state (:meth:`load_state`) as ``lookup``."""
        return replace(context, lookup=self.load_state(conn, context))

    def load_state(self, conn: sa.Connection | None, context: FileContext) -> StateT:
        """Load what rows are checked against (in the file's transaction; ``conn`` is None for
        a dry run without a warehouse). Raise :class:`ValueError` to reject the file."""
        return None  # type: ignore[return-value]  # stateless feeds: Feed[None]

    @abstractmethod
    def process_chunk(self, raw: pd.DataFrame, context: FileContext[StateT]) -> ChunkResult:
        """Validate one chunk of text cells and return the rows for :attr:`target`."""

    def surveys(self, header: list[str]) -> bool:
        """Whether a file with this (normalised) header has row rules that depend on the
        whole file (a parent listed further down), so that :meth:`survey` reads it first."""
        return False

    def survey(self, valid_rows: Iterator[pd.DataFrame], context: FileContext[StateT]) -> None:
        """The first read of a file :meth:`surveys`: ``valid_rows`` yields what
        :meth:`process_chunk` keeps of each chunk; note in ``context.state`` what the second
        read checks each row against."""

    def apply(
        self, conn: sa.Connection, context: FileContext[StateT], file_id: int, removed: list[int]
    ) -> FeedChange:
        """Inside the file's transaction, after its rows are in :attr:`target`: retire the
        rows of the superseded versions ``removed`` and update derived tables. The default
        deletes the removed versions' rows and reports the days of both."""
        return FeedChange(
            days=remove_file_rows(conn, self.target, self.day_column, removed, context.loaded_days)
        )

    def checks(self, outcome: Any, state: StateT | None = None) -> list[FeedCheck]:
        """Results of :attr:`check_names` for an ingested file (``outcome`` is IngestOutcome;
        ``state`` the file's :meth:`load_state`, None when it did not run)."""
        return []


def remove_file_rows(
    conn: sa.Connection,
    table: sa.Table,
    day_column: str | None,
    removed: list[int],
    known_days: frozenset[date] = frozenset(),
) -> set[date]:
    """Delete the ``removed`` file versions' rows from ``table``; return ``known_days`` (the
    new version's days) plus the removed versions' days. Each removed version's search is
    bounded by its ledger day range, so the ``(day, file_id)`` index is range-scanned and the
    cost does not grow with history."""
    days: set[date] = set(known_days)
    file_id = table.c.file_id
    f = ingested_files.c
    for old in removed:
        where = [file_id == old]
        if day_column is not None:
            bounds = conn.execute(
                sa.select(f.min_day, f.max_day).where(f.file_id == old)
            ).one_or_none()
            if bounds is not None and bounds[0] is not None:
                day = table.c[day_column]
                where += [day >= bounds[0], day <= bounds[1]]
            found = conn.execute(sa.select(table.c[day_column]).where(*where).distinct())
            days.update(as_date(d) for d in found.scalars())
        conn.execute(table.delete().where(*where))
    return days


def process_chunk(feed: Feed, raw: pd.DataFrame, context: FileContext, nul: bool) -> ChunkResult:
    """``feed.process_chunk``, after the rows with a NUL byte in a cell (``nul``: the file has
    one) are split off as row errors, the same in every feed."""
    if not nul:
        return feed.process_chunk(raw, context)
    clean, errors = split_nul_rows(raw)
    if errors.empty:
        return feed.process_chunk(raw, context)
    refused = int(errors["row_number"].nunique())
    result = feed.process_chunk(clean, context) if len(clean) else None
    if result is None:
        return ChunkResult(rows=pd.DataFrame(), errors=errors, loaded=0, invalid=refused)
    result.loaded, result.invalid = result.loaded_rows, result.invalid_rows + refused
    result.errors = pd.concat([result.errors, errors], ignore_index=True).sort_values(
        ["row_number", "column_name"], ignore_index=True
    )
    result.failures.update(f"{column}: NUL byte" for column in errors["column_name"])
    return result
