"""The ``ingested_files`` ledger around one file version: its claim, the duplicate and
previous-version look-ups, its supersession and its final status (SPEC §1)."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from usage_pipeline.file_status import FileStatus
from usage_pipeline.outcome import IngestOutcome
from usage_pipeline.sources import SourceObject
from usage_pipeline.warehouse.engine import conflict_insert, read_connection
from usage_pipeline.warehouse.tables import ingested_files

f = ingested_files.c


def claim(engine: sa.Engine, obj: SourceObject, sha: str) -> tuple[int, str]:
    """Find or insert the ledger row of this version; return (file_id, status). The row is
    read first (a rerun finds its own claim without spending a file_id); a new version is
    one ``INSERT … ON CONFLICT DO NOTHING``, and when another run claimed it in between
    (the conflict waits for that run's commit) its row is read instead."""
    query = sa.select(f.file_id, f.status).where(f.source_key == obj.key, f.sha256 == sha)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # The claim is advisory: no need to wait for its WAL flush. The file's own
            # transaction commits synchronously, which makes this one durable too.
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        row = conn.execute(query).first()
        if row is not None:
            return int(row.file_id), str(row.status)
        insert = (
            conflict_insert(conn, ingested_files)
            .values(
                feed=obj.feed,
                source_key=obj.key,
                sha256=sha,
                size_bytes=obj.size,
                status=FileStatus.PROCESSING.value,
                received_at=obj.last_modified,
            )
            .on_conflict_do_nothing(index_elements=["source_key", "sha256"])
            .returning(f.file_id)
        )
        file_id = conn.execute(insert).scalar()
        if file_id is not None:
            return int(file_id), FileStatus.PROCESSING.value
        row = conn.execute(query).one()
        return int(row.file_id), str(row.status)


def lock_status(conn: sa.Connection, file_id: int) -> str:
    """The version's status, locked for this transaction on PostgreSQL."""
    query = sa.select(f.status).where(f.file_id == file_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return str(conn.execute(query).scalar_one())


def find_duplicate(conn: sa.Connection, obj: SourceObject, sha: str) -> sa.Row | None:
    """An already loaded file of the same feed with the same bytes under another key. On
    PostgreSQL a transaction lock on the digest makes concurrent loads of identical bytes
    queue, so the second one sees the first as loaded."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:sha))"), {"sha": sha})
    return conn.execute(
        sa.select(f.file_id, f.source_key)
        .where(
            f.feed == obj.feed,
            f.sha256 == sha,
            f.status == FileStatus.LOADED.value,
            f.source_key != obj.key,
        )
        .order_by(f.file_id)
        .limit(1)
    ).first()


def duplicate_sentence(key: str, duplicate: sa.Row) -> str:
    """The ledger error of a version held back as a duplicate."""
    return (
        f"File {key} has the same bytes as file {duplicate.file_id}"
        f" ({duplicate.source_key}) and was not loaded; run"
        f" 'usage-pipeline ingest --force {key}' to load it anyway."
    )


def previous_versions(conn: sa.Connection, key: str, file_id: int) -> list[int]:
    """The key's currently loaded version(s) other than ``file_id``."""
    query = sa.select(f.file_id).where(
        f.source_key == key, f.status == FileStatus.LOADED.value, f.file_id != file_id
    )
    return [int(i) for i in conn.execute(query).scalars()]


def supersede(conn: sa.Connection, file_ids: list[int]) -> None:
    """Mark versions replaced by a newer version of their key."""
    if file_ids:
        conn.execute(
            ingested_files.update()
            .where(f.file_id.in_(file_ids))
            .values(status=FileStatus.SUPERSEDED.value)
        )


def record_final(conn: sa.Connection, outcome: IngestOutcome) -> None:
    """Write the version's final status, counts and error (in the file's transaction)."""
    counted = outcome.status != FileStatus.DUPLICATE
    loaded = outcome.status == FileStatus.LOADED
    conn.execute(
        ingested_files.update()
        .where(f.file_id == outcome.file_id)
        .values(
            feed=outcome.feed,
            status=str(outcome.status),
            rows_total=outcome.rows_total if counted else None,
            rows_loaded=outcome.rows_loaded if counted else None,
            rows_rejected=outcome.rows_rejected if counted else None,
            error=outcome.error,
            processed_at=datetime.now(timezone.utc),
            min_day=outcome.min_day if loaded else None,
            max_day=outcome.max_day if loaded else None,
        )
    )


def existing_outcome(engine: sa.Engine, file_id: int) -> IngestOutcome:
    """The outcome of a version already processed, from its ledger row."""
    with read_connection(engine) as conn:
        row = conn.execute(sa.select(ingested_files).where(f.file_id == file_id)).one()
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
