"""Sensing the inbox: which file versions are new, with a bounded cursor, cut into batches.

Shared by the Dagster sensor and ``usage-pipeline run`` so both request the same work.
Sensing reads listings only (key, size, change token); a file's bytes are read and hashed
once, by the run that ingests it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from usage_pipeline.sources import FileSource, SourceObject

# Objects modified this long before the newest one already seen are assumed seen
# (S3 LastModified is the start of an upload, so a slow upload can appear "late").
LOOKBACK = timedelta(hours=1)
# Feeds other feeds' rows are matched against: requested first when several files are new.
FIRST_FEEDS = ("accounts",)


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


@dataclass(frozen=True)
class Batch:
    """File versions one ingestion run handles, in load order."""

    objects: tuple[SourceObject, ...]

    @property
    def keys(self) -> list[str]:
        return [o.key for o in self.objects]

    @property
    def size(self) -> int:
        return sum(o.size for o in self.objects)

    @property
    def run_key(self) -> str:
        """The identities the batch holds (key + listing signature), hashed: a re-tick that
        sees the same versions asks for the same run, which Dagster then skips."""
        digest = hashlib.sha256()
        for obj in self.objects:
            digest.update(json.dumps([obj.key, *obj.signature]).encode())
        return f"batch:{len(self.objects)}:{digest.hexdigest()[:32]}"


def _load_order(objects: list[SourceObject]) -> list[SourceObject]:
    """Directory feeds first (other feeds' rows are matched against them), then oldest first."""
    return sorted(objects, key=lambda o: (o.feed not in FIRST_FEEDS, _changed(o), o.key))


def _cut(objects: list[SourceObject], max_files: int, max_bytes: int) -> list[list[SourceObject]]:
    batches: list[list[SourceObject]] = []
    size = 0
    for obj in objects:
        if not batches or len(batches[-1]) >= max_files or size + obj.size > max_bytes:
            batches.append([])
            size = 0
        batches[-1].append(obj)
        size += obj.size
    return batches


def plan_batches(
    objects: list[SourceObject], max_files: int, max_bytes: int, limit: int | None = None
) -> list[Batch]:
    """Cut new versions, in load order, into batches of at most ``max_files`` files and
    ``max_bytes`` bytes (a file larger than ``max_bytes`` gets a batch of its own). With
    ``limit``, only the oldest versions that fill ``limit`` batches are planned, so that the
    cursor advances over exactly those; the rest wait for the next tick."""
    ordered = sorted(objects, key=lambda o: (_changed(o), o.key))
    if limit is not None:
        ordered = [o for batch in _cut(ordered, max_files, max_bytes)[:limit] for o in batch]
    return [Batch(tuple(b)) for b in _cut(_load_order(ordered), max_files, max_bytes)]


def new_versions(source: FileSource, cursor: InboxCursor) -> list[SourceObject]:
    """Objects of the inbox listing that the cursor has not seen: read from the listing only
    (key, size, change token), never from the bytes."""
    return [o for o in source.list_objects() if not cursor.is_seen(o)]
