"""What every snapshot builder's SQL shares: the snapshot windows and the expressions whose
spelling differs between PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa


def dialect_sql(conn: sa.Connection) -> dict[str, str]:
    """The expressions whose spelling differs between PostgreSQL and SQLite (binary order
    for text, as SQLite compares)."""
    if conn.dialect.name == "postgresql":
        return {
            "day": "CAST(:s AS date)",
            "days_since": "(CAST(:s AS date) - {col})",
            "module": 'module COLLATE "C"',
            "user": 'user_id COLLATE "C"',
        }
    return {
        "day": ":s",
        "days_since": "CAST(julianday(:s) - julianday({col}) AS INTEGER)",
        "module": "module",
        "user": "user_id",
    }


def windows(snapshot_date: date) -> dict[str, date]:
    """The first day of each window ending on ``snapshot_date`` (``s``: the date itself;
    ``d7``, ``d30``; ``p30``: the previous 30 days)."""
    return {
        "s": snapshot_date,
        "d7": snapshot_date - timedelta(days=6),
        "d30": snapshot_date - timedelta(days=29),
        "p30": snapshot_date - timedelta(days=59),
    }
