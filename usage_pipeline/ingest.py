"""Ingest one file version: the entry point of ingestion (SPEC §1).

Every file version loads in one database transaction: its rows, its rejected rows, the
supersession of the key's previous version and its final ledger status commit together.
The only write outside it is the ``processing`` ledger row that claims the version first.
The steps live in their own modules: :mod:`ledger` (claim, duplicates, final status),
:mod:`scan` (reading and validation), :mod:`load` (the rows and what depends on them) and
:mod:`quarantine` (what a rejected file leaves behind).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.feeds import FEEDS, FileContext
from usage_pipeline.file_status import FileStatus, may_process
from usage_pipeline.ledger import (
    claim,
    duplicate_sentence,
    existing_outcome,
    find_duplicate,
    lock_status,
    record_final,
)
from usage_pipeline.load import Version, load_version
from usage_pipeline.outcome import IngestOutcome
from usage_pipeline.quarantine import ErrorLog, file_error_log, quarantine_outcome
from usage_pipeline.read_ahead import ReadAhead
from usage_pipeline.refusals import UNREAD, record_refusal, unreadable_reason
from usage_pipeline.retire import retire_version
from usage_pipeline.scan import (
    FileRejected,
    RowsRejected,
    file_context,
    file_problem,
    rejection_sentence,
)
from usage_pipeline.sources import FileSource, SourceObject, sha256_file
from usage_pipeline.sources.keys import key_problem, unescape_key
from usage_pipeline.wording import capped

__all__ = [
    "FileRejected",
    "IngestOutcome",
    "RowsRejected",
    "file_context",
    "ingest_file",
    "rejection_sentence",
]


def ingest_file(
    engine: sa.Engine,
    source: FileSource,
    obj: SourceObject,
    config: PipelineConfig,
    *,
    force: bool = False,
    as_of: datetime | None = None,
    reload: bool = False,
    ahead: ReadAhead | None = None,
) -> IngestOutcome:
    """Ingest one object of the inbox; idempotent for a given (key, bytes) version.

    The bytes are read (and hashed) here, once: sensing only lists. ``force`` loads a
    version held back as a duplicate; ``reload`` (``reprocess``) loads the version again
    under the current config, whatever its status, retiring its earlier contribution in
    the same transaction. An object that must not be read (an unsafe key, a link leading
    outside the inbox) or cannot be read is recorded as rejected. ``ahead``: the file as
    its batch read it (:mod:`usage_pipeline.read_ahead`), its bytes' digest included.
    """
    problem = obj.problem or key_problem(unescape_key(obj.key))
    if problem:
        return _refused(engine, obj, problem)
    with ExitStack() as stack:
        try:
            if ahead is not None:
                path, sha = ahead.path, ahead.sha256
            else:
                path = stack.enter_context(source.local_copy(obj.key))
                sha = sha256_file(path)
        except FileNotFoundError:
            raise  # gone since it was listed: the batch reports it as missing
        except OSError as exc:
            return _refused(engine, obj, unreadable_reason(exc))
        file_id, status = claim(engine, obj, sha)
        if not may_process(status, force, reload):
            return existing_outcome(engine, file_id)

        def folder() -> Path:  # the error log's, made on its first error
            return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="usage_pipeline_")))

        version = Version(obj, sha, file_id, path, ahead)
        context = file_context(obj, config, as_of)
        return _ingest_claimed(engine, source, version, context, folder, force, reload)


def _refused(engine: sa.Engine, obj: SourceObject, problem: str) -> IngestOutcome:
    """Record an object refused without reading its bytes (see :mod:`refusals`)."""
    sentence = capped(rejection_sentence(obj.key, problem)) or ""
    file_id, new = record_refusal(engine, obj, sentence)
    if not new:
        return existing_outcome(engine, file_id)
    return IngestOutcome(
        obj.key, UNREAD, obj.feed, FileStatus.REJECTED.value, file_id=file_id, error=sentence
    )


def _ingest_claimed(
    engine: sa.Engine,
    source: FileSource,
    version: Version,
    context: FileContext,
    folder: Callable[[], Path],
    force: bool,
    reload: bool,
) -> IngestOutcome:
    """Process a claimed version in its one transaction, unless another run finished it."""
    with engine.begin() as conn:
        status = lock_status(conn, version.file_id)
        if not may_process(status, force, reload):
            conn.rollback()
            return existing_outcome(engine, version.file_id)
        retired: set[date] = set()
        if reload and status == FileStatus.LOADED:  # its rows go first, in this transaction
            feed = FEEDS[version.obj.feed]
            retired = retire_version(conn, feed, context, version.file_id).days
        outcome, log = _process(conn, version, context, folder, force or reload, retired)
        if log is not None:
            max_bytes = context.config.max_file_bytes
            outcome.quarantine = quarantine_outcome(
                source, version.obj, version.path, log, outcome, max_bytes
            )
        outcome.error = capped(outcome.error)
        record_final(conn, outcome)
    return outcome


def _process(
    conn: sa.Connection,
    version: Version,
    context: FileContext,
    folder: Callable[[], Path],
    forced: bool,
    retired: set[date],
) -> tuple[IngestOutcome, ErrorLog | None]:
    """Hold the version back as a duplicate, reject it whole, or load it; return its
    outcome and its error log (None for a duplicate, which quarantines nothing)."""
    obj = version.obj
    problem = file_problem(obj, context)
    duplicate = None if (forced or problem) else find_duplicate(conn, obj, version.sha256)
    if duplicate is not None:
        outcome = _unread(version, FileStatus.DUPLICATE, duplicate_sentence(obj.key, duplicate))
        outcome.duplicate_of = int(duplicate.file_id)
        return outcome, None
    if problem:
        outcome = _unread(version, FileStatus.REJECTED, rejection_sentence(obj.key, problem))
        return outcome, file_error_log(folder, outcome.error or problem)
    log = ErrorLog(folder)
    outcome = load_version(conn, version, context, log, reloaded=forced, retired=retired)
    return outcome, log


def _unread(version: Version, status: FileStatus, error: str) -> IngestOutcome:
    """The outcome of a version whose rows were not read."""
    obj = version.obj
    return IngestOutcome(
        obj.key, version.sha256, obj.feed, status.value, file_id=version.file_id, error=error
    )
