"""``usage-pipeline check FILE --feed NAME`` (the dry run) and ``template FEED`` (SPEC §6).

``check`` goes through ingestion's own path (:func:`usage_pipeline.load.check_file`) with
nothing written: the same file problems, feed preparation, validation and row judgement.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click

from usage_pipeline.cli.common import (
    EXIT_OK,
    EXIT_REJECTED,
    FeedChoice,
    config_option,
    guarded,
    load,
)
from usage_pipeline.cli.process import freeze_survivors

if TYPE_CHECKING:
    import sqlalchemy as sa

    from usage_pipeline.config import PipelineConfig
    from usage_pipeline.quarantine import ErrorLog

ERRORS_SHOWN = 20


@contextmanager
def _dry_run_connection(config: PipelineConfig) -> Iterator[sa.Connection | None]:
    """A read-only connection to the warehouse (for matching), or None when no SQLite
    warehouse file exists yet; one without the project's tables is an error (exit 2)."""
    from usage_pipeline.warehouse.engine import open_existing, parse_url, read_connection

    url = parse_url(config.warehouse)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        yield None
        return
    engine = open_existing(config.warehouse)
    try:
        with read_connection(engine) as conn:
            yield conn
    finally:
        engine.dispose()


def _print_errors(log: ErrorLog) -> None:
    with log.rows_path.open(encoding="utf-8") as handle:
        next(handle)
        for shown, (row_number, column, _value, error) in enumerate(csv.reader(handle)):
            if shown == ERRORS_SHOWN:
                click.echo(f"  … {log.count - shown} more")
                break
            click.echo(f"  row {row_number}, column {column}: {error}")


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--feed", required=True, type=FeedChoice())
@click.option("--import", "import_name", default=None, help="product_usage or events import name.")
@config_option
@guarded
def check(file: str, feed: str, import_name: str | None, config_file: str | None) -> int:
    """Dry run: validate FILE as FEED and print the report; nothing is written."""
    from usage_pipeline.load import check_file
    from usage_pipeline.quarantine import ErrorLog
    from usage_pipeline.scan import file_context
    from usage_pipeline.sources import SourceObject

    freeze_survivors()  # the modules live until exit; the file's chunks are collected as usual
    config = load(config_file)
    if feed == "events" and import_name is not None:
        from usage_pipeline.feed_headers import template as header

        header(feed, config, import_name)  # an import that is not configured: one sentence
    path = Path(file)
    modified = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    obj = SourceObject(key=f"{feed}/{path.name}", size=path.stat().st_size, last_modified=modified)
    context = file_context(obj, config, import_name=import_name)
    with tempfile.TemporaryDirectory(prefix="usage_pipeline_check_") as folder:
        log = ErrorLog(lambda: Path(folder))
        try:
            scan, rejected_reason = check_file(
                obj, path, context, log, lambda: _dry_run_connection(config)
            )
        finally:
            log.close()
        click.echo(f"File {path} as feed {feed}:")
        click.echo(
            f"  rows: {scan.rows_total} total, "
            f"{scan.rows_total - scan.rows_invalid} valid, "
            f"{scan.rows_invalid} invalid"
        )
        if scan.days:
            click.echo(f"  days: {', '.join(d.isoformat() for d in scan.days)}")
        for line in scan.report:
            click.echo(f"  {line}")
        _print_errors(log)
    if rejected_reason:
        click.echo(f"REJECTED: the file would be rejected: {rejected_reason}.")
        return EXIT_REJECTED
    click.echo(
        "OK: the file would be loaded" + (" (invalid rows skipped)." if scan.rows_rejected else ".")
    )
    return EXIT_OK


@click.command()
@click.argument("feed", type=FeedChoice())
@click.option("--import", "import_name", default=None, help="product_usage or events import name.")
@config_option
@guarded
def template(feed: str, import_name: str | None, config_file: str | None) -> int:
    """Print the CSV header template of FEED."""
    from usage_pipeline.feed_headers import template as header

    click.echo(header(feed, load(config_file), import_name))
    return EXIT_OK
