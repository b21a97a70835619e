"""A local-folder inbox."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from usage_pipeline.sources.base import (
    FileSource,
    SourceObject,
    SourceUnavailableError,
    check_key,
    is_ignored,
)


class LocalFolderSource(FileSource):
    """Files under a folder; quarantine is ``<inbox>/../quarantine/``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.uri = str(self.root)
        self.quarantine_root = self.root.resolve().parent / "quarantine"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def list_objects(self) -> Iterator[SourceObject]:
        if not self.root.is_dir():
            raise SourceUnavailableError(f"The inbox folder {self.root} does not exist.")
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
            for filename in sorted(filenames):
                path = Path(dirpath) / filename
                key = path.relative_to(self.root).as_posix()
                if is_ignored(key) or not path.is_file():
                    continue
                obj = self.stat(key)
                if obj is not None:
                    yield obj

    def stat(self, key: str) -> SourceObject | None:
        try:
            info = self._path(key).stat()
        except FileNotFoundError:
            return None
        modified = datetime.fromtimestamp(info.st_mtime, tz=timezone.utc)
        changed = datetime.fromtimestamp(max(info.st_mtime, info.st_ctime), tz=timezone.utc)
        return SourceObject(
            key=key,
            size=info.st_size,
            last_modified=modified,
            changed_at=changed,
            version=f"{info.st_ino}:{info.st_mtime_ns}",
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
