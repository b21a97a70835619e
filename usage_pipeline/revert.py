"""``revert KEY`` and ``reprocess KEY`` (SPEC §6), without Dagster: the jobs of
:mod:`usage_pipeline.defs.files.actions` and the CLI call these.

- revert: the key's loaded version stops contributing (ledger status ``reverted``), in one
  transaction; its days are queued for their rollups, which queue the snapshots.
- reprocess: the key's current bytes are loaded again under the current config; when they
  are the loaded version's bytes, that version's rows are retired and loaded afresh in one
  transaction (:func:`usage_pipeline.ingest.ingest_file` with ``reload``), otherwise the
  new bytes load as a correction, which replaces the old version atomically anyway.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.feeds import FEEDS
from usage_pipeline.file_status import FileStatus
from usage_pipeline.ingest import IngestOutcome, file_context, ingest_file
from usage_pipeline.retire import RetireRefused, retire_version
from usage_pipeline.sources import FileSource, SourceObject, UnsafeKeyError, check_key
from usage_pipeline.warehouse.engine import read_connection
from usage_pipeline.warehouse.tables import ingested_files


class FileActionError(ValueError):
    """A revert or reprocess that cannot be done; the message is one sentence."""


def _checked(key: str) -> str:
    try:
        return check_key(key)
    except UnsafeKeyError as exc:
        raise FileActionError(str(exc)) from exc


def latest_status(conn: sa.Connection, key: str) -> str | None:
    """The status of the key's most recent version in the ledger, or None if never sensed."""
    f = ingested_files.c
    return conn.execute(
        sa.select(f.status).where(f.source_key == key).order_by(f.file_id.desc()).limit(1)
    ).scalar()


def revert_problem(conn: sa.Connection, key: str) -> str | None:
    """Why ``key`` cannot be reverted (a sentence), or None when it has a loaded version."""
    f = ingested_files.c
    loaded = conn.execute(
        sa.select(f.file_id)
        .where(f.source_key == key, f.status == FileStatus.LOADED.value)
        .limit(1)
    ).first()
    if loaded is not None:
        return None
    status = latest_status(conn, key)
    if status is None:
        return f"File {key} has never been sensed."
    return f"File {key} has no loaded version to revert (its latest version is {status})."


def reprocess_problem(conn: sa.Connection, source: FileSource, key: str) -> str | None:
    """Why ``key`` cannot be reprocessed (a sentence), or None."""
    if latest_status(conn, key) is None:
        return f"File {key} has never been sensed; 'usage-pipeline run' loads it."
    if source.stat(key) is None:
        return f"File {key} is no longer in the inbox {source.uri}."
    return None


def revert_key(
    engine: sa.Engine, config: PipelineConfig, key: str, as_of: datetime | None = None
) -> IngestOutcome:
    """Remove the loaded version of ``key`` from every table; its ledger row is kept."""
    _checked(key)
    f = ingested_files.c
    with engine.begin() as conn:
        query = sa.select(ingested_files).where(
            f.source_key == key, f.status == FileStatus.LOADED.value
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query.order_by(f.file_id.desc()).limit(1)).first()
        if row is None:
            raise FileActionError(revert_problem(conn, key) or f"File {key} is not loaded.")
        received = row.received_at
        if received.tzinfo is None:  # SQLite gives UTC instants back naive
            received = received.replace(tzinfo=timezone.utc)
        obj = SourceObject(key=key, size=int(row.size_bytes), last_modified=received)
        try:
            change = retire_version(
                conn, FEEDS[row.feed], file_context(obj, config, as_of), int(row.file_id)
            )
        except RetireRefused as exc:
            raise FileActionError(f"File {key} cannot be reverted: {exc}.") from exc
    return IngestOutcome(
        source_key=key,
        sha256=row.sha256,
        feed=row.feed,
        status=FileStatus.REVERTED.value,
        file_id=int(row.file_id),
        rows_total=int(row.rows_total or 0),
        days_touched=sorted(change.days),
        tables=sorted(change.tables),
        notes=change.notes,
    )


def reprocess_key(
    engine: sa.Engine,
    source: FileSource,
    config: PipelineConfig,
    key: str,
    as_of: datetime | None = None,
) -> IngestOutcome:
    """Load the current bytes of ``key`` again under ``config``, replacing what the key's
    loaded version contributed (a rejection under the new config is recorded as such)."""
    _checked(key)
    with read_connection(engine) as conn:
        problem = reprocess_problem(conn, source, key)
    obj = source.stat(key)
    if problem or obj is None:
        raise FileActionError(problem or f"File {key} is no longer in the inbox {source.uri}.")
    try:
        return ingest_file(engine, source, obj, config, as_of=as_of, reload=True)
    except RetireRefused as exc:
        raise FileActionError(f"File {key} cannot be reprocessed: {exc}.") from exc
