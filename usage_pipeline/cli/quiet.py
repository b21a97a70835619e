"""Keep Dagster's own console output out of the CLI's: the CLI prints its own summary of
every file, failed check and failed run (SPEC §6)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr


@contextmanager
def quiet_dagster() -> Iterator[None]:
    """While the CLI opens the Dagster instance and runs jobs in-process: Dagster's loggers
    are silenced (its instance warnings, raw ``- dagster - ERROR -`` lines) and what it
    writes to stderr (the first-use telemetry notice and "Welcome to Dagster" banner) is
    dropped. An exception still propagates, and is reported after the block as usual."""
    logger = logging.getLogger("dagster")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with redirect_stderr(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)
