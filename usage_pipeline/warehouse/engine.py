"""Engines for the warehouse URL (SQLite by default, PostgreSQL via psycopg 3)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from usage_pipeline.warehouse.migrations import migrate
from usage_pipeline.warehouse.tables import metadata

_ENGINES: dict[tuple[str, int], sa.Engine] = {}
READ_ONLY = "usage_pipeline_read_only"


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached or prepared."""


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` and use the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


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


def _configure_sqlite(engine: sa.Engine) -> None:
    """WAL for readers beside the one writer; BEGIN IMMEDIATE so writers queue, not deadlock."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=120000")
        cursor.execute("PRAGMA synchronous=NORMAL")
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
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 120})
        _configure_sqlite(engine)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    try:
        create_tables(engine)
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise WarehouseError(f"Cannot open the warehouse {parsed!r}: {reason}.") from exc
    _ENGINES[cache_key] = engine
    return engine


@contextmanager
def read_connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection for queries only: on SQLite it does not take the write lock, so reads
    never wait for (or block) the one writer."""
    with engine.connect() as conn:
        yield conn.execution_options(**{READ_ONLY: True})


SCHEMA_VERSION = "3"  # raise with every change an existing warehouse must be migrated to
SCHEMA_KEY = "schema_version"


def create_tables(engine: sa.Engine) -> None:
    """Create what does not exist yet and migrate an older warehouse (safe to race between
    processes). Cheap when the warehouse is current: one catalogue query and one read."""
    with engine.begin() as conn:
        if is_postgres(engine):
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7248310)")
        existing = set(sa.inspect(conn).get_table_names())
        state = metadata.tables["pipeline_state"]
        if "pipeline_state" in existing:
            version = conn.execute(
                sa.select(state.c.value).where(state.c.name == SCHEMA_KEY)
            ).scalar()
            if version == SCHEMA_VERSION:
                return
        metadata.create_all(conn, checkfirst=True)
        for table in metadata.sorted_tables:
            if table.name in existing:  # indexes added to tables an older version created
                for index in table.indexes:
                    index.create(conn, checkfirst=True)
        migrate(conn, existing)
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


def open_read_only(url: str, need_version: str | None = None) -> sa.Engine:
    """An engine that can only read an existing warehouse: never creates a file, a table or
    a row (SQLite ``query_only``, PostgreSQL read-only transactions). Raises
    :class:`WarehouseError` when the warehouse has no usage_pipeline tables, or when
    ``need_version`` is given and an older version created it (not migrated yet)."""
    url = normalise_url(url)
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or not Path(parsed.database).is_file():
            raise WarehouseError(
                f"The warehouse {shown} does not exist yet; 'usage-pipeline run' creates it."
            )
        engine = sa.create_engine(url, connect_args={"timeout": 120})

        @sa.event.listens_for(engine, "connect")
        def _read_only(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.execute("PRAGMA query_only = ON")
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)

        @sa.event.listens_for(engine, "begin")
        def _read_only_transaction(connection):  # type: ignore[no-untyped-def]
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")

    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            version = None
            if "pipeline_state" in tables:
                state = metadata.tables["pipeline_state"]
                version = conn.execute(
                    sa.select(state.c.value).where(state.c.name == SCHEMA_KEY)
                ).scalar()
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise WarehouseError(f"Cannot open the warehouse {shown}: {reason}.") from exc
    if "ingested_files" not in tables:
        engine.dispose()
        raise WarehouseError(
            f"The warehouse {shown} has no usage_pipeline tables; 'usage-pipeline run' creates"
            " them."
        )
    if need_version is not None and int(version or 0) < int(need_version):
        engine.dispose()
        raise WarehouseError(
            f"The warehouse {shown} was created by an older version of usage_pipeline (schema"
            f" {version or 1}); run 'usage-pipeline run' once to migrate it."
        )
    return engine


def dispose_engines() -> None:
    """Close every cached engine (tests, forked workers)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()
