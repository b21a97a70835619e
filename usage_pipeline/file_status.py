"""The ledger statuses of a file version (``ingested_files.status``, SPEC §1), and the two
outcomes a batch reports without a ledger row (``missing``, ``failed``)."""

from __future__ import annotations

from enum import StrEnum


class FileStatus(StrEnum):
    """A file version's status; the values are the strings stored in the ledger."""

    PROCESSING = "processing"  # claimed; its transaction has not committed (or crashed)
    LOADED = "loaded"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"  # same bytes as a loaded file under another key: held back
    SUPERSEDED = "superseded"  # a later version of the same key replaced it
    REVERTED = "reverted"
    MISSING = "missing"  # left the inbox between listing and reading: nothing recorded
    FAILED = "failed"  # an unexpected error rolled its transaction back; a rerun retries it


# Statuses a version is not loaded again from, unless forced or reprocessed.
FINAL_STATUSES = frozenset(
    {FileStatus.LOADED, FileStatus.REJECTED, FileStatus.DUPLICATE, FileStatus.REVERTED}
)
# Statuses ``ingest --force`` loads anyway.
FORCEABLE = frozenset({FileStatus.DUPLICATE, FileStatus.REJECTED})


def may_process(status: str, force: bool = False, reload: bool = False) -> bool:
    """Whether a version in ``status`` is (re)loaded: new or unfinished ones always; a
    duplicate or rejected one when forced; any one when reprocessed (``reload``)."""
    return status not in FINAL_STATUSES or reload or (force and status in FORCEABLE)
