"""Small builders shared by the tests: CSV drops, table dumps, a pipeline pass."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from click.testing import CliRunner, Result

from usage_pipeline.cli import main
from usage_pipeline.config import PipelineConfig
from usage_pipeline.runner import RunReport, run_pipeline
from usage_pipeline.warehouse.engine import get_engine, read_connection
from usage_pipeline.warehouse.tables import metadata

HEADER = "account_id,user_id,module,activity,count,timestamp"
AS_OF = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


def drop(
    inbox: Path,
    key: str,
    lines: list[str] | str,
    header: str = HEADER,
    modified: datetime | None = None,
) -> Path:
    """Write a CSV under the inbox (header + lines) and optionally set its mtime."""
    path = inbox / key
    path.parent.mkdir(parents=True, exist_ok=True)
    body = lines if isinstance(lines, str) else "\n".join([header, *lines]) + "\n"
    path.write_text(body, encoding="utf-8")
    if modified is not None:
        os.utime(path, (modified.timestamp(), modified.timestamp()))
    return path


def rows(url: str, table: str, order_by: str | None = None, columns: str = "*") -> list[tuple]:
    """Every row of ``table`` as plain tuples (dates as ISO strings), sorted."""
    engine = get_engine(url)
    with read_connection(engine) as conn:
        result = conn.execute(sa.text(f"SELECT {columns} FROM {table}")).all()
    normalised = [tuple(_plain(v) for v in row) for row in result]
    return sorted(normalised, key=lambda r: tuple(_sort_key(v) for v in r))


def _sort_key(value: object) -> tuple[int, object]:
    if value is None:
        return (0, "")
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, str(value))


def _plain(value: object) -> object:
    if hasattr(value, "isoformat") and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return float(value)
    return value


def public_tables() -> list[str]:
    return sorted(metadata.tables)


def invoke(*args: str) -> Result:
    """Run the ``usage-pipeline`` CLI in-process; exceptions propagate."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def run(config: PipelineConfig, instance: dg.DagsterInstance, as_of: datetime = AS_OF) -> RunReport:
    return run_pipeline(config, instance, as_of=as_of, log_level="WARNING")
