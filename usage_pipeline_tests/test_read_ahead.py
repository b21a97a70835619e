"""Small files of a batch are read ahead and judged together (issue 7): each file gets the
rows, errors and counts it gets alone, and a batch loads what file-by-file ingestion loads."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from usage_pipeline import read_ahead as read_ahead_module
from usage_pipeline.batch import ingest_batch
from usage_pipeline.config import PipelineConfig
from usage_pipeline.feeds import FEEDS
from usage_pipeline.feeds.base import process_chunk
from usage_pipeline.feeds.user_activity import UserActivityFeed
from usage_pipeline.ingest import ingest_file
from usage_pipeline.read_ahead import read_ahead
from usage_pipeline.reading import CsvStream
from usage_pipeline.scan import file_context
from usage_pipeline.sources.local import LocalFolderSource
from usage_pipeline.warehouse.engine import get_engine
from usage_pipeline_tests.helpers import drop
from usage_pipeline_tests.test_batches import tables

AS_OF = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
RECEIVED = datetime(2026, 11, 21, 1, 0, tzinfo=timezone.utc)
HEADER = "account_id,user_id,module,activity,count,timestamp"
UA = "user_activity/usage_2026-11-20"
FILES = {
    f"{UA}_a.csv": [
        "A1,u1,Reports,view,3,2026-11-20T10:00:00Z",
        "A1,u2,Reports,edit,4,2026-11-20T01:30:00+02:00",
        "A2,u3,Admin,login,1,1763600000",
    ],
    f"{UA}_b.csv": ["A1,u1,Reports,view,5,", "A3,u9,Admin,login,2,2026-11-20"],
    f"{UA}_c.csv": ["A1,u1,Reports,view,-1,2026-11-20T10:00:00Z", "A1,u4,Reports,view,2,"],
    f"{UA}_d.csv": ["A1,u\0x,Reports,view,1,2026-11-20T10:00:00Z", "A1,u5,Reports,view,1,"],
    f"{UA}_e.csv": "account_id,user_id,module,activity,count,colour\nA1,u1,M,a,1,red\n",
    f"{UA}_f.csv": [f"A1,u{n},Reports,view,1,2026-11-20T0{n}:00:00Z" for n in range(9)],
    "user_activity/usage_2026-11-18_g.csv": ["A1,u1,Reports,view,7,"],
    "account_usage/usage_2026-11-20.csv": "account_id,module,activity,count,date\nA1,M,a,1,\n",
}


@pytest.fixture
def night(inbox: Path) -> list[str]:
    """The files above, in key order, received the night after 2026-11-20."""
    for key, lines in FILES.items():
        drop(inbox, key, lines, header=HEADER, modified=RECEIVED)
    return list(FILES)


def test_small_clean_files_are_judged_together_as_each_would_be_alone(
    inbox: Path, night: list[str]
) -> None:
    config = PipelineConfig(
        inbox=str(inbox), warehouse="sqlite://", chunk_rows=8, max_reject_ratio=0.5
    )
    source = LocalFolderSource(inbox)
    with ExitStack() as stack:
        found, covered = read_ahead(source, night, config, AS_OF, stack)

        # d: a NUL byte; e: an unknown column; f: two chunks of 8 rows. c has a row error and
        # g another drop day: read, but judged alone. g brings the rows read to 3 + 2 + 2 + 1
        # = 8 = chunk_rows: the window ends there, before the account_usage file.
        assert covered == 7
        assert sorted(found) == [night[6], f"{UA}_a.csv", f"{UA}_b.csv", f"{UA}_c.csv"]
        judged = sorted(key for key, read in found.items() if read.result is not None)
        assert judged == [f"{UA}_a.csv", f"{UA}_b.csv"]
        b = found[f"{UA}_b.csv"].result
        assert b is not None
        assert b.rows.to_dict("list") == {
            "row_number": [2, 3],
            "activity_date": ["2026-11-20", "2026-11-20"],
            "account_id": ["A1", "A3"],
            "user_id": ["u1", "u9"],
            "module": ["Reports", "Admin"],
            "activity": ["view", "login"],
            "count": [5, 2],
        }
        assert b.errors.empty and not b.failures
        feed = FEEDS["user_activity"]
        for key in judged:
            read = found[key]
            context = file_context(read.obj, config, AS_OF)
            assert read.context == context
            alone = process_chunk(feed, read.raw, context, nul=False)
            assert read.result is not None
            pd.testing.assert_frame_equal(read.result.rows, alone.rows)
        a_days = found[f"{UA}_a.csv"].result.rows["activity_date"].tolist()  # type: ignore[union-attr]
        assert a_days == ["2026-11-20", "2026-11-19", "2025-11-20"]


def test_a_batch_loads_what_file_by_file_ingestion_loads(
    inbox: Path,
    night: list[str],
    warehouse_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = LocalFolderSource(inbox)
    alone_url = f"sqlite:///{tmp_path / 'alone.db'}"
    alone = PipelineConfig(
        inbox=str(inbox), warehouse=alone_url, chunk_rows=8, max_reject_ratio=0.5
    )
    for key in night:
        ingest_file(get_engine(alone_url), source, source.stat(key), alone, as_of=AS_OF)

    config = PipelineConfig(
        inbox=str(inbox), warehouse=warehouse_url, chunk_rows=8, max_reject_ratio=0.5
    )
    judged: list[int] = []  # the rows of each user_activity chunk judged
    real = UserActivityFeed.process_chunk

    def recording(self, raw, context):  # type: ignore[no-untyped-def]
        judged.append(len(raw))
        return real(self, raw, context)

    monkeypatch.setattr(UserActivityFeed, "process_chunk", recording)
    outcomes = list(ingest_batch(get_engine(warehouse_url), source, night, config, as_of=AS_OF))

    # a, b and c together (3 + 2 + 2 rows), then alone: c (a row error), d (clean rows of a
    # file with a NUL byte), f (two chunks), g (the only file of its drop day)
    assert judged == [7, 2, 1, 8, 1, 1]

    assert [(o.source_key, o.status, o.rows_loaded, o.rows_rejected) for o in outcomes] == [
        (f"{UA}_a.csv", "loaded", 3, 0),
        (f"{UA}_b.csv", "loaded", 2, 0),
        (f"{UA}_c.csv", "loaded", 1, 1),
        (f"{UA}_d.csv", "loaded", 1, 1),
        (f"{UA}_e.csv", "rejected", 0, 0),
        (f"{UA}_f.csv", "loaded", 9, 0),
        ("user_activity/usage_2026-11-18_g.csv", "loaded", 1, 0),
        ("account_usage/usage_2026-11-20.csv", "loaded", 1, 0),
    ]
    c = next(o for o in outcomes if o.source_key == f"{UA}_c.csv")
    assert dict(c.failures) == {"count: is negative": 1}
    assert tables(warehouse_url) == tables(alone_url)


def test_a_window_looks_at_most_at_window_files_keys(
    inbox: Path, night: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(read_ahead_module, "WINDOW_FILES", 2)
    config = PipelineConfig(inbox=str(inbox), warehouse="sqlite://")
    with ExitStack() as stack:
        found, covered = read_ahead(LocalFolderSource(inbox), night, config, AS_OF, stack)

        assert covered == 2
        assert sorted(found) == [f"{UA}_a.csv", f"{UA}_b.csv"]
        assert all(read.result is not None for read in found.values())


def test_a_file_of_several_chunks_is_read_no_further_than_its_second(
    inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [f"A1,u{n},Reports,view,1,2026-11-20T00:00:00Z" for n in range(10)]
    drop(inbox, f"{UA}_long.csv", lines, header=HEADER, modified=RECEIVED)
    pulled: list[int] = []
    real = CsvStream.chunks

    def counting(self):  # type: ignore[no-untyped-def]
        for chunk in real(self):
            pulled.append(len(chunk))
            yield chunk

    monkeypatch.setattr(CsvStream, "chunks", counting)
    config = PipelineConfig(inbox=str(inbox), warehouse="sqlite://", chunk_rows=2)
    with ExitStack() as stack:
        found, covered = read_ahead(
            LocalFolderSource(inbox), [f"{UA}_long.csv"], config, AS_OF, stack
        )

    assert (found, covered) == ({}, 1)
    assert pulled == [2, 2]  # of five chunks: it is read alone, as usual
