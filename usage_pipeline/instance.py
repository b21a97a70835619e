"""The Dagster instance the CLI runs on, opened safely beside other CLI runs, and the rule
that one instance serves one inbox.

Dagster creates a fresh SQLite instance's storage (``runs.db``, ``schedules.db``, the event
index) when the instance is first opened; two processes doing that at once can both try to
create the same table. Opening is therefore serialised with a file lock in the instance
folder, after which concurrent runs share the instance as Dagster's own run workers do.
"""

from __future__ import annotations

import os
import traceback
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from usage_pipeline.defs.tags import INBOX_TAG

if TYPE_CHECKING:  # dagster is imported when an instance is opened: quick verbs never load it
    import dagster as dg

LOCK_NAME = ".usage_pipeline_instance.lock"
# Instances opened by open_instance (DAGSTER_HOME or the repo's dagster.yaml): the ones
# deployments can share by mistake, so they serve one inbox only.
_SHARED: weakref.WeakSet[dg.DagsterInstance] = weakref.WeakSet()


class InstanceError(RuntimeError):
    """The Dagster instance cannot be opened or used; the message is one sentence."""


@contextmanager
def _opening_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder``'s lock file (waits for another opener)."""
    try:
        import fcntl

        handle = (folder / LOCK_NAME).open("a")
    except (ImportError, OSError):  # no POSIX locks, or a read-only folder: open unlocked
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_instance() -> dg.DagsterInstance:
    """``$DAGSTER_HOME``, else the current folder when it holds a dagster.yaml (the repo root:
    the same instance ``dagster dev`` uses there), else an ephemeral instance."""
    import dagster as dg

    home = os.environ.get("DAGSTER_HOME")
    folder = Path(home) if home else Path.cwd()
    try:
        if home:
            if not folder.is_dir():
                raise InstanceError(f"DAGSTER_HOME={home} is not an existing folder.")
            with _opening_lock(folder):
                return _shared(dg.DagsterInstance.get())
        if Path("dagster.yaml").is_file():
            with _opening_lock(folder):
                return _shared(dg.DagsterInstance.from_config(str(folder)))
    except InstanceError:
        raise
    except Exception as exc:
        raise InstanceError(
            f"The Dagster instance in {folder} could not be opened: {_first_line(exc)}."
        ) from exc
    return dg.DagsterInstance.ephemeral()


def _shared(instance: dg.DagsterInstance) -> dg.DagsterInstance:
    _SHARED.add(instance)
    return instance


def _first_line(exc: BaseException) -> str:
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0].rstrip(".") if lines else type(exc).__name__


def instance_storage_error(exc: BaseException) -> str | None:
    """The sentence for a database error raised inside Dagster's own storage (not the
    warehouse's), or None when the error came from elsewhere."""
    callers = [
        frame.filename
        for frame in traceback.extract_tb(exc.__traceback__)
        if f"{os.sep}sqlalchemy{os.sep}" not in frame.filename
    ]
    if not callers or f"{os.sep}dagster{os.sep}_core{os.sep}" not in callers[-1]:
        return None
    return f"The Dagster instance's storage could not be used: {_first_line(exc)}."


def inbox_identity(inbox: str) -> str:
    """The inbox as its runs are tagged: an S3 URI without a trailing slash, or the folder's
    absolute path."""
    if inbox.lower().startswith("s3://"):
        return inbox.rstrip("/")
    return str(Path(inbox).resolve())


def other_inbox(instance: dg.DagsterInstance, identity: str) -> str | None:
    """The sentence refusing ``instance`` when it holds runs of another inbox than
    ``identity`` (runs are tagged ``usage_pipeline/inbox``), else None."""
    others = sorted(
        value
        for key, values in instance.get_run_tags(tag_keys=[INBOX_TAG])
        if key == INBOX_TAG
        for value in values
        if value != identity
    )
    if not others:
        return None
    return (
        f"This Dagster instance already holds runs of the inbox {others[0]}, not {identity}:"
        " use one DAGSTER_HOME per inbox."
    )


def claim_instance(instance: dg.DagsterInstance, inbox: str) -> None:
    """Refuse (InstanceError) an instance opened by :func:`open_instance` that holds runs of
    another inbox than ``inbox``. An instance the caller made itself (a test, a benchmark)
    is the caller's own to share."""
    if instance not in _SHARED:
        return
    refusal = other_inbox(instance, inbox_identity(inbox))
    if refusal:
        raise InstanceError(refusal)
