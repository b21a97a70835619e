"""A local-folder inbox."""

from __future__ import annotations

import os
import shutil
import stat as stat_mode
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from usage_pipeline.sources.base import (
    FileSource,
    SourceObject,
    SourceUnavailableError,
    UnsafeKeyError,
    check_key,
    is_ignored,
)
from usage_pipeline.sources.keys import escape_key, key_problem, leaves_inbox, unescape_key

LINK_OUTSIDE = "it is a link leading outside the inbox and is not followed"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class LocalFolderSource(FileSource):
    """Files under a folder; quarantine is ``<inbox>/../quarantine/``. Links to files are
    followed while they stay inside the inbox; links to folders are not listed."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.uri = str(self.root)
        self.quarantine_root = self.root.resolve().parent / "quarantine"

    def _inside(self, path: Path, root: str | None = None) -> bool:
        """Whether ``path``, every link resolved, is inside the inbox (``root``: its real path)."""
        root = root or os.path.realpath(self.root)
        return os.path.realpath(path).startswith(root.rstrip(os.sep) + os.sep)

    def _path(self, key: str) -> Path:
        """The file of a safe key, refusing one that leads outside the inbox."""
        path = self.root / unescape_key(check_key(key))
        if not self._inside(path):
            raise UnsafeKeyError(f"Key {key} cannot be used: {LINK_OUTSIDE}.")
        return path

    def list_objects(self) -> Iterator[SourceObject]:
        """Every file, by escaped key; a name that cannot be used safely is listed with its
        ``problem`` (it is recorded as rejected) instead of stopping the listing."""
        if not self.root.is_dir():
            raise SourceUnavailableError(f"The inbox folder {self.root} does not exist.")
        root = os.path.realpath(self.root)
        for dirpath, dirnames, filenames in os.walk(self.root):  # never into a folder link
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
            for filename in sorted(filenames):
                key = escape_key((Path(dirpath) / filename).relative_to(self.root).as_posix())
                if is_ignored(key):
                    continue
                obj = self._stat(key, root)
                if obj is not None:
                    yield obj

    def stat(self, key: str) -> SourceObject | None:
        return self._stat(key, None)

    def _stat(self, key: str, listed_under: str | None) -> SourceObject | None:
        """``listed_under``: the inbox's real path when ``key`` comes from the listing, whose
        folders are real folders, so only a link in the file itself must be resolved."""
        raw = unescape_key(key)
        problem = key_problem(raw)
        if problem and leaves_inbox(raw):  # not even the metadata of a path outside
            return SourceObject(key=key, size=0, last_modified=_now(), problem=problem)
        path = self.root / raw
        try:
            info = path.lstat()
            if listed_under is None or stat_mode.S_ISLNK(info.st_mode):
                if not self._inside(path, listed_under):
                    problem = problem or LINK_OUTSIDE  # its own metadata, not its target's
                else:
                    info = path.stat()  # a link that stays inside is followed
            if not problem and not stat_mode.S_ISREG(info.st_mode):
                return None  # a folder, a pipe, a socket, a dangling link: not a file drop
        except FileNotFoundError:
            return None
        except OSError as exc:
            reason = f"it cannot be read ({exc.strerror or type(exc).__name__})"
            return SourceObject(key=key, size=0, last_modified=_now(), problem=problem or reason)
        modified = datetime.fromtimestamp(info.st_mtime, tz=timezone.utc)
        changed = datetime.fromtimestamp(max(info.st_mtime, info.st_ctime), tz=timezone.utc)
        return SourceObject(
            key=key,
            size=info.st_size,
            last_modified=modified,
            changed_at=changed,
            version=f"{info.st_ino}:{info.st_mtime_ns}",
            problem=problem,
        )

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        yield self._path(key)

    def write_quarantine(self, key: str, files: dict[str, Path]) -> str:
        target = self.quarantine_root / check_key(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        written = []
        for suffix, path in files.items():
            destination = target.with_name(target.name + suffix)
            shutil.copyfile(path, destination)
            written.append(str(destination))
        return written[0]
