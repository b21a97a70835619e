"""The warehouse's own aggregate and settings: ``usage_sum``, with which the snapshots sum
counts, gives the values of ``SUM`` on both databases, an error (never a wrapped value) past
BIGINT, and is created on a warehouse an older version made (schema 4); SQLite connections
sort with worker threads."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from usage_pipeline.warehouse.engine import SCHEMA_VERSION, dispose_engines, get_engine
from usage_pipeline.warehouse.functions import count_sum

PAIRS = ((1, "5"), (1, "NULL"), (1, "9000000000000"), (2, "NULL"), (3, "0"), (3, "-4"))
VALUES = "(" + " UNION ALL ".join(f"SELECT {g} AS g, {v} AS v" for g, v in PAIRS) + ") AS t"


def _sums(conn: sa.Connection, aggregate: str) -> list[tuple]:
    sql = f"SELECT g, {aggregate}(CAST(v AS BIGINT)) FROM {VALUES} GROUP BY g ORDER BY g"
    return [tuple(row) for row in conn.exec_driver_sql(sql)]


def test_count_sum_gives_the_values_of_sum(warehouse_url: str) -> None:
    engine = get_engine(warehouse_url)
    with engine.connect() as conn:
        aggregate = count_sum(conn)
        ours = _sums(conn, aggregate)
        empty = conn.exec_driver_sql(f"SELECT {aggregate}(CAST(1 AS BIGINT)) WHERE 1 = 0").scalar()

    expected = [(1, 9000000000005), (2, None), (3, -4)]
    assert aggregate == ("usage_sum" if engine.dialect.name == "postgresql" else "SUM")
    assert ours == expected
    assert empty is None


def test_count_sum_overflow_is_an_error(warehouse_url: str) -> None:
    engine = get_engine(warehouse_url)
    big = "(SELECT 9223372036854775807 AS v UNION ALL SELECT 1) AS t"
    with pytest.raises(sa.exc.DBAPIError, match="out of range|overflow"), engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT {count_sum(conn)}(CAST(v AS BIGINT)) FROM {big}").all()


def test_a_schema_4_postgres_warehouse_gets_usage_sum(pg_url: str) -> None:
    engine = get_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP AGGREGATE usage_sum(bigint)")
        conn.exec_driver_sql("UPDATE pipeline_state SET value = '4' WHERE name = 'schema_version'")
    dispose_engines()

    engine = get_engine(pg_url)  # what every writing command does first
    with engine.connect() as conn:
        sums = _sums(conn, "usage_sum")
        version = conn.exec_driver_sql(
            "SELECT value FROM pipeline_state WHERE name = 'schema_version'"
        ).scalar()

    assert sums == [(1, 9000000000005), (2, None), (3, -4)]
    assert version == SCHEMA_VERSION == "5"


def test_sqlite_connections_sort_with_helper_threads(sqlite_url: str) -> None:
    with get_engine(sqlite_url).connect() as conn:
        threads = conn.exec_driver_sql("PRAGMA threads").scalar()

    assert threads == 2
