"""``usage-pipeline``: demo, run, check, template, status, ingest --force (SPEC §6).

Errors are one sentence; exit status 0 = all good, 1 = ran but something was rejected or a
check failed, 2 = could not run.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from functools import wraps
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from usage_pipeline.config import ConfigError, PipelineConfig, load_config
from usage_pipeline.feeds import FEEDS
from usage_pipeline.instance import InstanceError, instance_storage_error
from usage_pipeline.sources import (
    SourceObject,
    SourceUnavailableError,
    UnsafeKeyError,
    check_key,
    open_source,
)
from usage_pipeline.warehouse.engine import (
    WarehouseError,
    get_engine,
    open_existing,
    parse_url,
    read_connection,
)
from usage_pipeline.warehouse.tables import ingested_files

EXIT_OK, EXIT_REJECTED, EXIT_CANNOT_RUN = 0, 1, 2


class CannotRun(Exception):
    """The command cannot run; the message is one sentence."""


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_CANNOT_RUN)


def guarded(command: Callable[..., int | None]) -> Callable[..., None]:
    """Turn expected failures into one sentence and exit status 2, never a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            code = command(*args, **kwargs)
        except (
            ConfigError,
            WarehouseError,
            CannotRun,
            SourceUnavailableError,
            InstanceError,
        ) as exc:
            _fail(str(exc))
        except sa.exc.SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            _fail(instance_storage_error(exc) or f"The warehouse could not be used: {reason}.")
        sys.exit(code or EXIT_OK)

    return wrapper


def _config(config_file: str | None, **overrides: Any) -> PipelineConfig:
    return load_config(config_file, **overrides)


# Dagster's per-run console log level for CLI runs: the CLI prints its own one-line report of
# every file, failed check and failed run, never Dagster's stack frames of a failed step.
QUIET = "CRITICAL"


config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Pipeline YAML (default: $USAGE_PIPELINE_CONFIG or data/pipeline.yaml).",
)


@click.group()
def main() -> None:
    """Turn nightly usage-data drops into validated, idempotent warehouse tables."""


def _print_report(report: Any) -> None:
    from usage_pipeline.runner import RunReport

    assert isinstance(report, RunReport)
    if not report.files:
        click.echo("  no new files")
    for info in report.files:
        line = (
            f"  {info['status']:<10} {info['file']}  rows {info['rows_loaded']}/"
            f"{info['rows_total']} loaded"
        )
        if info.get("rows_rejected"):
            line += f", {info['rows_rejected']} rejected"
        click.echo(line)
        if info.get("error"):
            click.echo(f"             {info['error']}")
    from usage_pipeline.days import day_spans

    if report.rollup_days:
        click.echo(f"  rolled up: {day_spans([date.fromisoformat(d) for d in report.rollup_days])}")
    if report.snapshot_days:
        click.echo(
            f"  snapshots: {day_spans([date.fromisoformat(d) for d in report.snapshot_days])}"
        )
    for check in report.failed_checks:
        click.echo(f"  FAILED CHECK {check}")
    for run in report.failed_runs:
        click.echo(f"  FAILED RUN {run}")


@main.command()
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
    from usage_pipeline.instance import open_instance
    from usage_pipeline.runner import run_pipeline

    config = _config(config_file, inbox=inbox, warehouse=warehouse)
    moment = _parse_as_of(as_of, config)
    get_engine(config.warehouse)
    with open_instance() as instance:
        report = run_pipeline(config, instance, as_of=moment, log_level=QUIET)
    _print_report(report)
    return report.exit_code


def _parse_as_of(text: str | None, config: PipelineConfig) -> datetime:
    if not text:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CannotRun(f"--as-of {text!r} is not an ISO 8601 date-time.") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=config.tz)


@main.command()
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
    from usage_pipeline.instance import open_instance
    from usage_pipeline.runner import run_pipeline

    config = _config(config_file)
    if config.inbox.startswith("s3://"):
        raise CannotRun("The demo writes a local inbox; set inbox to a folder to run it.")
    get_engine(config.warehouse)
    worst = EXIT_OK
    today = datetime.now(config.tz).date()
    with open_instance() as instance:

        def run_night(night: date, morning: datetime, drops: list[Any]) -> None:
            nonlocal worst
            click.echo(f"\nNight of {night} — dropped at 23:00:")
            for drop in drops:
                click.echo(f"  + {drop.key}  ({drop.note})")
            click.echo(f"Pipeline run as of {morning.isoformat(timespec='minutes')}:")
            report = run_pipeline(config, instance, as_of=morning, log_level=QUIET)
            _print_report(report)
            worst = max(worst, report.exit_code)

        play_demo(Path(config.inbox), config.tz, today, nights, run_night)
    click.echo("")
    _status(config, limit=0)
    click.echo(
        f"\nWarehouse: {config.warehouse}  (exit status {worst}: 1 means some demo files"
        " were rejected on purpose)"
    )
    return worst


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--feed", required=True, type=click.Choice(sorted(FEEDS)))
@click.option("--import", "import_name", default=None, help="product_usage import name.")
@config_option
@guarded
def check(file: str, feed: str, import_name: str | None, config_file: str | None) -> int:
    """Dry run: validate FILE as FEED and print the report; nothing is written."""
    from usage_pipeline.ingest import ErrorLog, FileRejected, IngestOutcome, file_context, scan_file

    config = _config(config_file)
    path = Path(file)
    modified = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    obj = SourceObject(key=f"{feed}/{path.name}", size=path.stat().st_size, last_modified=modified)
    outcome = IngestOutcome(obj.key, "", feed, status="loaded")
    context = file_context(obj, config, import_name=import_name)
    rejected_reason = FEEDS[feed].file_problem(context)
    with tempfile.TemporaryDirectory(prefix="usage_pipeline_check_") as folder:
        log = ErrorLog(Path(folder))
        try:
            if rejected_reason is None:
                with _dry_run_connection(config) as conn:
                    context = FEEDS[feed].prepare(conn, context)
                scan_file(FEEDS[feed], path, path.name, context, log, outcome, lambda rows: None)
        except (FileRejected, ValueError) as exc:
            rejected_reason = str(exc)
        finally:
            log.close()
        click.echo(f"File {path} as feed {feed}:")
        click.echo(
            f"  rows: {outcome.rows_total} total, "
            f"{outcome.rows_total - outcome.rows_invalid} valid, "
            f"{outcome.rows_invalid} invalid"
        )
        if outcome.days_touched:
            click.echo(f"  days: {', '.join(d.isoformat() for d in outcome.days_touched)}")
        for line in outcome.report:
            click.echo(f"  {line}")
        shown = 0
        with log.rows_path.open(encoding="utf-8") as handle:
            next(handle)
            for row_number, column, _value, error in csv.reader(handle):
                if shown == 20:
                    click.echo(f"  … {log.count - shown} more")
                    break
                click.echo(f"  row {row_number}, column {column}: {error}")
                shown += 1
    if rejected_reason:
        click.echo(f"REJECTED: the file would be rejected: {rejected_reason}.")
        return EXIT_REJECTED
    click.echo(
        "OK: the file would be loaded"
        + (" (invalid rows skipped)." if outcome.rows_rejected else ".")
    )
    return EXIT_OK


@contextmanager
def _dry_run_connection(config: PipelineConfig) -> Iterator[sa.Connection | None]:
    """A read-only connection to the warehouse (for matching), or None when no SQLite
    warehouse file exists yet; one without the project's tables is an error (exit 2)."""
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


@main.command()
@click.argument("feed", type=click.Choice(sorted(FEEDS)))
@click.option("--import", "import_name", default=None, help="product_usage import name.")
@config_option
@guarded
def template(feed: str, import_name: str | None, config_file: str | None) -> int:
    """Print the CSV header template of FEED."""
    click.echo(FEEDS[feed].template(_config(config_file), import_name))
    return EXIT_OK


def _status(config: PipelineConfig, limit: int = 20) -> int:
    from usage_pipeline.drops import watch_report
    from usage_pipeline.rollups import day_totals

    engine = open_existing(config.warehouse)  # reads only: never creates or changes anything
    f = ingested_files.c
    with read_connection(engine) as conn:
        if limit:
            rows = conn.execute(
                sa.select(
                    f.file_id,
                    f.status,
                    f.source_key,
                    f.rows_total,
                    f.rows_loaded,
                    f.rows_rejected,
                    f.processed_at,
                )
                .order_by(f.file_id.desc())
                .limit(limit)
            ).all()
            click.echo(f"Recent files ({len(rows)}):")
            for r in rows:
                click.echo(
                    f"  #{r.file_id:<5} {r.status:<10} {r.source_key}  "
                    f"{r.rows_loaded if r.rows_loaded is not None else '-'}/"
                    f"{r.rows_total if r.rows_total is not None else '-'} rows loaded"
                )
        counts = dict(conn.execute(sa.select(f.status, sa.func.count()).group_by(f.status)).all())
        click.echo(
            "Files by status: "
            + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none")
        )
        by_feed: dict[str, list[str]] = {}
        for feed, file_status, number in conn.execute(
            sa.select(f.feed, f.status, sa.func.count()).group_by(f.feed, f.status)
        ).all():
            by_feed.setdefault(feed or "(no feed folder)", []).append(f"{file_status} {number}")
        for feed in sorted(set(FEEDS) | set(by_feed)):
            click.echo(f"  {feed:<20} {', '.join(sorted(by_feed.get(feed, []))) or 'no files'}")
        watch_lines, failing = watch_report(
            conn, config.drops, config.tz, datetime.now(timezone.utc)
        )
        recent_days = conn.execute(
            sa.select(f.max_day)
            .where(f.status == "loaded", f.max_day.is_not(None))
            .order_by(f.max_day.desc())
            .limit(1)
        ).scalar()
        if recent_days is not None:
            last = recent_days if isinstance(recent_days, date) else date.fromisoformat(recent_days)
            for offset in range(7):
                totals = day_totals(conn, last - timedelta(days=offset))
                if not totals.reconciled:
                    failing.append(
                        f"rollup_reconciliation [{totals.day}]: loaded {totals.contribution_count},"
                        f" user rollup {totals.user_count}, account rollup {totals.account_count}"
                    )
        rejected = (
            conn.execute(
                sa.select(f.error).where(f.status == "rejected").order_by(f.file_id.desc()).limit(5)
            )
            .scalars()
            .all()
        )
    engine.dispose()
    for line in watch_lines:
        click.echo(line)
    for line in rejected:
        failing.append(f"rejected file: {line}")
    click.echo("Failing checks:" if failing else "Failing checks: none")
    for line in failing:
        click.echo(f"  - {line}")
    return EXIT_REJECTED if failing else EXIT_OK


@main.command()
@config_option
@click.option("--limit", default=20, show_default=True)
@guarded
def status(config_file: str | None, limit: int) -> int:
    """Recent files with status and row counts, and failing checks."""
    return _status(_config(config_file), limit)


@main.command()
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
    from usage_pipeline.instance import open_instance
    from usage_pipeline.runner import force_ingest

    config = _config(config_file)
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
    with open_instance() as instance:
        report = force_ingest(config, instance, key, log_level=QUIET)
    _print_report(report)
    return report.exit_code


# Verbs kept in their own modules (registered here, after everything they import exists).
from usage_pipeline.cli_explain import explain  # noqa: E402
from usage_pipeline.cli_files import reprocess, revert  # noqa: E402

for _command in (revert, reprocess, explain):
    main.add_command(_command)
