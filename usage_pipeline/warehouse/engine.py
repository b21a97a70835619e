"""Engines for the warehouse URL (SQLite by default, PostgreSQL via psycopg 3)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from usage_pipeline.warehouse.functions import create_functions
from usage_pipeline.warehouse.migrations import migrate
from usage_pipeline.warehouse.tables import metadata
from usage_pipeline.wording import name_list

_ENGINES: dict[tuple[str, int], sa.Engine] = {}
READ_ONLY = "usage_pipeline_read_only"


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached or prepared."""


SUPPORTED = ("sqlite", "postgresql")


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` and use the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def parse_url(url: str) -> URL:
    """The warehouse URL, or a :class:`WarehouseError` sentence when it is not one this
    project can use (only SQLite and PostgreSQL are)."""
    try:
        parsed = make_url(normalise_url(url))
    except sa.exc.ArgumentError as exc:
        raise WarehouseError(
            f"The warehouse URL {url!r} is not a database URL (expected sqlite:///PATH or"
            " postgresql://USER@HOST/DATABASE)."
        ) from exc
    if parsed.get_backend_name() not in SUPPORTED:
        raise WarehouseError(
            f"The warehouse URL {parsed!r} is not supported: use sqlite:///PATH or"
            " postgresql://USER@HOST/DATABASE."
        )
    return parsed


def _create_engine(url: URL | str, **kwargs: Any) -> sa.Engine:
    try:
        return sa.create_engine(url, **kwargs)
    except (ImportError, sa.exc.ArgumentError) as exc:
        raise WarehouseError(f"The warehouse {url!r} cannot be opened: {exc}.") from exc


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


def _absolute(url: str) -> str:
    """A SQLite URL with an absolute path: the engine cache must not hand a relative path
    opened in another working folder to a command run in this one."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if database.startswith("file:"):
        return url
    return parsed.set(database=str(Path(database).resolve())).render_as_string(hide_password=False)


def is_postgres(engine: sa.Engine) -> bool:
    return engine.dialect.name == "postgresql"


# Set for the transaction of each rollup day and snapshot date (PostgreSQL). JIT compiling
# costs these sort-and-aggregate statements 0.5-1 s each and grows with the planner's cost
# estimate, so with history; 4 MB (the server default) sends their sorts to disk and turns
# the plan with history from a hash aggregate into an external sort.
AGGREGATE_SETTINGS = {"jit": "off", "work_mem": "128MB"}


def conflict_insert(conn: sa.Connection, table: sa.Table) -> Any:
    """``INSERT INTO table`` in the connection's dialect, so it takes ``ON CONFLICT``
    clauses (``on_conflict_do_nothing``) on PostgreSQL and SQLite alike."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def tune_for_aggregates(conn: sa.Connection) -> None:
    """``SET LOCAL`` :data:`AGGREGATE_SETTINGS` in the caller's transaction (PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        return
    for name, value in AGGREGATE_SETTINGS.items():
        conn.exec_driver_sql(f"SET LOCAL {name} = '{value}'")


# Worker threads SQLite may start for one statement's large sort (one that spills past the
# page cache, such as a snapshot's window grouped per user and module): its pieces are sorted
# in parallel. The 100,000-user snapshot took 11.5 s instead of 15.8 s on a 2-core machine.
SQLITE_SORT_THREADS = 2


def _configure_sqlite(engine: sa.Engine) -> None:
    """WAL for readers beside the one writer; BEGIN IMMEDIATE so writers queue, not deadlock;
    worker threads for large sorts."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=120000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA threads={SQLITE_SORT_THREADS}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def get_engine(url: str) -> sa.Engine:
    """A cached engine (one per URL and process) whose tables exist."""
    url = _absolute(normalise_url(url))
    cache_key = (url, os.getpid())
    if cache_key in _ENGINES:
        return _ENGINES[cache_key]
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise WarehouseError(
                    f"Cannot open the warehouse {parsed!r}: {exc.strerror or exc}."
                ) from exc
        engine = _create_engine(url, connect_args={"timeout": 120})
        _configure_sqlite(engine)
    else:
        engine = _create_engine(url, pool_pre_ping=True)
    try:
        create_tables(engine)
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise WarehouseError(f"Cannot open the warehouse {parsed!r}: {_reason(exc)}.") from exc
    _ENGINES[cache_key] = engine
    return engine


def open_existing(url: str, need_version: str | None = None) -> sa.Engine:
    """A read-only engine on a warehouse that already holds the project's tables, for
    ``status``, ``check`` and ``explain``: it creates no folder, file or table and writes
    nothing (SQLite opened with ``mode=ro``, PostgreSQL sessions read-only). Otherwise a
    :class:`WarehouseError` says what is missing; with ``need_version``, also when an older
    version created the warehouse and no run has migrated it yet."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if not path or path == ":memory:" or not Path(path).is_file():
            raise WarehouseError(
                f"There is no warehouse at {parsed!r} (no such SQLite file): check the"
                " warehouse URL, or run 'usage-pipeline run' to create it."
            )
        location = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
        engine = _create_engine(
            "sqlite://",
            creator=lambda: sqlite3.connect(location, uri=True, timeout=120),
            poolclass=sa.pool.NullPool,
        )
    else:
        engine = _create_engine(parsed, poolclass=sa.pool.NullPool)
        sa.event.listen(engine, "connect", _read_only_session)
    try:
        with engine.connect() as conn:
            existing = set(sa.inspect(conn).get_table_names())
            version = _stored_version(conn) if "pipeline_state" in existing else None
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise WarehouseError(f"Cannot open the warehouse {parsed!r}: {_reason(exc)}.") from exc
    if need_version is not None and existing and int(version or 0) < int(need_version):
        engine.dispose()
        raise WarehouseError(
            f"The warehouse {parsed!r} was created by an older version of usage_pipeline"
            f" (schema {version or 1}); run 'usage-pipeline run' once to migrate it."
        )
    missing = [name for name in metadata.tables if name not in existing]
    if missing:
        engine.dispose()
        if len(missing) == len(metadata.tables):
            raise WarehouseError(
                f"The warehouse {parsed!r} holds none of the project's tables: check the"
                " warehouse URL, or run 'usage-pipeline run' to create them."
            )
        raise WarehouseError(
            f"The warehouse {parsed!r} lacks the project's tables {name_list(missing)}: run"
            " 'usage-pipeline run' once to bring it up to date."
        )
    return engine


def _stored_version(conn: sa.Connection) -> str | None:
    state = metadata.tables["pipeline_state"]
    return conn.execute(sa.select(state.c.value).where(state.c.name == SCHEMA_KEY)).scalar()


def _read_only_session(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cursor.close()
    dbapi_connection.commit()


@contextmanager
def read_connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection for queries only: on SQLite it does not take the write lock, so reads
    never wait for (or block) the one writer."""
    with engine.connect() as conn:
        yield conn.execution_options(**{READ_ONLY: True})


# Raise with every change an existing warehouse must be migrated to (3: account_top_users,
# lower-cased events property keys, row numbers in the contribution tables, the ledger
# status 'reverted'; 4: accounts.parent_account_id, account_hierarchy_snapshot; 5: the
# aggregate usage_sum on PostgreSQL).
SCHEMA_VERSION = "5"
SCHEMA_KEY = "schema_version"


def create_tables(engine: sa.Engine) -> None:
    """Create what does not exist yet and migrate an older warehouse (safe to race between
    processes). Cheap when the warehouse is current: one catalogue query and one read."""
    with engine.begin() as conn:
        if is_postgres(engine):
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7248310)")
        existing = set(sa.inspect(conn).get_table_names())
        state = metadata.tables["pipeline_state"]
        version = _stored_version(conn) if "pipeline_state" in existing else None
        if version == SCHEMA_VERSION:
            return
        metadata.create_all(conn, checkfirst=True)
        create_functions(conn)
        for table in metadata.sorted_tables:
            if table.name in existing:  # indexes added to tables an older version created
                for index in table.indexes:
                    index.create(conn, checkfirst=True)
        migrate(conn, version, existing)
        _backfill_new_state(conn, existing)
        conn.execute(state.delete().where(state.c.name == SCHEMA_KEY))
        conn.execute(
            state.insert().values(
                name=SCHEMA_KEY, value=SCHEMA_VERSION, updated_at=datetime.now(timezone.utc)
            )
        )


def _backfill_new_state(conn: sa.Connection, existing: set[str]) -> None:
    """Activity state tables new to a warehouse that already has rollups start from them."""
    from usage_pipeline.activity_state import ACCOUNT_STATE, USER_STATE, backfill_state

    for spec in (USER_STATE, ACCOUNT_STATE):
        if spec.state not in existing and spec.daily in existing:
            backfill_state(conn, spec)


def dispose_engines() -> None:
    """Close every cached engine (tests, forked workers)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()
