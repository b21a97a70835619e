"""Read and validate one file version: its context, the problems that reject it before
its rows are read, and the chunk loop that hands valid rows on and invalid cells to the
error log. Shared by ingestion and the ``check`` dry run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from usage_pipeline.config import PipelineConfig
from usage_pipeline.days import drop_date
from usage_pipeline.feeds import FEEDS, Feed, FileContext
from usage_pipeline.feeds.base import process_chunk
from usage_pipeline.quarantine import ErrorLog
from usage_pipeline.reading import (
    NUL_STANDIN,
    CsvStream,
    FileFormatError,
    is_supported,
    open_csv,
)
from usage_pipeline.sources import SourceObject

if TYPE_CHECKING:
    from usage_pipeline.read_ahead import ReadAhead

PREVIEW_ROWS = 5
REPORT_LINES = 50


class FileRejected(Exception):
    """The file as a whole is rejected; the message is the reason (a clause)."""


class RowsRejected(FileRejected):
    """The file is rejected as a whole for its rows (strict feed, too many invalid rows)."""


def rejection_sentence(key: str, reason: object) -> str:
    """The one-sentence ledger error of a rejected file."""
    return f"File {key} is rejected: {reason}."


def file_context(
    obj: SourceObject,
    config: PipelineConfig,
    as_of: datetime | None = None,
    import_name: str | None = None,
) -> FileContext:
    """The facts row rules need about ``obj``; ``import_name`` defaults to the folder after
    the feed folder (``product_usage/<import>/…``)."""
    parts = obj.key.split("/")
    if import_name is None and len(parts) > 2:
        import_name = parts[1]
    return FileContext(
        key=obj.key,
        drop_day=drop_date(obj.name, obj.last_modified, config.tz),
        received_at=obj.last_modified,
        tz=config.tz,
        config=config,
        as_of=as_of,
        import_name=import_name,
    )


def file_problem(obj: SourceObject, context: FileContext) -> str | None:
    """Why ``obj`` is rejected before its bytes are parsed (a clause), or None."""
    if not obj.feed:
        return f"it is not inside a feed folder (expected one of: {', '.join(sorted(FEEDS))})"
    if obj.feed not in FEEDS:
        return f"folder {obj.feed!r} is not a known feed (known feeds: {', '.join(sorted(FEEDS))})"
    if not is_supported(obj.name):
        return "only .csv and .csv.gz files are accepted"
    return FEEDS[obj.feed].file_problem(context)


@dataclass
class Scan:
    """What reading a file found so far (kept when the file is rejected part-way)."""

    rows_total: int = 0
    rows_loaded: int = 0
    rows_invalid: int = 0
    rows_rejected: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    report: list[str] = field(default_factory=list)
    preview: pd.DataFrame | None = None
    days: list[date] = field(default_factory=list)
    state: Any = None  # what the feed's load_state prepared (its checks read it)


def prepare(feed: Feed, conn: object, context: FileContext) -> FileContext:
    """The feed's per-file preparation; its refusal (a ValueError) rejects the file."""
    try:
        return feed.prepare(conn, context)  # type: ignore[arg-type]
    except ValueError as exc:
        raise FileRejected(str(exc)) from exc


def scan_file(
    feed: Feed,
    path: Path,
    name: str,
    context: FileContext,
    log: ErrorLog,
    scan: Scan,
    sink: Callable[[pd.DataFrame], object],
    ahead: ReadAhead | None = None,
) -> None:
    """Read, validate and hand every valid chunk to ``sink``; errors go to ``log``, counts to
    ``scan``. Raises :class:`FileRejected` when the file as a whole is rejected. ``ahead``:
    the file's chunk, read (and maybe judged) with others of its batch."""
    config = context.config
    days: set[str] = set()
    try:
        stream: CsvStream | ReadAhead = ahead or open_csv(
            path, name, config.max_file_bytes, config.chunk_rows
        )
        log.start(stream.original_header)
        problem = feed.header_problem(stream.header, context)
        if problem:
            raise FileRejected(problem)
        if feed.extra_columns_allowed:
            stream.keep_original_names(set(sum(feed.columns(config, context.import_name), ())))
        if feed.surveys(stream.header):
            _survey(feed, path, name, context, stream.header)
        for raw in stream.chunks():
            nul = stream.saw_nul
            judged = ahead.result if ahead is not None else None
            result = judged or process_chunk(feed, raw, context, nul)
            scan.rows_total += len(raw)
            scan.rows_loaded += result.loaded_rows
            scan.rows_invalid += result.invalid_rows
            scan.failures.update(result.failures)
            scan.report.extend(result.report[: max(REPORT_LINES - len(scan.report), 0)])
            log.add(raw.replace(NUL_STANDIN, r"\\x00", regex=True) if nul else raw, result.errors)
            if len(result.rows):
                if scan.preview is None:
                    scan.preview = result.rows.head(PREVIEW_ROWS)
                if feed.day_column:
                    days.update(str(d) for d in pd.unique(result.rows[feed.day_column]))
                sink(result.rows)
    except FileFormatError as exc:
        raise FileRejected(str(exc)) from exc
    scan.rows_rejected = scan.rows_total - scan.rows_loaded
    if scan.rows_total == 0:
        raise FileRejected("the file has a header but no data rows")
    scan.days = sorted(date.fromisoformat(d) for d in days)
    _judge_rows(feed, scan, config.max_reject_ratio, log.first)


def _survey(feed: Feed, path: Path, name: str, context: FileContext, header: list[str]) -> None:
    """The first of two reads: the feed sees every chunk's valid rows before any is judged."""
    config = context.config
    stream = open_csv(path, name, config.max_file_bytes, config.chunk_rows)
    stream.header = header
    feed.survey(
        (process_chunk(feed, raw, context, stream.saw_nul).rows for raw in stream.chunks()),
        context,
    )


def _judge_rows(feed: Feed, scan: Scan, max_ratio: float, first: str | None) -> None:
    """Reject the whole file for its invalid rows (strict feed, or over the ratio)."""
    if feed.strict and scan.rows_invalid:
        raise RowsRejected(
            f"{scan.rows_invalid} of {scan.rows_total} rows are invalid and {feed.name}"
            f" files are strict: nothing is loaded until every row is valid (first: {first})"
        )
    if scan.rows_invalid / scan.rows_total > max_ratio:
        raise RowsRejected(
            f"{scan.rows_invalid} of {scan.rows_total} rows are invalid, more than the"
            f" max_reject_ratio of {max_ratio:g} (first: {first})"
        )
