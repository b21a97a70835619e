"""What every ``usage-pipeline`` verb shares: exit statuses, one-sentence errors, the
``--config`` option and the run summary. Imports nothing heavy at module level, so that
``--help``, ``--version`` and ``template`` start fast: pandas, SQLAlchemy and Dagster are
imported inside the commands that use them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import TYPE_CHECKING, Any

import click

from usage_pipeline.cli.process import freeze_survivors

if TYPE_CHECKING:
    from usage_pipeline.config import PipelineConfig
    from usage_pipeline.runner import RunReport

EXIT_OK, EXIT_REJECTED, EXIT_CANNOT_RUN = 0, 1, 2
# Dagster's per-run console log level for CLI runs: the CLI prints its own one-line report of
# every file, failed check and failed run, never Dagster's stack frames of a failed step.
QUIET = "CRITICAL"


class CannotRun(Exception):
    """The command cannot run; the message is one sentence."""


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_CANNOT_RUN)


def _expected_failure(exc: Exception) -> str | None:
    """The one sentence of an expected failure (bad config, unreachable warehouse or inbox,
    unusable Dagster instance), or None for a bug. SQLAlchemy is only looked at when it
    was loaded: a failure of a kind never imported cannot have happened."""
    from usage_pipeline.config import ConfigError
    from usage_pipeline.instance import InstanceError, instance_storage_error
    from usage_pipeline.sources import SourceUnavailableError

    expected: tuple[type[Exception], ...] = (
        ConfigError,
        CannotRun,
        SourceUnavailableError,
        InstanceError,
    )
    engine = sys.modules.get("usage_pipeline.warehouse.engine")
    if engine is not None:
        expected += (engine.WarehouseError,)
    if isinstance(exc, expected):
        return str(exc)
    sa = sys.modules.get("sqlalchemy")
    if sa is not None and isinstance(exc, sa.exc.SQLAlchemyError):
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return instance_storage_error(exc) or f"The warehouse could not be used: {reason}."
    return None


def guarded(command: Callable[..., int | None]) -> Callable[..., None]:
    """Turn expected failures into one sentence and exit status 2, never a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            code = command(*args, **kwargs)
        except Exception as exc:
            message = _expected_failure(exc)
            if message is None:
                raise
            _fail(message)
        finally:
            freeze_survivors()  # the process exits now: spare it a last full collection
        sys.exit(code or EXIT_OK)

    return wrapper


def load(config_file: str | None, **overrides: Any) -> PipelineConfig:
    """The pipeline config (file, environment, then ``overrides``)."""
    from usage_pipeline.config import load_config

    return load_config(config_file, **overrides)


config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Pipeline YAML (default: $USAGE_PIPELINE_CONFIG or data/pipeline.yaml).",
)


class FeedChoice(click.Choice):
    """The feed names (from :mod:`usage_pipeline.feed_headers`, which imports no pandas)."""

    def __init__(self) -> None:
        from usage_pipeline.feed_headers import FEED_NAMES

        super().__init__(FEED_NAMES)


def print_report(report: RunReport) -> None:
    """The run summary: one line per file, the days rolled up and snapshotted, failures."""
    from usage_pipeline.days import day_spans

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
