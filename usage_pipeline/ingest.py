"""Ingest one file version: ledger, validation, load, correction, quarantine.

Every file version loads in one database transaction: its rows, its rejected rows, the
supersession of the key's previous version and its final ledger status commit together.
The only write outside it is the ``processing`` ledger row that claims the version first.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.days import drop_date
from usage_pipeline.feeds import FEEDS, Feed, FeedCheck, FileContext
from usage_pipeline.feeds.base import process_chunk
from usage_pipeline.quarantine import ErrorLog, quarantine
from usage_pipeline.reading import NUL_STANDIN, FileFormatError, is_supported, open_csv
from usage_pipeline.refusals import UNREAD, record_refusal, unreadable_reason
from usage_pipeline.retire import retire_version
from usage_pipeline.rollups import mark_rollups
from usage_pipeline.snapshots import mark_latest_snapshots
from usage_pipeline.sources import FileSource, SourceObject, sha256_file
from usage_pipeline.sources.keys import key_problem, unescape_key
from usage_pipeline.warehouse.bulk import bulk_insert, bulk_writer
from usage_pipeline.warehouse.engine import read_connection
from usage_pipeline.warehouse.tables import ingested_files, rejected_rows
from usage_pipeline.wording import capped

FINAL_STATUSES = ("loaded", "rejected", "duplicate", "reverted")
PREVIEW_ROWS = 5


@dataclass
class IngestOutcome:
    """What happened to one file version (also the Dagster materialisation metadata)."""

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

    @property
    def invalid_ratio(self) -> float:
        """Share of rows with invalid cells (what max_reject_ratio limits)."""
        return self.rows_invalid / self.rows_total if self.rows_total else 0.0


class FileRejected(Exception):
    """The file as a whole is rejected; the message is the reason (a clause)."""


class RowsRejected(FileRejected):
    """The file is rejected as a whole for its rows (strict feed, too many invalid rows)."""


def rejection_sentence(key: str, reason: object) -> str:
    """The one-sentence ledger error of a rejected file."""
    return f"File {key} is rejected: {reason}."


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _claim(engine: sa.Engine, obj: SourceObject, feed: str, sha: str) -> tuple[int, str]:
    """Find or insert the ledger row of this version; return (file_id, status)."""
    identity = (ingested_files.c.source_key == obj.key) & (ingested_files.c.sha256 == sha)
    query = sa.select(ingested_files.c.file_id, ingested_files.c.status).where(identity)
    for _ in range(2):
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # The claim is advisory: no need to wait for its WAL flush. The file's own
                # transaction commits synchronously, which makes this one durable too.
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            row = conn.execute(query).first()
            if row is not None:
                return int(row.file_id), str(row.status)
            try:
                with conn.begin_nested():
                    file_id = conn.execute(
                        ingested_files.insert().returning(ingested_files.c.file_id),
                        {
                            "feed": feed,
                            "source_key": obj.key,
                            "sha256": sha,
                            "size_bytes": obj.size,
                            "status": "processing",
                            "received_at": obj.last_modified,
                        },
                    ).scalar_one()
                return int(file_id), "processing"
            except sa.exc.IntegrityError:
                continue  # another run claimed it at the same moment: read its row
    raise RuntimeError(f"Could not claim the ledger row of {obj.key}.")


def _may_process(status: str, force: bool, reload: bool) -> bool:
    """Whether a version in ``status`` is (re)loaded: new or unfinished ones always; a
    duplicate or rejected one when forced; any one when reprocessed (``reload``)."""
    return status not in FINAL_STATUSES or reload or (force and status in ("duplicate", "rejected"))


def _lock_status(conn: sa.Connection, file_id: int) -> str:
    query = sa.select(ingested_files.c.status).where(ingested_files.c.file_id == file_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return str(conn.execute(query).scalar_one())


def _find_duplicate(conn: sa.Connection, feed: str, obj: SourceObject, sha: str) -> sa.Row | None:
    """An already loaded file of ``feed`` with the same bytes under another key. On
    PostgreSQL a transaction lock on the digest makes concurrent loads of identical bytes
    queue, so the second one sees the first as loaded."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:sha))"), {"sha": sha})
    f = ingested_files.c
    return conn.execute(
        sa.select(f.file_id, f.source_key)
        .where(f.feed == feed, f.sha256 == sha, f.status == "loaded", f.source_key != obj.key)
        .order_by(f.file_id)
        .limit(1)
    ).first()


def _previous_versions(conn: sa.Connection, key: str, file_id: int) -> list[int]:
    """The key's currently loaded version(s) other than ``file_id``."""
    f = ingested_files.c
    query = sa.select(f.file_id).where(
        f.source_key == key, f.status == "loaded", f.file_id != file_id
    )
    return [int(i) for i in conn.execute(query).scalars()]


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


REPORT_LINES = 50


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


def scan_file(
    feed: Feed,
    path: Path,
    name: str,
    context: FileContext,
    log: ErrorLog,
    outcome: IngestOutcome,
    sink: Callable[[pd.DataFrame], object],
) -> None:
    """Read, validate and hand every valid chunk to ``sink``; errors go to ``log``, counts to
    ``outcome``. Raises :class:`FileRejected` when the file as a whole is rejected."""
    config = context.config
    try:
        stream = open_csv(path, name, config.max_file_bytes, config.chunk_rows)
        log.start(stream.original_header)
        problem = feed.header_problem(stream.header, context)
        if problem:
            raise FileRejected(problem)
        if feed.extra_columns_allowed:
            stream.keep_original_names(set(sum(feed.columns(config, context.import_name), ())))
        days: set[str] = set()
        for raw in stream.chunks():
            nul = stream.saw_nul
            result = process_chunk(feed, raw, context, nul)
            outcome.rows_total += len(raw)
            outcome.rows_loaded += result.loaded_rows
            outcome.rows_invalid += result.invalid_rows
            outcome.failures.update(result.failures)
            room = REPORT_LINES - len(outcome.report)
            outcome.report.extend(result.report[: max(room, 0)])
            log.add(raw.replace(NUL_STANDIN, r"\\x00", regex=True) if nul else raw, result.errors)
            if len(result.rows):
                if outcome.preview is None:
                    outcome.preview = result.rows.head(PREVIEW_ROWS)
                if feed.day_column:
                    days.update(str(d) for d in pd.unique(result.rows[feed.day_column]))
                sink(result.rows)
    except FileFormatError as exc:
        raise FileRejected(str(exc)) from exc
    outcome.rows_rejected = outcome.rows_total - outcome.rows_loaded
    if outcome.rows_total == 0:
        raise FileRejected("the file has a header but no data rows")
    day_list = sorted(date.fromisoformat(d) for d in days)
    outcome.days_touched = day_list
    outcome.min_day, outcome.max_day = (day_list[0], day_list[-1]) if day_list else (None, None)
    if feed.strict and outcome.rows_invalid:
        raise RowsRejected(
            f"{outcome.rows_invalid} of {outcome.rows_total} rows are invalid and {feed.name}"
            f" files are strict: nothing is loaded until every row is valid (first: {log.first})"
        )
    if outcome.rows_invalid / outcome.rows_total > config.max_reject_ratio:
        raise RowsRejected(
            f"{outcome.rows_invalid} of {outcome.rows_total} rows are invalid, more than the"
            f" max_reject_ratio of {config.max_reject_ratio:g} (first: {log.first})"
        )


def _store_rejected_rows(conn: sa.Connection, file_id: int, log: ErrorLog, reloaded: bool) -> None:
    """Replace the file's ``rejected_rows`` (an earlier attempt's, when forced) with the log's."""
    if reloaded:
        conn.execute(rejected_rows.delete().where(rejected_rows.c.file_id == file_id))
    if not log.count:
        return
    for chunk in pd.read_csv(log.rows_path, dtype=str, keep_default_na=False, chunksize=100_000):
        chunk["row_number"] = chunk["row_number"].astype("int64")
        chunk["value"] = chunk["value"].where(chunk["value"] != "", None)
        bulk_insert(conn, rejected_rows, chunk.assign(file_id=file_id))


def ingest_file(
    engine: sa.Engine,
    source: FileSource,
    obj: SourceObject,
    config: PipelineConfig,
    *,
    force: bool = False,
    as_of: datetime | None = None,
    reload: bool = False,
) -> IngestOutcome:
    """Ingest one object of the inbox; idempotent for a given (key, bytes) version.

    The bytes are read (and hashed) here, once: sensing only lists. ``force`` loads a
    version held back as a duplicate; ``reload`` (``reprocess``) loads the version again
    under the current config, whatever its status, retiring its earlier contribution in
    the same transaction. An object that must not be read (an unsafe key, a link leading
    outside the inbox) or cannot be read is recorded as rejected.
    """
    problem = obj.problem or key_problem(unescape_key(obj.key))
    if problem:
        return _refused(engine, obj, problem)
    with ExitStack() as stack:
        try:
            path = stack.enter_context(source.local_copy(obj.key))
            sha = sha256_file(path)
        except FileNotFoundError:
            raise  # gone since it was listed: the batch reports it as missing
        except OSError as exc:
            return _refused(engine, obj, unreadable_reason(exc))
        file_id, status = _claim(engine, obj, obj.feed, sha)
        if not _may_process(status, force, reload):
            return _existing_outcome(engine, file_id)
        with tempfile.TemporaryDirectory(prefix="usage_pipeline_") as folder:
            context = file_context(obj, config, as_of)
            return _ingest_claimed(
                engine, source, obj, context, path, Path(folder), file_id, sha, force, reload
            )


def _refused(engine: sa.Engine, obj: SourceObject, problem: str) -> IngestOutcome:
    """Record an object refused without reading its bytes (see :mod:`refusals`)."""
    sentence = capped(rejection_sentence(obj.key, problem)) or ""
    file_id, new = record_refusal(engine, obj, sentence)
    if not new:
        return _existing_outcome(engine, file_id)
    return IngestOutcome(obj.key, UNREAD, obj.feed, "rejected", file_id=file_id, error=sentence)


def _file_problem(obj: SourceObject) -> str | None:
    if not obj.feed:
        return f"it is not inside a feed folder (expected one of: {', '.join(sorted(FEEDS))})"
    if obj.feed not in FEEDS:
        return f"folder {obj.feed!r} is not a known feed (known feeds: {', '.join(sorted(FEEDS))})"
    if not is_supported(obj.name):
        return "only .csv and .csv.gz files are accepted"
    return None


def _ingest_claimed(
    engine: sa.Engine,
    source: FileSource,
    obj: SourceObject,
    context: FileContext,
    path: Path,
    folder: Path,
    file_id: int,
    sha: str,
    force: bool,
    reload: bool = False,
) -> IngestOutcome:
    outcome = IngestOutcome(obj.key, sha, obj.feed, status="loaded", file_id=file_id)
    with engine.begin() as conn:
        status = _lock_status(conn, file_id)
        if not _may_process(status, force, reload):
            conn.rollback()
            return _existing_outcome(engine, file_id)
        retired: set[date] = set()
        if reload and status == "loaded":  # the version's rows go first, in this transaction
            retired = retire_version(conn, FEEDS[obj.feed], context, file_id).days
        force = force or reload
        problem = _file_problem(obj)
        if problem is None:
            problem = FEEDS[obj.feed].file_problem(context)
        duplicate = None if (force or problem) else _find_duplicate(conn, obj.feed, obj, sha)
        log: ErrorLog | None = None
        if duplicate is not None:
            outcome.status, outcome.duplicate_of = "duplicate", int(duplicate.file_id)
            outcome.error = (
                f"File {obj.key} has the same bytes as file {duplicate.file_id}"
                f" ({duplicate.source_key}) and was not loaded; run"
                f" 'usage-pipeline ingest --force {obj.key}' to load it anyway."
            )
        elif problem:
            outcome.status, outcome.error = "rejected", rejection_sentence(obj.key, problem)
        else:
            feed = FEEDS[obj.feed]
            log = ErrorLog(folder)
            savepoint = conn.begin_nested()
            try:
                try:
                    context = feed.prepare(conn, context)
                except ValueError as exc:
                    raise FileRejected(str(exc)) from exc
                columns = [column.name for column in feed.target.columns]
                with bulk_writer(conn, feed.target, columns) as write:
                    scan_file(
                        feed,
                        path,
                        obj.name,
                        context,
                        log,
                        outcome,
                        sink=lambda rows: write(rows.assign(file_id=file_id)),
                    )
                savepoint.commit()
            except FileRejected as exc:
                savepoint.rollback()
                log.every_row_rejected = isinstance(exc, RowsRejected)
                outcome.preview = None
                log.add_file_error(str(exc))
                outcome.status, outcome.rows_loaded = "rejected", 0
                outcome.days_touched, outcome.min_day, outcome.max_day = [], None, None
                outcome.error = rejection_sentence(obj.key, exc)
            finally:
                log.close()
            _store_rejected_rows(conn, file_id, log, reloaded=force)
            if outcome.status == "loaded":
                removed = _previous_versions(conn, obj.key, file_id)
                context = replace(context, loaded_days=frozenset(outcome.days_touched))
                change = feed.apply(conn, context, file_id, removed)
                mark_rollups(conn, obj.feed, change.days)
                mark_latest_snapshots(conn, feed.refreshes_latest_snapshots)
                if removed:
                    conn.execute(
                        ingested_files.update()
                        .where(ingested_files.c.file_id.in_(removed))
                        .values(status="superseded")
                    )
                outcome.superseded = removed
                outcome.days_touched = sorted(change.days | retired)
                outcome.tables = sorted(change.tables)
                outcome.notes = change.notes
                if change.rows_loaded is not None:
                    outcome.rows_loaded = change.rows_loaded
                if log.count:
                    outcome.error = (
                        f"File {obj.key}: {outcome.rows_rejected} of {outcome.rows_total} rows"
                        f" rejected (first: {log.first})."
                    )
                if change.ledger_note:
                    outcome.error = " ".join(filter(None, [outcome.error, change.ledger_note]))
            outcome.checks = feed.checks(outcome)
        if problem and duplicate is None:
            log = ErrorLog(folder)
            log.add_file_error(outcome.error or problem)
            log.close()
        if log is not None and (outcome.status == "rejected" or outcome.rows_rejected):
            outcome.quarantine = quarantine(
                source,
                obj,
                path,
                log,
                rejected=outcome.status == "rejected",
                rows_total=outcome.rows_total,
                max_bytes=context.config.max_file_bytes,
                with_rejects=outcome.status == "loaded" or log.every_row_rejected,
            )
        outcome.error = capped(outcome.error)
        conn.execute(
            ingested_files.update()
            .where(ingested_files.c.file_id == file_id)
            .values(
                feed=obj.feed,
                status=outcome.status,
                rows_total=outcome.rows_total if outcome.status != "duplicate" else None,
                rows_loaded=outcome.rows_loaded if outcome.status != "duplicate" else None,
                rows_rejected=outcome.rows_rejected if outcome.status != "duplicate" else None,
                error=outcome.error,
                processed_at=_now(),
                min_day=outcome.min_day if outcome.status == "loaded" else None,
                max_day=outcome.max_day if outcome.status == "loaded" else None,
            )
        )
    return outcome


def _existing_outcome(engine: sa.Engine, file_id: int) -> IngestOutcome:
    with read_connection(engine) as conn:
        row = conn.execute(
            sa.select(ingested_files).where(ingested_files.c.file_id == file_id)
        ).one()
    return IngestOutcome(
        source_key=row.source_key,
        sha256=row.sha256,
        feed=row.feed,
        status=row.status,
        file_id=row.file_id,
        rows_total=row.rows_total or 0,
        rows_loaded=row.rows_loaded or 0,
        rows_rejected=row.rows_rejected or 0,
        error=row.error,
        min_day=row.min_day,
        max_day=row.max_day,
        already_done=True,
    )
