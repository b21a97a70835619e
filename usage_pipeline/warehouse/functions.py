"""The warehouse's own SQL function: ``usage_sum``, the sum the snapshots take of counts.

PostgreSQL's ``SUM(bigint)`` accumulates in a NUMERIC state allocated per group; in a hash
aggregate over many groups (a user snapshot's per-(user, module) sums: 1.2 million groups at
100,000 users) those allocations cost about a fifth of the statement and grow its hash
table past the caches. ``usage_sum(bigint)`` keeps a BIGINT state by value (``int8pl``):
the same sums, NULL for no rows as ``SUM``, and an error on BIGINT overflow, where ``SUM``'s
NUMERIC would fail on entering the BIGINT columns it is stored in. SQLite's ``SUM``
already adds integers in 64 bits (and raises on overflow): there it stays ``SUM``.
"""

from __future__ import annotations

import sqlalchemy as sa

USAGE_SUM = "usage_sum"

# CREATE OR REPLACE: idempotent, for new warehouses and upgrades alike (PostgreSQL 12+).
CREATE_USAGE_SUM = (
    f"CREATE OR REPLACE AGGREGATE {USAGE_SUM}(bigint)"
    " (SFUNC = int8pl, STYPE = bigint, COMBINEFUNC = int8pl, PARALLEL = SAFE)"
)


def create_functions(conn: sa.Connection) -> None:
    """Create (or replace) the warehouse's functions; nothing to do on SQLite."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(CREATE_USAGE_SUM)


def count_sum(conn: sa.Connection) -> str:
    """The aggregate summing BIGINT counts in the connection's dialect."""
    return USAGE_SUM if conn.dialect.name == "postgresql" else "SUM"
