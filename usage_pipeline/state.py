"""Small named values the pipeline keeps in the warehouse between runs."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from usage_pipeline.sensing import InboxCursor
from usage_pipeline.warehouse.engine import read_connection
from usage_pipeline.warehouse.tables import pipeline_state


def read_state(conn: sa.Connection, name: str) -> str | None:
    column = pipeline_state.c
    return conn.execute(sa.select(column.value).where(column.name == name)).scalar()


def write_state(conn: sa.Connection, name: str, value: str) -> None:
    """Replace the value of ``name`` in the caller's transaction."""
    conn.execute(pipeline_state.delete().where(pipeline_state.c.name == name))
    conn.execute(
        pipeline_state.insert().values(
            name=name, value=value, updated_at=datetime.now(timezone.utc)
        )
    )


def _cursor_name(inbox: str) -> str:
    return f"cli_inbox_cursor {inbox}"


def load_cli_cursor(engine: sa.Engine, inbox: str) -> InboxCursor:
    """The CLI's inbox cursor for ``inbox``, kept in the warehouse beside the ledger (a new
    inbox sensor starts from it too)."""
    with read_connection(engine) as conn:
        return InboxCursor.parse(read_state(conn, _cursor_name(inbox)))


def save_cli_cursor(engine: sa.Engine, inbox: str, cursor: InboxCursor) -> None:
    with engine.begin() as conn:
        write_state(conn, _cursor_name(inbox), cursor.dump())
