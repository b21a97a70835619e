"""``usage-pipeline revert KEY`` and ``usage-pipeline reprocess KEY`` (SPEC §6): one run of
``revert_file_job`` / ``reprocess_file_job`` on the same definitions as the daemon, then the
rollups of the days it changed and the snapshots that read them."""

from __future__ import annotations

import click

from usage_pipeline.cli.common import QUIET, CannotRun, config_option, guarded, load, print_report
from usage_pipeline.cli.process import dagster_instance

REVERT, REPROCESS = "revert_file", "reprocess_file"


def _act(config_file: str | None, key: str, op: str) -> int:
    from usage_pipeline.defs.files.actions import REPROCESS_JOB, REVERT_JOB
    from usage_pipeline.revert import reprocess_problem, revert_problem
    from usage_pipeline.runner import act_on_file
    from usage_pipeline.sources import UnsafeKeyError, check_key, open_source
    from usage_pipeline.warehouse.engine import get_engine, read_connection

    config = load(config_file)
    try:
        check_key(key)
    except UnsafeKeyError as exc:
        raise CannotRun(str(exc)) from exc
    engine = get_engine(config.warehouse)
    with read_connection(engine) as conn:
        if op == REVERT:
            problem = revert_problem(conn, key)
        else:
            problem = reprocess_problem(
                conn, open_source(config.inbox, config.s3_endpoint_url), key
            )
    if problem:
        raise CannotRun(problem)
    job = REVERT_JOB if op == REVERT else REPROCESS_JOB
    with dagster_instance() as instance:
        report = act_on_file(config, instance, job, op, key, log_level=QUIET)
    print_report(report)
    return report.exit_code


@click.command()
@click.argument("key")
@config_option
@guarded
def revert(key: str, config_file: str | None) -> int:
    """Remove the loaded version of KEY from every table (ledger status reverted), then
    roll up its days again and refresh the snapshots."""
    return _act(config_file, key, REVERT)


@click.command()
@click.argument("key")
@config_option
@guarded
def reprocess(key: str, config_file: str | None) -> int:
    """Load the current bytes of KEY again under the current config, replacing what its
    loaded version contributed, then roll up and refresh the snapshots."""
    return _act(config_file, key, REPROCESS)
