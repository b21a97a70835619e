"""The ``usage-pipeline`` program as its own, short-lived process.

A verb's process builds its long-lived objects first (the modules, the Dagster instance and
definitions) and exits as soon as the verb is done. Python's garbage collector walks every
tracked object at each full collection during the run and once more at exit: for a Dagster
run, about a second of a night of 200 small files and 0.6 s of a no-op run's exit on a
2-core machine. :func:`freeze_survivors` moves the objects alive at that point to the
collector's permanent generation (``gc.freeze``), where no collection walks them again.
Until then the program defers full collections: while it imports and opens the instance,
what it allocates is all long-lived, and each full collection would walk it for nothing
(four of them, 0.3 s, before a night's first run). Young objects are still collected. A
verb freezes once its modules are loaded (``check`` before it reads the file, the verbs that
run Dagster jobs once the instance is open) and, every verb, before it exits.

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


# A threshold no count of surviving collections reaches: no full collection until reset.
NO_FULL_COLLECTION = 2**30


class ShortLivedProcess:
    """click's ``obj`` when the commands run in the program's own process: the collector's
    thresholds to restore once the long-lived objects are frozen."""

    def __init__(self, thresholds: tuple[int, int, int]) -> None:
        self.thresholds = thresholds


def program() -> None:
    """The ``usage-pipeline`` console script."""
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], NO_FULL_COLLECTION)
    from usage_pipeline.cli import main

    main(obj=ShortLivedProcess(thresholds))


def freeze_survivors() -> None:
    """In the program's own process: exempt every object alive now from later garbage
    collections, and collect fully again from now on (see the module). Elsewhere:
    nothing."""
    context = click.get_current_context(silent=True)
    process = context.find_root().obj if context is not None else None
    if isinstance(process, ShortLivedProcess):
        gc.freeze()
        gc.set_threshold(*process.thresholds)


@contextmanager
def dagster_instance() -> Iterator[dg.DagsterInstance]:
    """The Dagster instance a verb runs its jobs on, opened with Dagster's console output
    kept out of the CLI's; what is alive once it is open lives until the process exits."""
    from usage_pipeline.instance import open_instance

    with quiet_dagster(), open_instance() as instance:
        freeze_survivors()
        yield instance
