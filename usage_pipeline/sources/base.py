"""The file-source interface shared by the local-folder and S3 inboxes."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from usage_pipeline.sources.keys import escape_key, key_problem, unescape_key

IN_FLIGHT_SUFFIXES = (".tmp", ".part")
IN_FLIGHT_MARKERS = ("_COPYING_",)


class SourceUnavailableError(RuntimeError):
    """The inbox cannot be listed or read (missing folder, unreachable endpoint, no bucket)."""


class UnsafeKeyError(ValueError):
    """A key that cannot be used safely (see :func:`~usage_pipeline.sources.keys.key_problem`)."""


@dataclass(frozen=True)
class SourceObject:
    """One object in the inbox, addressed by its key relative to the inbox root."""

    key: str  # as text (:func:`~usage_pipeline.sources.keys.escape_key`)
    size: int
    last_modified: datetime
    # When the object last changed in the inbox (a moved-in file keeps an old mtime but gets a
    # new ctime) and an opaque version token (S3 ETag): what the sensor compares.
    changed_at: datetime | None = None
    version: str = ""
    # Why the object must not be read (an unsafe key, a link leading outside the inbox), as a
    # clause; such an object is recorded as rejected without its bytes being read.
    problem: str | None = None

    @property
    def signature(self) -> tuple[str, int, str]:
        """What tells two sightings of the key apart for the sensor's cursor."""
        return ((self.changed_at or self.last_modified).isoformat(), self.size, self.version)

    @property
    def feed(self) -> str:
        """The first path segment names the feed ('' for a file at the inbox root)."""
        parts = self.key.split("/")
        return parts[0] if len(parts) > 1 else ""

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


def check_key(key: str) -> str:
    """Return ``key`` (an escaped key) if it is safe to use, else raise :class:`UnsafeKeyError`."""
    problem = key_problem(unescape_key(key))
    if problem:
        raise UnsafeKeyError(f"Key {escape_key(key)} cannot be used: {problem}.")
    return key


def is_ignored(key: str) -> bool:
    """Hidden files and in-flight uploads are never sensed."""
    segments = [s for s in key.split("/") if s]
    # "." and ".." are not hidden names: such keys are refused visibly (a rejected ledger row)
    if any(s.startswith((".", "_")) and s not in (".", "..") for s in segments):
        return True
    name = segments[-1] if segments else ""
    return name.lower().endswith(IN_FLIGHT_SUFFIXES) or any(m in name for m in IN_FLIGHT_MARKERS)


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


class FileSource(ABC):
    """An inbox: list objects, read one as a local file, write quarantine copies."""

    uri: str

    @abstractmethod
    def list_objects(self) -> Iterator[SourceObject]:
        """Every object under the inbox that is not hidden or in flight."""

    @abstractmethod
    def stat(self, key: str) -> SourceObject | None:
        """The object's current size and last-modified time, or None if it is gone."""

    @abstractmethod
    def local_copy(self, key: str) -> AbstractContextManager[Path]:
        """A context manager yielding a local path holding the object's bytes."""

    @abstractmethod
    def write_quarantine(self, key: str, files: dict[str, Path]) -> str:
        """Store ``files`` (name suffix -> local path) as ``key + suffix`` in the quarantine;
        return the location of the first one."""
