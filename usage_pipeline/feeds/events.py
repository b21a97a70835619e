"""``events``: Kissmetrics-style import of behaviour events, back-dated (SPEC §2.7).

File contract: ``identity``, ``event``, ``timestamp``, then any property columns (kept as
text, keyed by the lower-cased column name). Each valid row lands in ``event_candidates``
(per file, so a correction can retire exactly one file's rows); :meth:`EventsFeed.apply`
then recomputes, for exactly the
(identity, event) pairs the file (or the versions it supersedes) touched, the **kept**
events in the public ``events`` table:

- an event is identified by (identity, event, timestamp): repeats inside a file or across
  files are one event, whose properties and ``file_id`` are those of the earliest loaded
  file still holding it (its first row there);
- the throttle (``events.throttle``) keeps, per identity and event name, the first event
  and then each one at least the window after the previous kept one (:mod:`throttle`).

Timestamps follow the one rule of :mod:`usage_pipeline.timestamps` (ISO 8601 with an offset,
naive ISO 8601 in the instance zone, or epoch seconds as Kissmetrics exports them), accepted
from midnight of ``events.floor_date`` (instance zone; never before the first daily
partition, 2009-01-01) to one day after the run's as-of time.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sqlalchemy as sa

from usage_pipeline.days import FIRST_DAY, iso_days
from usage_pipeline.feeds.base import ChunkResult, Feed, FeedChange, FileContext, validate
from usage_pipeline.throttle import kept_instants
from usage_pipeline.timestamps import TIMESTAMP_KIND, parse_instants, storage_text
from usage_pipeline.warehouse.bulk import bulk_insert
from usage_pipeline.warehouse.tables import event_candidates, events

if TYPE_CHECKING:  # pandera is imported where a schema is built: a run with
    import pandera.pandas as pa  # nothing to validate never pays for it


KEY_COLUMNS = ("identity", "event", "timestamp")
UTC = timezone.utc
UTC_DTYPE = pd.DatetimeTZDtype("ns", "UTC")
# (identity, event) pairs recomputed per statement: 2 bound parameters each.
PAIR_BATCH = 400
# Serialises the apply step of concurrent events files on PostgreSQL (READ COMMITTED): each
# recomputation then sees every candidate committed before it.
ADVISORY_LOCK = 0x45564E54  # "EVNT"


@lru_cache(maxsize=32)
def events_schema(earliest: pd.Timestamp, latest: pd.Timestamp, floor: date) -> pa.DataFrameSchema:
    """The pandera contract of a parsed ``events`` chunk (instants within the bounds)."""
    import pandera.pandas as pa

    text = pa.Column(object, nullable=False)
    return pa.DataFrameSchema(
        {
            "identity": text,
            "event": text,
            "timestamp": pa.Column(
                UTC_DTYPE,
                nullable=False,
                checks=[
                    pa.Check(
                        lambda s: s >= earliest,
                        error=f"is before the floor date {floor.isoformat()} (events.floor_date)",
                    ),
                    pa.Check(
                        lambda s: s <= latest,
                        error="is more than 1 day after the run time"
                        f" {(latest - pd.Timedelta(days=1)).isoformat()}",
                    ),
                ],
            ),
        },
        strict=True,
        name="events",
    )


@dataclass(frozen=True)
class EventsFileSettings:
    """What :meth:`EventsFeed.prepare` fixes for one file (``FileContext.lookup``)."""

    dialect: str | None  # how occurred_at is written (storage_text); None for a dry run
    floor: date
    earliest: pd.Timestamp  # midnight of the floor date, instance zone, as UTC
    latest: pd.Timestamp  # the run's as-of time + 1 day, UTC


def _settings(conn: sa.Connection | None, context: FileContext) -> EventsFileSettings:
    floor = max(context.config.events.floor_date, FIRST_DAY)
    earliest = pd.Timestamp(datetime.combine(floor, time(0), tzinfo=context.tz)).tz_convert(UTC)
    latest = pd.Timestamp(context.now).tz_convert(UTC) + pd.Timedelta(days=1)
    dialect = conn.dialect.name if conn is not None else None
    return EventsFileSettings(dialect, floor, earliest, latest)


def _text_cells(values: pd.Series) -> pd.Series:
    """Trimmed text; blank -> None (missing)."""
    text = values.astype("string").str.strip()
    return text.astype(object).where(text.notna() & (text != ""), None)


def _properties(raw: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One JSON object per row of the non-blank property cells, keys in ``columns`` order
    (the same text as ``json.dumps``; each distinct cell is encoded once)."""
    joined = np.full(len(raw), "", dtype=object)
    for name in columns:
        codes, uniques = pd.factorize(raw[name])
        key = json.dumps(name, ensure_ascii=False)
        pieces = [f", {key}: {json.dumps(v, ensure_ascii=False)}" if v else "" for v in uniques]
        joined = joined + np.array([*pieces, ""], dtype=object)[codes]  # -1 (blank) -> ""
    return np.array(["{" + text[2:] + "}" for text in joined], dtype=object)


def _batches(items: Sequence[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class _Store:
    """The few statements :meth:`EventsFeed.apply` runs per batch of (identity, event)
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


class EventsFeed(Feed):
    """Back-dated behaviour events: de-duplicated by (identity, event, timestamp), throttled
    per identity and event name, invalid rows rejected one by one."""

    name = "events"
    required_columns = KEY_COLUMNS
    optional_columns = ()
    extra_columns_allowed = True
    target = event_candidates
    day_column = "day"
    kinds = {"timestamp": TIMESTAMP_KIND}

    def prepare(self, conn: sa.Connection | None, context: FileContext) -> FileContext:
        return dataclasses.replace(context, lookup=_settings(conn, context))

    def process_chunk(self, raw: pd.DataFrame, context: FileContext) -> ChunkResult:
        settings = context.lookup
        if not isinstance(settings, EventsFileSettings):
            settings = _settings(None, context)
        parsed = pd.DataFrame(
            {
                "identity": _text_cells(raw["identity"]),
                "event": _text_cells(raw["event"]),
                "timestamp": parse_instants(raw["timestamp"], context.tz),
            },
            index=raw.index,
        )
        schema = events_schema(settings.earliest, settings.latest, settings.floor)
        valid, errors, tally = validate(parsed, raw, schema, self.kinds)
        mask = valid.to_numpy()
        good = parsed[mask]
        instants = good["timestamp"]
        local_days = instants.dt.tz_convert(context.tz).dt.tz_localize(None).dt.normalize()
        # property keys are the lower-cased column names (columns match case-insensitively,
        # so Plan in one file and plan in another are one key)
        properties = raw.loc[mask, [c for c in raw.columns if c not in KEY_COLUMNS]]
        properties.columns = [c.lower() for c in properties.columns]
        rows = pd.DataFrame(
            {
                "row_number": good.index.to_numpy(dtype="int64"),
                "identity": good["identity"].to_numpy(),
                "event": good["event"].to_numpy(),
                "occurred_at": storage_text(instants, settings.dialect),
                "day": iso_days(local_days) if len(good) else np.array([], dtype=object),
                "properties": _properties(properties, sorted(properties.columns)),
            }
        )
        return ChunkResult(rows=rows, errors=errors, failures=tally)

    def apply(
        self, conn: sa.Connection, context: FileContext, file_id: int, removed: list[int]
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
            changed |= self._recompute(store, context, file_id, set(removed), batch, tally, days)
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
        self,
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
                tally.throttled += sum(
                    1 for when in seen if when not in kept and (*pair, when) in new
                )
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


EVENTS = EventsFeed()
