"""SQLite appends on a writer thread: every value stored exactly as ``executemany`` stores
it, rows in order, the connection never shared, errors raised to the caller."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.ingest import ingest_file
from usage_pipeline.sources.local import LocalFolderSource
from usage_pipeline.warehouse import sqlite_append
from usage_pipeline.warehouse.bulk import bulk_writer
from usage_pipeline.warehouse.engine import get_engine
from usage_pipeline.warehouse.sqlite_append import json_ready, json_rows

TRICKY = [
    'say "hi"',
    "back\\slash",
    "line\nbreak\ttab\r",
    "\x01\x1f\x7f",
    "café – ü",
    "emoji 🎉 and 𝄞",
    "\u2028\u2029",
    "</script>/",
    "",
    " ",
    "00123",
    "1e5",
    "null",
    "true",
    "[1, 2]",
    "a\x00b",  # a NUL: JSON cannot carry it to SQLite as is, the frame is written at once
    None,
]

metadata = sa.MetaData()
TABLE = sa.Table(
    "t",
    metadata,
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("text", sa.Text),
    sa.Column("day", sa.Date),
)
COLUMNS = ["n", "text", "day"]


def _frame(count: int, texts: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n": np.arange(count, dtype="int64") * 3_000_000_000,  # beyond 32 bits
            "text": [texts[i % len(texts)] for i in range(count)],
            "day": ["2026-11-20"] * count,
        }
    )


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'append.db'}")
    metadata.create_all(engine)
    return engine


@pytest.fixture
def statements(engine: sa.Engine) -> list[str]:
    """Every insert executed on ``engine`` (JSON or executemany), and the thread that
    executed it."""
    seen: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        kind = "json" if "json_each" in statement else "executemany" if executemany else None
        if kind:
            seen.append(f"{kind} {threading.current_thread().name}")

    return seen


def _stored(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        query = "SELECT n, typeof(n), text, typeof(text), day, typeof(day) FROM t ORDER BY rowid"
        return [tuple(row) for row in conn.exec_driver_sql(query)]


def _expected(frame: pd.DataFrame) -> list[tuple]:
    return [
        (int(n), "integer", text, "null" if text is None else "text", day, "text")
        for n, text, day in frame[COLUMNS].itertuples(index=False)
    ]


def test_which_frames_go_as_json() -> None:
    assert json_ready(_frame(3, ["a", None]), COLUMNS)
    missing = pd.Series([np.nan], dtype=object)
    assert json_ready(pd.DataFrame({"n": [1], "text": missing, "day": [None]}), COLUMNS)
    floats = pd.DataFrame({"n": [1.5], "text": ["a"], "day": ["2026-11-20"]})
    assert not json_ready(floats, COLUMNS)  # a float would not come back exactly
    nullable = pd.DataFrame({"n": pd.array([1, None], dtype="Int64"), "text": "a", "day": "d"})
    assert not json_ready(nullable, COLUMNS)
    mixed = pd.DataFrame({"n": [1, 2], "text": ["a", 2], "day": ["d", "d"]})
    assert not json_ready(mixed, COLUMNS)
    assert json_rows(_frame(2, ["é", None]), COLUMNS) == (
        '[[0,"é","2026-11-20"],[3000000000,null,"2026-11-20"]]'
    )
    assert json_rows(_frame(1, ["a\x00b"]), COLUMNS) is None


def test_every_value_as_executemany_stores_it(
    engine: sa.Engine, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_append, "BACKGROUND_MIN_ROWS", 5)
    monkeypatch.setattr(sqlite_append, "SLICE_ROWS", 7)
    clean = [t for t in TRICKY if t is None or "\x00" not in t]
    large = _frame(40, clean)  # 6 slices of at most 7 rows, on the writer thread
    small = _frame(3, ["small"])  # under the threshold: executemany, after the slices
    with_nul = _frame(6, ["a\x00b", "c"])  # JSON cannot carry it: executemany on the writer
    with engine.begin() as conn, bulk_writer(conn, TABLE, COLUMNS) as write:
        assert write(large) == 40
        assert write(small) == 3
        assert write(with_nul) == 6
    assert _stored(engine) == _expected(large) + _expected(small) + _expected(with_nul)
    main = threading.main_thread().name
    assert statements == [
        *(["json sqlite-append"] * 6),
        f"executemany {main}",
        "executemany sqlite-append",
    ]


def test_other_columns_or_no_json_functions_mean_executemany(
    engine: sa.Engine, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = _frame(12_000, ["x", None])
    nullable = frame.astype({"n": "Int64"})  # an extension dtype: not sent as JSON
    with engine.begin() as conn, bulk_writer(conn, TABLE, COLUMNS) as write:
        write(nullable)
    monkeypatch.setattr(sqlite_append, "JSON_FUNCTIONS", False)
    with engine.begin() as conn, bulk_writer(conn, TABLE, COLUMNS) as write:
        write(frame)
    main = threading.main_thread().name
    assert statements == [f"executemany {main}"] * 2
    assert _stored(engine) == _expected(frame) * 2


def test_an_error_on_the_writer_reaches_the_caller_and_nothing_is_kept(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_append, "BACKGROUND_MIN_ROWS", 2)
    broken = pd.DataFrame({"n": pd.Series([None, None], dtype=object), "text": "a", "day": "d"})
    with (
        pytest.raises(sa.exc.IntegrityError, match="NOT NULL"),
        engine.begin() as conn,
        bulk_writer(conn, TABLE, COLUMNS) as write,
    ):
        write(_frame(4, ["ok"]))
        write(broken)  # written on the writer thread: its error comes at the exit
    assert _stored(engine) == []  # the transaction rolled back
    assert not [t for t in threading.enumerate() if t.name == "sqlite-append"]


def test_the_callers_error_waits_for_the_writer_before_the_rollback(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_append, "BACKGROUND_MIN_ROWS", 2)
    with (
        pytest.raises(RuntimeError, match="rejected mid-file"),
        engine.begin() as conn,
        bulk_writer(conn, TABLE, COLUMNS) as write,
    ):
        write(_frame(30_000, ["a", "b"]))
        raise RuntimeError("rejected mid-file")
    assert not [t for t in threading.enumerate() if t.name == "sqlite-append"]
    assert _stored(engine) == []


def test_a_large_file_loads_exactly_through_the_writer_thread(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "user_activity").mkdir(parents=True)
    rng = random.Random(7)
    lines = ["account_id,user_id,module,activity,count,timestamp"]
    expected = []
    for row in range(25_000):
        account, user = f"A{rng.randrange(50)}", f"U{rng.randrange(900)}"
        module, count = f"M{rng.randrange(4)}", rng.randrange(1, 50)
        hour = rng.randrange(48)  # two days
        day = f"2026-11-{20 + hour // 24}"
        lines.append(f"{account},{user},{module},view,{count},{day}T{hour % 24:02d}:15:00Z")
        expected.append((row + 2, day, account, user, module, "view", count))
    (inbox / "user_activity" / "big.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    config = PipelineConfig(inbox=str(inbox), warehouse=url, chunk_rows=10_000)
    engine = get_engine(url)
    seen: list[str] = []
    sa.event.listen(
        engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: (
            seen.append(threading.current_thread().name) if "json_each" in statement else None
        ),
    )
    source = LocalFolderSource(str(inbox))
    outcome = ingest_file(engine, source, source.stat("user_activity/big.csv"), config)
    assert (outcome.status, outcome.rows_loaded, outcome.rows_rejected) == ("loaded", 25_000, 0)
    # chunks of 10,000, 10,000 and 5,000 rows: the last, under the threshold, at once
    assert seen == ["sqlite-append"] * 2
    with engine.connect() as conn:
        stored = conn.exec_driver_sql(
            "SELECT row_number, activity_date, account_id, user_id, module, activity, count"
            " FROM user_activity_contributions ORDER BY row_number"
        ).all()
    assert [tuple(row) for row in stored] == expected
