"""Load one claimed file version inside its transaction: read its rows into the feed's
table (or, for a dry run, only read them), store its rejected rows, retire the key's
previous versions and update what depends on the rows."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import sqlalchemy as sa

from usage_pipeline.feeds import FEEDS, Feed, FileContext
from usage_pipeline.file_status import FileStatus
from usage_pipeline.ledger import previous_versions, supersede
from usage_pipeline.outcome import IngestOutcome
from usage_pipeline.quarantine import ErrorLog
from usage_pipeline.rollups import mark_rollups
from usage_pipeline.scan import (
    FileRejected,
    RowsRejected,
    Scan,
    file_problem,
    prepare,
    rejection_sentence,
    scan_file,
)
from usage_pipeline.snapshots import mark_latest_snapshots
from usage_pipeline.sources import SourceObject
from usage_pipeline.warehouse.bulk import bulk_insert, bulk_writer
from usage_pipeline.warehouse.tables import rejected_rows

if TYPE_CHECKING:
    from usage_pipeline.read_ahead import ReadAhead


@dataclass(frozen=True)
class Version:
    """One claimed file version, its local copy and, when its batch read it ahead, its
    chunk."""

    obj: SourceObject
    sha256: str
    file_id: int
    path: Path
    ahead: ReadAhead | None = None


def read_rows(
    conn: sa.Connection | None,
    version: Version,
    context: FileContext,
    log: ErrorLog,
    scan: Scan,
    *,
    dry_run: bool = False,
) -> FileContext:
    """Prepare the feed and scan the file, writing valid rows to the feed's table unless
    ``dry_run``. Raises :class:`FileRejected`; returns the prepared context."""
    feed = FEEDS[version.obj.feed]
    context = prepare(feed, conn, context)
    scan.state = context.lookup
    name = version.obj.name
    if dry_run or conn is None:
        scan_file(feed, version.path, name, context, log, scan, sink=lambda rows: None)
        return context
    columns = [column.name for column in feed.target.columns]
    with bulk_writer(conn, feed.target, columns) as write:
        scan_file(
            feed,
            version.path,
            name,
            context,
            log,
            scan,
            sink=lambda rows: write(rows.assign(file_id=version.file_id)),
            ahead=version.ahead,
        )
    return context


def check_file(
    obj: SourceObject,
    path: Path,
    context: FileContext,
    log: ErrorLog,
    connect: Callable[[], AbstractContextManager[sa.Connection | None]],
) -> tuple[Scan, str | None]:
    """The ``check`` dry run: the same problems and scan as a load, nothing written (a
    read-only connection from ``connect`` serves matching). Returns what the scan found and
    why the file would be rejected (a clause), or None."""
    scan = Scan()
    problem = file_problem(obj, context)
    if problem is None:
        try:
            with connect() as conn:
                read_rows(conn, Version(obj, "", 0, path), context, log, scan, dry_run=True)
        except FileRejected as exc:
            problem = str(exc)
    return scan, problem


def store_rejected_rows(conn: sa.Connection, file_id: int, log: ErrorLog, reloaded: bool) -> None:
    """Replace the file's ``rejected_rows`` (an earlier attempt's, when forced) with the log's."""
    if reloaded:
        conn.execute(rejected_rows.delete().where(rejected_rows.c.file_id == file_id))
    if not log.count:
        return
    for chunk in pd.read_csv(log.rows_path, dtype=str, keep_default_na=False, chunksize=100_000):
        chunk["row_number"] = chunk["row_number"].astype("int64")
        chunk["value"] = chunk["value"].where(chunk["value"] != "", None)
        bulk_insert(conn, rejected_rows, chunk.assign(file_id=file_id))


def load_version(
    conn: sa.Connection,
    version: Version,
    context: FileContext,
    log: ErrorLog,
    *,
    reloaded: bool,
    retired: set[date],
) -> IngestOutcome:
    """Load the version's rows (all of them or none, under a savepoint) and return its
    outcome, ``loaded`` or ``rejected``; ``retired`` are the days its reprocessing cleared."""
    feed = FEEDS[version.obj.feed]
    scan = Scan()
    rejection: FileRejected | None = None
    savepoint = conn.begin_nested()
    try:
        context = read_rows(conn, version, context, log, scan)
        savepoint.commit()
    except FileRejected as exc:
        savepoint.rollback()
        log.every_row_rejected = isinstance(exc, RowsRejected)
        log.add_file_error(str(exc))
        rejection = exc
    finally:
        log.close()
    store_rejected_rows(conn, version.file_id, log, reloaded)
    outcome = _scanned_outcome(version, scan, loaded=rejection is None)
    if rejection is not None:
        outcome.error = rejection_sentence(version.obj.key, rejection)
    else:
        _apply(conn, feed, version, context, outcome, log, retired)
    outcome.checks = feed.checks(outcome, scan.state)
    return outcome


def _scanned_outcome(version: Version, scan: Scan, *, loaded: bool) -> IngestOutcome:
    """The outcome of a version read to its end (``loaded``) or rejected while read."""
    days = scan.days if loaded else []
    return IngestOutcome(
        version.obj.key,
        version.sha256,
        version.obj.feed,
        status=(FileStatus.LOADED if loaded else FileStatus.REJECTED).value,
        file_id=version.file_id,
        rows_total=scan.rows_total,
        rows_loaded=scan.rows_loaded if loaded else 0,
        rows_rejected=scan.rows_rejected,
        rows_invalid=scan.rows_invalid,
        failures=scan.failures,
        report=scan.report,
        preview=scan.preview if loaded else None,
        days_touched=list(days),
        min_day=days[0] if days else None,
        max_day=days[-1] if days else None,
    )


def _apply(
    conn: sa.Connection,
    feed: Feed,
    version: Version,
    context: FileContext,
    outcome: IngestOutcome,
    log: ErrorLog,
    retired: set[date],
) -> None:
    """Retire the key's previous versions, update derived tables and queue the rollups."""
    key = version.obj.key
    removed = previous_versions(conn, key, version.file_id)
    context = replace(context, loaded_days=frozenset(outcome.days_touched))
    change = feed.apply(conn, context, version.file_id, removed)
    mark_rollups(conn, version.obj.feed, change.days)
    mark_latest_snapshots(conn, feed.refreshes_latest_snapshots)
    supersede(conn, removed)
    outcome.superseded = removed
    outcome.days_touched = sorted(change.days | retired)
    outcome.tables = sorted(change.tables)
    outcome.notes = change.notes
    if change.rows_loaded is not None:
        outcome.rows_loaded = change.rows_loaded
    if log.count:
        outcome.error = (
            f"File {key}: {outcome.rows_rejected} of {outcome.rows_total} rows"
            f" rejected (first: {log.first})."
        )
    if change.ledger_note:
        outcome.error = " ".join(filter(None, [outcome.error, change.ledger_note]))
