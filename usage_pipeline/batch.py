"""Ingest a batch of file versions: one run's bounded work, each file in its own
transaction, a bad or vanished file never stopping the ones after it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from datetime import datetime

import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.file_status import FileStatus
from usage_pipeline.ingest import IngestOutcome, ingest_file
from usage_pipeline.read_ahead import WINDOW_FILES, read_ahead
from usage_pipeline.sources import FileSource, SourceObject
from usage_pipeline.wording import capped

MISSING = FileStatus.MISSING.value  # left the inbox between listing and reading: nothing recorded
FAILED = FileStatus.FAILED.value  # an unexpected error rolled the file back; a rerun retries it


def _feed_of(key: str) -> str:
    return SourceObject(key=key, size=0, last_modified=datetime.min).feed


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else 'no detail'}"


def _missing(key: str) -> IngestOutcome:
    return IngestOutcome(
        key,
        "",
        _feed_of(key),
        status=MISSING,
        error=f"File {key} left the inbox before it was read; nothing was recorded.",
    )


def ingest_batch(
    engine: sa.Engine,
    source: FileSource,
    keys: Sequence[str],
    config: PipelineConfig,
    *,
    force: bool = False,
    as_of: datetime | None = None,
) -> Iterator[IngestOutcome]:
    """Ingest ``keys`` in order, yielding each file's outcome as soon as it is committed.

    Keys go in windows: their small files are read ahead and judged together
    (:mod:`usage_pipeline.read_ahead`); each file still loads in its own transaction. A
    file that can no longer be found is yielded as ``missing``; an unexpected error is
    yielded as ``failed`` with its reason and the batch goes on. An unreachable warehouse
    (a connection error) stops the batch: every later file would fail the same way, and a
    rerun of the batch skips the files already done.
    """
    position = 0
    while position < len(keys):
        with ExitStack() as stack:  # the window's local copies
            window = keys[position : position + WINDOW_FILES]
            ahead, covered = read_ahead(source, window, config, as_of, stack)
            for key in window[:covered]:
                read = ahead.get(key)
                # a file read ahead keeps the listing its bytes were read under; any other
                # is looked at again now, just before its bytes are read
                obj = read.obj if read is not None else _stat(source, key)
                if not isinstance(obj, SourceObject):
                    yield obj
                    continue
                try:
                    yield ingest_file(
                        engine, source, obj, config, force=force, as_of=as_of, ahead=read
                    )
                except (sa.exc.OperationalError, sa.exc.InterfaceError):
                    raise
                except FileNotFoundError:  # deleted between its listing (or stat) and its download
                    yield _missing(key)
                except Exception as exc:  # one bad file must not stop the batch
                    yield _failed(key, exc)
        position += covered


def _stat(source: FileSource, key: str) -> SourceObject | IngestOutcome:
    """The object under ``key`` now, or the outcome of a file that cannot be found."""
    try:
        obj = source.stat(key)
    except FileNotFoundError:
        return _missing(key)
    except Exception as exc:  # one bad file must not stop the batch
        return _failed(key, exc)
    return obj if obj is not None else _missing(key)


def _failed(key: str, exc: Exception) -> IngestOutcome:
    return IngestOutcome(
        key,
        "",
        _feed_of(key),
        status=FAILED,
        error=capped(
            f"File {key} could not be processed ({_one_line(exc)}); nothing of it"
            " was loaded and a rerun tries it again."
        ),
    )
