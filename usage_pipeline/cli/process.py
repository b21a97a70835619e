"""The ``usage-pipeline`` program as its own, short-lived process.

A verb's process builds its long-lived objects first (the modules, the Dagster instance and
definitions) and exits as soon as the verb is done. Python's garbage collector walks every
tracked object at each full collection during the run and once more at exit: for a Dagster
run, about a second of a night of 200 small files and 0.6 s of a no-op run's exit on a
2-core machine. :func:`freeze_survivors` moves the objects alive at that point to the
collector's permanent generation (``gc.freeze``), where no collection walks them again.

Only the program's own process does that (:func:`program`, the console script): frozen
objects are never collected, so a caller running the commands inside its own long process
(the tests, click's ``CliRunner``) keeps its collector as it was.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from usage_pipeline.cli.quiet import quiet_dagster

if TYPE_CHECKING:
    import dagster as dg


class ShortLivedProcess:
    """click's ``obj`` when the commands run in the program's own process."""


def program() -> None:
    """The ``usage-pipeline`` console script."""
    from usage_pipeline.cli import main

    main(obj=ShortLivedProcess())


def freeze_survivors() -> None:
    """In the program's own process: exempt every object alive now from later garbage
    collections (see the module). Elsewhere: nothing."""
    context = click.get_current_context(silent=True)
    if context is not None and isinstance(context.find_root().obj, ShortLivedProcess):
        gc.freeze()


@contextmanager
def dagster_instance() -> Iterator[dg.DagsterInstance]:
    """The Dagster instance a verb runs its jobs on, opened with Dagster's console output
    kept out of the CLI's; what is alive once it is open lives until the process exits."""
    from usage_pipeline.instance import open_instance

    with quiet_dagster(), open_instance() as instance:
        freeze_survivors()
        yield instance
