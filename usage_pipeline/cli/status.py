"""``usage-pipeline status`` (SPEC §6): recent files with their status, row counts and
arrival date, the files by status and feed, the drop watch and failing checks; and the
table row counts the demo ends with. Read-only: it never creates or changes anything."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import click

from usage_pipeline.cli.common import EXIT_OK, EXIT_REJECTED, config_option, guarded, load

if TYPE_CHECKING:
    import sqlalchemy as sa

    from usage_pipeline.config import PipelineConfig

# The public tables (SPEC §3), in the order the contract lists them.
OUTPUT_TABLES = (
    "ingested_files",
    "rejected_rows",
    "user_activity_daily",
    "account_activity_daily",
    "account_attribute_history",
    "accounts",
    "product_usage",
    "usage_events",
    "usage_meter_daily",
    "billing_periods",
    "events",
    "events_daily",
    "account_usage_snapshot",
    "user_usage_snapshot",
    "account_hierarchy_snapshot",
    "account_top_users",
)
RECONCILED_DAYS = 7


def _received_day(moment: datetime, config: PipelineConfig) -> date:
    """The arrival date of a file in the pipeline's time zone (SQLite gives UTC naive)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(config.tz).date()


def _recent_files(conn: sa.Connection, config: PipelineConfig, limit: int) -> None:
    import sqlalchemy as sa

    from usage_pipeline.warehouse.tables import ingested_files

    f = ingested_files.c
    rows = conn.execute(
        sa.select(f.file_id, f.status, f.source_key, f.rows_total, f.rows_loaded, f.received_at)
        .order_by(f.file_id.desc())
        .limit(limit)
    ).all()
    click.echo(f"Recent files ({len(rows)}):")
    for r in rows:
        loaded = r.rows_loaded if r.rows_loaded is not None else "-"
        total = r.rows_total if r.rows_total is not None else "-"
        click.echo(
            f"  #{r.file_id:<5} {r.status:<10} {r.source_key}  {loaded}/{total} rows loaded"
            f"  (received {_received_day(r.received_at, config)})"
        )


def _unreconciled(conn: sa.Connection) -> list[str]:
    """The last loaded days whose rollups do not add up to their loaded rows."""
    import sqlalchemy as sa

    from usage_pipeline.rollups import day_totals
    from usage_pipeline.warehouse.tables import ingested_files

    f = ingested_files.c
    last = conn.execute(
        sa.select(f.max_day)
        .where(f.status == "loaded", f.max_day.is_not(None))
        .order_by(f.max_day.desc())
        .limit(1)
    ).scalar()
    if last is None:
        return []
    last = last if isinstance(last, date) else date.fromisoformat(last)
    failing = []
    for offset in range(RECONCILED_DAYS):
        totals = day_totals(conn, last - timedelta(days=offset))
        if not totals.reconciled:
            failing.append(
                f"rollup_reconciliation [{totals.day}]: loaded {totals.contribution_count},"
                f" user rollup {totals.user_count}, account rollup {totals.account_count}"
            )
    return failing


def print_status(config: PipelineConfig, limit: int = 20) -> int:
    """Print the status report; exit status 1 when a check fails."""
    import sqlalchemy as sa

    from usage_pipeline.drops import watch_report
    from usage_pipeline.feeds import FEEDS
    from usage_pipeline.warehouse.engine import open_existing, read_connection
    from usage_pipeline.warehouse.tables import ingested_files

    engine = open_existing(config.warehouse)  # reads only: never creates or changes anything
    f = ingested_files.c
    with read_connection(engine) as conn:
        if limit:
            _recent_files(conn, config, limit)
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
        failing += _unreconciled(conn)
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


def print_table_counts(config: PipelineConfig) -> None:
    """Print every public table with its row count."""
    import sqlalchemy as sa

    from usage_pipeline.warehouse.engine import open_existing, read_connection
    from usage_pipeline.warehouse.tables import metadata

    engine = open_existing(config.warehouse)
    try:
        with read_connection(engine) as conn:
            counts = [
                (name, conn.execute(sa.select(sa.func.count()).select_from(metadata.tables[name])))
                for name in OUTPUT_TABLES
            ]
            click.echo("Tables (rows):")
            width = max(len(name) for name in OUTPUT_TABLES)
            for name, result in counts:
                click.echo(f"  {name:<{width}}  {result.scalar_one()}")
    finally:
        engine.dispose()


@click.command()
@config_option
@click.option("--limit", default=20, show_default=True)
@guarded
def status(config_file: str | None, limit: int) -> int:
    """Recent files with status, row counts and arrival date, and failing checks."""
    return print_status(load(config_file), limit)
