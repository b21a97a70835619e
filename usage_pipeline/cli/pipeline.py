"""``usage-pipeline run``, ``demo`` and ``ingest --force KEY`` (SPEC §6): in-process runs of
the same Dagster definitions the daemon uses, summarised by the CLI itself."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from usage_pipeline.cli.common import (
    EXIT_OK,
    QUIET,
    CannotRun,
    config_option,
    guarded,
    load,
    print_report,
)
from usage_pipeline.cli.process import dagster_instance
from usage_pipeline.cli.status import print_status, print_table_counts

if TYPE_CHECKING:
    from usage_pipeline.config import PipelineConfig


def _parse_as_of(text: str | None, config: PipelineConfig) -> datetime:
    if not text:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CannotRun(f"--as-of {text!r} is not an ISO 8601 date-time.") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=config.tz)


@click.command()
@config_option
@click.option("--inbox", default=None, help="Folder or s3://bucket/prefix (overrides config).")
@click.option("--warehouse", default=None, help="SQLAlchemy URL (overrides config).")
@click.option(
    "--as-of",
    "as_of",
    default=None,
    help="ISO datetime the run acts as of (default now); snapshots the day before.",
)
@guarded
def run(
    config_file: str | None, inbox: str | None, warehouse: str | None, as_of: str | None
) -> int:
    """Sense every new file, ingest, roll up touched days, build snapshots."""
    from usage_pipeline.runner import run_pipeline
    from usage_pipeline.warehouse.engine import get_engine

    config = load(config_file, inbox=inbox, warehouse=warehouse)
    moment = _parse_as_of(as_of, config)
    get_engine(config.warehouse)
    with dagster_instance() as instance:
        report = run_pipeline(config, instance, as_of=moment, log_level=QUIET)
    print_report(report)
    return report.exit_code


@click.command()
@config_option
@click.option(
    "--nights",
    default=7,
    show_default=True,
    type=click.IntRange(2, 60),
    help="How many nights to replay.",
)
@guarded
def demo(config_file: str | None, nights: int) -> int:
    """Write a realistic sample inbox into data/ night by night and run the pipeline."""
    from usage_pipeline.demo import play_demo
    from usage_pipeline.runner import run_pipeline
    from usage_pipeline.warehouse.engine import get_engine

    config = load(config_file)
    if config.inbox.startswith("s3://"):
        raise CannotRun("The demo writes a local inbox; set inbox to a folder to run it.")
    get_engine(config.warehouse)
    worst = EXIT_OK
    today = datetime.now(config.tz).date()
    with dagster_instance() as instance:

        def run_night(night: date, morning: datetime, drops: list[Any]) -> None:
            nonlocal worst
            click.echo(f"\nNight of {night} — dropped at 23:00:")
            for drop in drops:
                click.echo(f"  + {drop.key}  ({drop.note})")
            click.echo(f"Pipeline run as of {morning.isoformat(timespec='minutes')}:")
            report = run_pipeline(config, instance, as_of=morning, log_level=QUIET)
            print_report(report)
            worst = max(worst, report.exit_code)

        play_demo(Path(config.inbox), config.tz, today, nights, run_night)
    click.echo("")
    print_status(config, limit=0)
    click.echo("")
    print_table_counts(config)
    click.echo(
        f"\nWarehouse: {config.warehouse}  (exit status {worst}: 1 means some demo files"
        " were rejected on purpose)"
    )
    return worst


@click.command()
@config_option
@click.option(
    "--force",
    "key",
    required=True,
    metavar="KEY",
    help="Inbox key of a file held back as a duplicate.",
)
@guarded
def ingest(config_file: str | None, key: str) -> int:
    """Load a file that was held back as a duplicate (ingest --force KEY)."""
    import sqlalchemy as sa

    from usage_pipeline.runner import force_ingest
    from usage_pipeline.sources import UnsafeKeyError, check_key, open_source
    from usage_pipeline.warehouse.engine import get_engine, read_connection
    from usage_pipeline.warehouse.tables import ingested_files

    config = load(config_file)
    try:
        check_key(key)
    except UnsafeKeyError as exc:
        raise CannotRun(str(exc)) from exc
    engine = get_engine(config.warehouse)
    f = ingested_files.c
    with read_connection(engine) as conn:
        row = conn.execute(
            sa.select(f.sha256, f.status).where(f.source_key == key).order_by(f.file_id.desc())
        ).first()
    if row is None:
        raise CannotRun(f"No file with key {key} has been sensed yet.")
    if row.status != "duplicate":
        raise CannotRun(f"File {key} is {row.status}, not a held-back duplicate.")
    source = open_source(config.inbox, config.s3_endpoint_url)
    if source.stat(key) is None:
        raise CannotRun(f"File {key} is no longer in the inbox {config.inbox}.")
    with dagster_instance() as instance:
        report = force_ingest(config, instance, key, log_level=QUIET)
    print_report(report)
    return report.exit_code
