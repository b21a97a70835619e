"""``usage-pipeline``: demo, run, check, template, status, ingest --force, revert,
reprocess, explain (SPEC §6). One module per group of verbs.

Errors are one sentence; exit status 0 = all good, 1 = ran but something was rejected or a
check failed, 2 = could not run. Start-up imports only click: each verb imports what it uses.
"""

from __future__ import annotations

import click

from usage_pipeline.cli.check import check, template
from usage_pipeline.cli.explain import explain
from usage_pipeline.cli.files import reprocess, revert
from usage_pipeline.cli.pipeline import demo, ingest, run
from usage_pipeline.cli.status import status

PROGRAM = "usage-pipeline"


@click.group()
@click.version_option(
    package_name="usage_pipeline", prog_name=PROGRAM, message="%(prog)s %(version)s"
)
def main() -> None:
    """Turn nightly usage-data drops into validated, idempotent warehouse tables."""


for _command in (demo, run, check, template, status, ingest, revert, reprocess, explain):
    main.add_command(_command)
