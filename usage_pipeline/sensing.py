"""Sensing the inbox: which file versions are new, with a bounded cursor.

Shared by the Dagster sensor and ``usage-pipeline run`` so both request the same work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from usage_pipeline.sources import FileSource, SourceObject, sha256_file
from usage_pipeline.warehouse.engine import read_connection
from usage_pipeline.warehouse.tables import ingested_files

# Objects modified this long before the newest one already seen are assumed seen
# (S3 LastModified is the start of an upload, so a slow upload can appear "late").
LOOKBACK = timedelta(hours=1)
SHA_IN_PARTITION_KEY = 16
# Feeds other feeds' rows are matched against: requested first when several files are new.
FIRST_FEEDS = ("accounts",)


@dataclass(frozen=True)
class SensedFile:
    """A file version to ingest: its object, bytes identity, partition and run key."""

    obj: SourceObject
    sha256: str
    partition_key: str
    run_key: str


@dataclass(frozen=True)
class InboxCursor:
    """High-water mark of last-modified times plus the objects seen within ``LOOKBACK``
    of it: bounded by the drops of one hour, whatever the size of the inbox."""

    high_water: datetime | None
    recent: dict[str, tuple[str, int, str]]

    @staticmethod
    def parse(text: str | None) -> InboxCursor:
        if not text:
            return InboxCursor(None, {})
        data = json.loads(text)
        mark = data.get("high_water")
        recent = {k: (v[0], int(v[1]), str(v[2])) for k, v in data.get("recent", {}).items()}
        return InboxCursor(datetime.fromisoformat(mark) if mark else None, recent)

    def dump(self) -> str:
        mark = self.high_water.isoformat() if self.high_water else None
        return json.dumps({"high_water": mark, "recent": self.recent}, sort_keys=True)

    def is_seen(self, obj: SourceObject) -> bool:
        if self.high_water is None:
            return False
        if _changed(obj) < self.high_water - LOOKBACK:
            return True
        return self.recent.get(obj.key) == obj.signature

    def advanced(self, processed: list[SourceObject]) -> InboxCursor:
        if not processed:
            return self
        mark = max(
            [_changed(o) for o in processed] + ([self.high_water] if self.high_water else [])
        )
        recent = dict(self.recent)
        recent.update({o.key: o.signature for o in processed})
        floor = mark - LOOKBACK
        kept = {k: v for k, v in recent.items() if datetime.fromisoformat(v[0]) >= floor}
        return InboxCursor(mark, kept)


def _changed(obj: SourceObject) -> datetime:
    return obj.changed_at or obj.last_modified


def partition_key_for(key: str, sha: str) -> str:
    """The ``inbox_files`` partition of a file version: ``<key>@<sha256 prefix>``."""
    return f"{key}@{sha[:SHA_IN_PARTITION_KEY]}"


def split_partition_key(partition_key: str) -> tuple[str, str]:
    """Inverse of :func:`partition_key_for`: (key, sha256 prefix)."""
    key, _, sha = partition_key.rpartition("@")
    return key, sha


def _ledger_versions(conn: sa.Connection, key: str) -> list[tuple[str, str]]:
    f = ingested_files.c
    rows = conn.execute(
        sa.select(f.sha256, f.status).where(f.source_key == key).order_by(f.file_id.desc())
    ).all()
    return [(str(r.sha256), str(r.status)) for r in rows]


def needs_ingestion(conn: sa.Connection, key: str, sha: str) -> tuple[bool, int]:
    """Whether this version must be ingested, and its generation (how many other versions of
    the key the ledger knows; it tells a revert to earlier bytes apart from the first load)."""
    versions = _ledger_versions(conn, key)
    others = sum(1 for other_sha, _ in versions if other_sha != sha)
    current = next(((s, st) for s, st in versions if st != "superseded"), None)
    if current is not None and current[0] == sha and current[1] != "processing":
        return False, others
    return True, others


def sense(
    source: FileSource, engine: sa.Engine, cursor: InboxCursor, max_files: int = 500
) -> tuple[list[SensedFile], InboxCursor]:
    """List the inbox, hash objects not yet seen (``accounts`` files first, then oldest first,
    at most ``max_files``) and return the versions that need ingestion plus the advanced
    cursor."""
    candidates = sorted(
        (o for o in source.list_objects() if not cursor.is_seen(o)),
        key=lambda o: (o.feed not in FIRST_FEEDS, _changed(o), o.key),
    )[:max_files]
    hashed = []
    for obj in candidates:
        with source.local_copy(obj.key) as path:
            hashed.append((obj, sha256_file(path)))
    sensed: list[SensedFile] = []
    with read_connection(engine) as conn:
        for obj, sha in hashed:
            required, generation = needs_ingestion(conn, obj.key, sha)
            if required:
                sensed.append(
                    SensedFile(
                        obj,
                        sha,
                        partition_key_for(obj.key, sha),
                        run_key=f"{obj.key}@{sha}#{generation}",
                    )
                )
    return sensed, cursor.advanced(candidates)
