"""Objects refused without reading their bytes: a key that cannot be used safely, a link
leading outside the inbox, a file the process may not read (SPEC §1).

Each is one ``rejected`` ledger row under its escaped key. Its bytes are never read, so its
``sha256`` is the empty string: the same refused object sensed again finds that row and adds
nothing; once the file becomes readable under a safe name its bytes make a new version.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from usage_pipeline.file_status import FileStatus
from usage_pipeline.sources import SourceObject
from usage_pipeline.warehouse.tables import ingested_files

UNREAD = ""  # the sha256 of a version whose bytes were never read


def unreadable_reason(exc: OSError) -> str:
    """The clause for a file that cannot be read (permission denied, a folder, …)."""
    return f"it cannot be read ({exc.strerror or type(exc).__name__})"


def record_refusal(engine: sa.Engine, obj: SourceObject, sentence: str) -> tuple[int, bool]:
    """Record ``obj`` as rejected with ``sentence``; return (file_id, whether the row is new).
    Safe to race: a concurrent run recording the same refusal finds the other's row."""
    f = ingested_files.c
    identity = (f.source_key == obj.key) & (f.sha256 == UNREAD)
    for _ in range(2):
        with engine.begin() as conn:
            found = conn.execute(sa.select(f.file_id).where(identity)).scalar()
            if found is not None:
                return int(found), False
            try:
                with conn.begin_nested():
                    file_id = conn.execute(
                        ingested_files.insert().returning(f.file_id),
                        {
                            "feed": obj.feed,
                            "source_key": obj.key,
                            "sha256": UNREAD,
                            "size_bytes": obj.size,
                            "status": FileStatus.REJECTED.value,
                            "rows_total": 0,
                            "rows_loaded": 0,
                            "rows_rejected": 0,
                            "error": sentence,
                            "received_at": obj.last_modified,
                            "processed_at": datetime.now(timezone.utc),
                        },
                    ).scalar_one()
                return int(file_id), True
            except sa.exc.IntegrityError:
                continue
    raise RuntimeError(f"Could not record the refusal of {obj.key}.")
