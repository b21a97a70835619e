"""``usage-pipeline explain TABLE COLUMN=VALUE…`` (SPEC §6): the file versions and row numbers
behind one row of a daily table or of ``product_usage``, with each one's contribution.
Read-only: it never creates or changes anything."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from usage_pipeline.cli.common import CannotRun, config_option, guarded, load

if TYPE_CHECKING:
    from usage_pipeline.lineage import Source


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _line(source: Source) -> str:
    from usage_pipeline.lineage import plain

    amounts = ", ".join(f"{name} {plain(value)}" for name, value in source.amounts)
    row = source.row_number if source.row_number is not None else "?"
    note = f" ({source.note})" if source.note else ""
    return f"  file {source.file_id} {source.key} row {row}: {amounts}{note}"


@click.command()
@click.argument("table", metavar="TABLE")
@click.argument("pairs", nargs=-1, metavar="COLUMN=VALUE...")
@click.option("--limit", default=50, show_default=True, help="Source rows printed at most.")
@config_option
@guarded
def explain(table: str, pairs: tuple[str, ...], limit: int, config_file: str | None) -> int:
    """Print the file versions and row numbers behind one row of TABLE (user_activity_daily,
    account_activity_daily, usage_meter_daily, events_daily or product_usage)."""
    from usage_pipeline.lineage import (
        EXPLAINED,
        LineageError,
        find_row,
        key_columns,
        parse_filters,
        plain,
        sources,
    )
    from usage_pipeline.warehouse.engine import SCHEMA_VERSION, open_existing, read_connection

    config = load(config_file)
    try:
        filters = parse_filters(table, list(pairs))
        engine = open_existing(config.warehouse, need_version=SCHEMA_VERSION)
        try:
            with read_connection(engine) as conn:
                row = find_row(conn, table, filters)
                found = sources(conn, table, row, config)
        finally:
            engine.dispose()
    except LineageError as exc:
        raise CannotRun(str(exc)) from exc
    keys = key_columns(EXPLAINED[table])
    mapping = row._mapping
    named = " ".join(f"{k}={plain(mapping[k])}" for k in keys)
    values = ", ".join(
        f"{name} {plain(value)}"
        for name, value in mapping.items()
        if name not in keys and value is not None
    )
    click.echo(f"{table} {named}: {values}")
    for source in found[:limit]:
        click.echo(_line(source))
    if len(found) > limit:
        click.echo(f"  … and {len(found) - limit} more (--limit)")
    files = len({s.file_id for s in found})
    click.echo(f"From {_plural(len(found), 'row')} of {_plural(files, 'file version')}.")
    return 0
