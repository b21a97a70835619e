"""How ``events`` candidates are stored: the kept events of every touched (identity, event)
pair recomputed (repeats are one event; the throttle keeps a function of all of them)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone

import pandas as pd
import sqlalchemy as sa

from usage_pipeline.feeds.base import FeedChange, FileContext
from usage_pipeline.throttle import kept_instants
from usage_pipeline.warehouse.bulk import bulk_insert
from usage_pipeline.warehouse.tables import event_candidates, events

UTC = timezone.utc
# (identity, event) pairs recomputed per statement: 2 bound parameters each.
PAIR_BATCH = 400
# Serialises the apply step of concurrent events files on PostgreSQL (READ COMMITTED): each
# recomputation then sees every candidate committed before it.
ADVISORY_LOCK = 0x45564E54  # "EVNT"


def _batches(items: Sequence[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class _Store:
    """The few statements :func:`apply_file` runs per batch of (identity, event)
    pairs, as driver SQL built once per batch size: ORed equalities, so both databases
    look each pair up in the (identity, event, occurred_at) index (SQLite scans the whole
    table for a row-value ``IN``), and no per-row type processing.

    ``occurred_at`` comes back *native*: SQLite's stored text (fixed width, UTC, so it
    sorts chronologically and is written back verbatim, keeping ``events`` joinable with
    ``event_candidates``), PostgreSQL's aware datetime.
    """

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        quote = conn.dialect.identifier_preparer.quote
        self.names = {
            name: quote(name)
            for name in (
                "identity",
                "event",
                "occurred_at",
                "file_id",
                "row_number",
                "properties",
                event_candidates.name,
                events.name,
            )
        }
        self.mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        self._sql: dict[tuple[str, int], str] = {}

    def _where(self, count: int) -> str:
        n = self.names
        one = f"({n['identity']} = {self.mark} AND {n['event']} = {self.mark})"
        return " OR ".join([one] * count)

    def _statement(self, kind: str, count: int) -> str:
        cached = self._sql.get((kind, count))
        if cached is None:
            n, where = self.names, self._where(count)
            columns = f"{n['identity']}, {n['event']}, {n['occurred_at']}"
            if kind == "candidates":
                cached = (
                    f"SELECT {columns}, {n['file_id']}, {n['properties']}"
                    f" FROM {n[event_candidates.name]} WHERE {where}"
                    f" ORDER BY {columns}, {n['file_id']}, {n['row_number']}"
                )
            elif kind == "kept":
                cached = (
                    f"SELECT {columns}, {n['properties']}, {n['file_id']}"
                    f" FROM {n[events.name]} WHERE {where}"
                )
            else:
                cached = f"DELETE FROM {n[events.name]} WHERE {where}"
            self._sql[(kind, count)] = cached
        return cached

    def run(self, kind: str, pairs: list[tuple[str, str]]) -> list[tuple]:
        params = tuple(value for pair in pairs for value in pair)
        result = self.conn.exec_driver_sql(self._statement(kind, len(pairs)), params)
        return result.fetchall() if result.returns_rows else []

    def moment(self, native: str | datetime) -> datetime:
        """A native ``occurred_at`` as an aware UTC datetime."""
        if isinstance(native, str):
            return datetime.fromisoformat(native).replace(tzinfo=UTC)
        return native.astimezone(UTC)

    def text(self, native: str | datetime) -> str:
        """A native ``occurred_at`` as the bulk loader must write it."""
        return native if isinstance(native, str) else native.isoformat(sep=" ")


@dataclass
class _Tally:
    rows: int = 0  # this file's candidate rows
    new: int = 0  # distinct events of this file no other loaded file had
    throttled: int = 0  # new events the throttle does not keep
    kept_added: int = 0
    kept_removed: int = 0


def apply_file(
    conn: sa.Connection, context: FileContext, file_id: int, removed: list[int]
) -> FeedChange:
    """Recompute the kept events of every (identity, event) pair this file or the
    versions it supersedes hold; report the days whose kept events changed."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK)))
    c = event_candidates.c
    touched = conn.execute(
        sa.select(c.identity, c.event).where(c.file_id.in_([file_id, *removed])).distinct()
    ).all()
    pairs = sorted((str(identity), str(event)) for identity, event in touched)
    store, tally = _Store(conn), _Tally()
    days: set[date] = set()
    changed = False
    for batch in _batches(pairs, PAIR_BATCH):
        changed |= _recompute(store, context, file_id, set(removed), batch, tally, days)
    if removed:
        conn.execute(event_candidates.delete().where(c.file_id.in_(removed)))
    return FeedChange(
        days=days,
        tables={"events"} if changed else set(),
        notes={
            "events_new": tally.new,
            "events_repeated": tally.rows - tally.new,
            "events_throttled": tally.throttled,
            "events_kept_added": tally.kept_added,
            "events_kept_removed": tally.kept_removed,
        },
    )


def _recompute(
    store: _Store,
    context: FileContext,
    file_id: int,
    removed: set[int],
    batch: list[tuple[str, str]],
    tally: _Tally,
    days: set[date],
) -> bool:
    """Recompute one batch of pairs; delete-then-insert the pairs whose kept rows change.

    An event's properties and file_id are those of its first candidate by (file_id,
    row_number) among the files still loaded (``removed`` ones excluded).
    """
    Key = tuple[str, str, object]
    after: dict[tuple[str, str], dict[object, tuple[str, int]]] = {}
    mine: set[Key] = set()
    others: set[Key] = set()
    for identity, event, when, source, properties in store.run("candidates", batch):
        if source == file_id:
            tally.rows += 1
            mine.add((identity, event, when))
        else:
            others.add((identity, event, when))
        if source not in removed:
            found = after.setdefault((identity, event), {})
            if when not in found:
                found[when] = (properties, int(source))
    new = mine - others
    tally.new += len(new)
    before: dict[tuple[str, str], dict[object, tuple[str, int]]] = {}
    for identity, event, when, properties, source in store.run("kept", batch):
        before.setdefault((identity, event), {})[when] = (properties, int(source))
    rewrite: list[tuple[str, str]] = []
    inserts: list[tuple[str, str, str, str, int]] = []
    for pair in batch:
        seen = after.get(pair, {})
        window = context.config.events.window(pair[1])
        if window is None:
            kept = seen
        else:
            by_moment = {store.moment(when): when for when in seen}
            kept = {
                by_moment[moment]: seen[by_moment[moment]]
                for moment in kept_instants(by_moment, window)
            }
            tally.throttled += sum(1 for when in seen if when not in kept and (*pair, when) in new)
        old = before.get(pair, {})
        if kept == old:
            continue
        rewrite.append(pair)
        gone, came = old.keys() - kept.keys(), kept.keys() - old.keys()
        tally.kept_removed += len(gone)
        tally.kept_added += len(came)
        days.update(store.moment(when).astimezone(context.tz).date() for when in gone | came)
        inserts.extend(
            (pair[0], pair[1], store.text(when), properties, source)
            for when, (properties, source) in kept.items()
        )
    if not rewrite:
        return False
    store.run("delete", rewrite)
    columns = ["identity", "event", "occurred_at", "properties", "file_id"]
    bulk_insert(store.conn, events, pd.DataFrame(inserts, columns=columns))
    return True
