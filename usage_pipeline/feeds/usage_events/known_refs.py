"""Which ``event_ref``s are already stored in ``usage_events`` (SPEC §2.6).

A re-sent file's events that are already stored are duplicates (skipped and counted), also
when their billing period has since become ``final``; only *new* events of a final period
are errors. The lookup is made for the rows dated in a final period only, through the
``event_ref`` primary key, in batches, on a connection of its own: the file's connection is
busy with its bulk load while rows are read (stored events are committed ones anyway).
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from usage_pipeline.warehouse.engine import read_connection
from usage_pipeline.warehouse.tables import usage_events

LOOKUP_BATCH = 500


class KnownRefs:
    """Stored refs of the warehouse behind ``engine`` (None: a dry run without a warehouse,
    where nothing is stored). Events of ``retired`` file versions (the ones the file
    corrects, which its load removes) do not count as stored."""

    def __init__(self, engine: sa.Engine | None, retired: Iterable[int] = ()) -> None:
        self.engine = engine
        self.retired = sorted(set(retired))

    def stored(self, refs: Iterable[str]) -> set[str]:
        """The ones of ``refs`` that are stored."""
        wanted = sorted({str(ref) for ref in refs})
        if self.engine is None or not wanted:
            return set()
        found: set[str] = set()
        u = usage_events.c
        with read_connection(self.engine) as conn:
            for start in range(0, len(wanted), LOOKUP_BATCH):
                query = sa.select(u.event_ref).where(
                    u.event_ref.in_(wanted[start : start + LOOKUP_BATCH])
                )
                if self.retired:
                    query = query.where(u.file_id.not_in(self.retired))
                found.update(conn.execute(query).scalars())
        return found
