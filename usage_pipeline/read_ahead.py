"""Small files of a batch, read ahead of their transactions and judged together.

A night often brings hundreds of files of a thousand rows. Reading and validating one costs
a few milliseconds whatever its size (pandas and pandera calls), which is most of a small
file's work. So a batch reads its small files first and hands the single chunks of those
whose feed and context agree (:meth:`Feed.batch_key`) to the feed as one frame, then splits
the result by file. Nothing else changes: each file is still claimed, checked for
duplicates, loaded and recorded in its own transaction, with the rows, errors and counts it
gets alone. Each row's index holds its file (high bits) and its row number (low bits).

A file is read as usual, alone, when it cannot be read ahead: its feed does not batch, it is
large or of several chunks, its key or header is refused, it cannot be read or parsed, or
it holds a NUL byte. A file with row errors is judged alone too (its failures are counted
per file); its rows are not read twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from usage_pipeline.config import PipelineConfig
from usage_pipeline.feeds import FEEDS, Feed, FileContext
from usage_pipeline.feeds.base import ChunkResult, process_chunk
from usage_pipeline.reading import open_csv
from usage_pipeline.scan import file_context, file_problem
from usage_pipeline.sources import FileSource, SourceObject, sha256_file
from usage_pipeline.sources.keys import key_problem, unescape_key

WINDOW_FILES = 100  # keys looked at in one window
MAX_FILE_BYTES = 4 * 1024 * 1024  # larger files are read alone, chunk by chunk
ROW_BITS = 32  # a row's index: its file's position << ROW_BITS | its row number
ROW_MASK = (1 << ROW_BITS) - 1


@dataclass
class ReadAhead:
    """One small file read ahead: the listing it was read under, its context, its bytes'
    digest and its one chunk of text cells (as :class:`usage_pipeline.reading.CsvStream`
    gives them) and, once judged with others of its batch, its :class:`ChunkResult` (None:
    judge it alone)."""

    obj: SourceObject
    context: FileContext
    path: Path
    sha256: str
    header: list[str]
    original_header: list[str]
    raw: pd.DataFrame
    result: ChunkResult | None = None
    saw_nul: bool = False  # files with a NUL byte are not read ahead

    def chunks(self) -> Iterator[pd.DataFrame]:
        yield self.raw


def read_ahead(
    source: FileSource,
    keys: Sequence[str],
    config: PipelineConfig,
    as_of: datetime | None,
    stack: ExitStack,
) -> tuple[dict[str, ReadAhead], int]:
    """Read ahead from the start of ``keys`` (local copies live as long as ``stack``) and
    judge the files of one feed and context together. The window ends after
    :data:`WINDOW_FILES` keys or after the file that brings the rows read to ``chunk_rows``
    (so that memory stays within about two chunks). Returns the files read ahead, by key,
    and how many keys of ``keys`` the window covers; the others are read as usual."""
    groups: dict[tuple[str, object], list[ReadAhead]] = {}
    found: dict[str, ReadAhead] = {}
    covered = rows = 0
    for key in keys:
        if covered == WINDOW_FILES or rows >= config.chunk_rows:
            break
        covered += 1
        try:
            read = _read_ahead_one(source, key, config, as_of, stack)
        except Exception:  # noqa: BLE001 - read as usual, alone, which reports the problem
            continue
        if read is not None:
            found[key], rows = read, rows + len(read.raw)
            batch = FEEDS[read.obj.feed].batch_key(read.context)
            groups.setdefault((read.obj.feed, batch), []).append(read)
    for (feed_name, _), members in groups.items():
        try:
            judge_together(FEEDS[feed_name], members)
        except Exception:  # noqa: BLE001 - each member is judged alone, which reports it
            continue
    return found, covered


def _read_ahead_one(
    source: FileSource,
    key: str,
    config: PipelineConfig,
    as_of: datetime | None,
    stack: ExitStack,
) -> ReadAhead | None:
    """The file under ``key`` read ahead, or None when it is not a small file of a feed
    that batches, with a safe key and nothing that rejects it before its rows."""
    obj = source.stat(key)
    feed = FEEDS.get(obj.feed) if obj is not None else None
    if obj is None or feed is None or obj.problem or obj.size > MAX_FILE_BYTES:
        return None
    context = file_context(obj, config, as_of)
    refused = key_problem(unescape_key(key)) or file_problem(obj, context)
    if feed.batch_key(context) is None or refused:
        return None
    return _read_small(feed, obj, context, stack.enter_context(source.local_copy(key)))


def _read_small(
    feed: Feed, obj: SourceObject, context: FileContext, path: Path
) -> ReadAhead | None:
    """The file's one chunk, or None when it is not a small, clean file of its feed."""
    config = context.config
    stream = open_csv(path, obj.name, config.max_file_bytes, config.chunk_rows)
    chunks = stream.chunks()
    try:
        first = next(chunks)
        more = next(chunks, None) is not None  # a second chunk: read no further
    finally:
        chunks.close()
    usual = (
        more
        or stream.saw_nul
        or feed.extra_columns_allowed
        or feed.surveys(stream.header)
        or feed.header_problem(stream.header, context) is not None
    )
    if usual:
        return None
    header, original = stream.header, stream.original_header
    return ReadAhead(obj, context, path, sha256_file(path), header, original, first)


def judge_together(feed: Feed, members: list[ReadAhead]) -> None:
    """One :func:`process_chunk` over the members' chunks (equal batch keys); each member
    without row errors gets its share of the rows as its result."""
    if len(members) < 2:
        return
    frames = [
        read.raw.set_axis(read.raw.index + (position << ROW_BITS))
        for position, read in enumerate(members)
    ]
    result = process_chunk(feed, pd.concat(frames), members[0].context, nul=False)
    if result.report or result.loaded is not None or result.invalid is not None:
        return  # not a row-by-row result: every member is judged alone
    owners = result.rows["row_number"].to_numpy() >> ROW_BITS
    if len(owners) and (np.diff(owners) < 0).any():
        return  # the rows are not in the members' order: every member is judged alone
    bounds = np.searchsorted(owners, np.arange(len(members) + 1))
    with_errors = set((result.errors["row_number"].to_numpy() >> ROW_BITS).tolist())
    no_errors = result.errors.iloc[:0].reset_index(drop=True)
    for position, read in enumerate(members):
        if position in with_errors:
            continue
        rows = result.rows.iloc[bounds[position] : bounds[position + 1]].reset_index(drop=True)
        rows["row_number"] = rows["row_number"].to_numpy() & ROW_MASK
        read.result = ChunkResult(rows=rows, errors=no_errors, failures=Counter())
