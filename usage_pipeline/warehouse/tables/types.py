"""The one MetaData every table belongs to, and the column types they share."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# BIGINT in PostgreSQL, INTEGER (the rowid alias that autoincrements) in SQLite.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Day = sa.Date
Instant = sa.DateTime(timezone=True)

FILE_STATUSES = ("processing", "loaded", "rejected", "duplicate", "superseded", "reverted")
STATUS_CHECK = f"status IN ({', '.join(repr(status) for status in FILE_STATUSES)})"
