"""Fixtures that build real services: SQLite files, a throwaway PostgreSQL database per test
session (one schema per test), moto's S3 server over HTTP, temporary Dagster instances.

PostgreSQL-backed tests skip when no server answers, unless USAGE_PIPELINE_REQUIRE_SERVICES=1
(set by .ci/run), which makes a missing service a failure.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.warehouse.engine import dispose_engines

PG_SERVER = os.environ.get(
    "USAGE_PIPELINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_SERVICES = os.environ.get("USAGE_PIPELINE_REQUIRE_SERVICES") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (USAGE_PIPELINE_REQUIRE_SERVICES=1 makes this a failure)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a PostgreSQL database created for this test session and dropped after it."""
    admin = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _unavailable(f"PostgreSQL is not reachable at {PG_SERVER}: {exc.orig}")
    name = f"usage_pipeline_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def new_schema_url(pg_database: str) -> str:
    """A fresh schema in the session database, selected through the URL's search_path."""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(pg_database)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine.dispose()
    return f"{pg_database}?options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """A warehouse URL on a fresh PostgreSQL schema."""
    return new_schema_url(pg_database)


@pytest.fixture
def dagster_pg_url(pg_database: str) -> Iterator[str]:
    """A throwaway database for Dagster's storage, on the test session's server; a plain
    ``postgresql://`` URL (dagster-postgres connects with psycopg2)."""
    server = sa.engine.make_url(pg_database)
    name = f"usage_pipeline_dagster_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(drivername="postgresql", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def pg_instance(dagster_pg_url: str) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance whose storage is dagster-postgres."""
    overrides = {"storage": {"postgres": {"postgres_url": dagster_pg_url}}}
    with dg.instance_for_test(overrides=overrides) as instance:
        yield instance


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder (with data/inbox/) for the CLI: no data/pipeline.yaml, no
    DAGSTER_HOME and no USAGE_PIPELINE_* variables."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "DAGSTER_HOME",
        "USAGE_PIPELINE_CONFIG",
        "USAGE_PIPELINE_INBOX",
        "USAGE_PIPELINE_WAREHOUSE_URL",
        "USAGE_PIPELINE_TIMEZONE",
    ):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "data" / "inbox").mkdir(parents=True)
    return tmp_path


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


@pytest.fixture
def config(inbox: Path, warehouse_url: str) -> PipelineConfig:
    return PipelineConfig(inbox=str(inbox), warehouse=warehouse_url)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server over real HTTP on a free loopback port."""
    from moto.server import ThreadedMotoServer

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(name, value)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> tuple[object, str]:
    """(boto3 client, bucket name) for a new bucket on the moto server."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    bucket = f"drops-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket
