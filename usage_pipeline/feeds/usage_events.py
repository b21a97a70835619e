"""``usage_events``: Solvimon usage file upload, billable usage events (SPEC §2.6).

Template: ``customer_ref, subscription_ref, event_ref, timestamp, event`` then the configured
meter and property columns (``usage_events.meters`` / ``.properties``). ``subscription_ref``
and ``timestamp`` may be left out; every other template column is required, and any other
column rejects the file.

The feed is strict: one invalid row rejects the whole file, with every problem reported.
Valid rows are staged in ``usage_event_rows``; :meth:`UsageEventsFeed.apply` then moves the
events whose ``event_ref`` is new into ``usage_events`` (a known ref is skipped and counted as
a duplicate), explodes their meters into ``usage_event_meters`` (what ``usage_meter_daily`` is
rolled up from), empties the staging rows and refreshes ``billing_periods``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from usage_pipeline import billing
from usage_pipeline.config import PipelineConfig
from usage_pipeline.days import FIRST_DAY, iso_days
from usage_pipeline.feeds.base import (
    ERROR_COLUMNS,
    ChunkResult,
    Feed,
    FeedChange,
    FeedCheck,
    FileContext,
    validate,
)
from usage_pipeline.feeds.known_refs import KnownRefs
from usage_pipeline.timestamps import TIMESTAMP_KIND, parse_instants, storage_text
from usage_pipeline.warehouse.tables import (
    ingested_files,
    usage_event_meters,
    usage_event_rows,
    usage_events,
)

if TYPE_CHECKING:  # pandera is imported where a schema is built: a run with
    import pandera.pandas as pa  # nothing to validate never pays for it


REQUIRED_FIXED = ("customer_ref", "event_ref", "event")
OPTIONAL_FIXED = ("subscription_ref", "timestamp")
TEMPLATE_FIXED = ("customer_ref", "subscription_ref", "event_ref", "timestamp", "event")
FUTURE_LIMIT = timedelta(days=1)
CLOSED_PERIOD_CHECK = "closed_period_events"
FINAL_PERIOD_FAILURE = "timestamp: in final billing period "  # + YYYY-MM (failure tally key)
REPEAT_FAILURE = "event_ref: repeated in the file"


# --- within-file event_ref repeats ---------------------------------------------------------


class SeenRefs:
    """The ``event_ref``s of one file so far, with the row each first appeared on.

    Kept as 128-bit keyed hashes (two independent 64-bit SipHashes) in sorted arrays: 24
    bytes a ref instead of the strings, so a file of tens of millions of rows fits in memory;
    a false "repeat" would need a 128-bit collision.
    """

    _KEYS = ("usage-events-ref", "usage-events-2nd")  # SipHash keys: 16 bytes each

    def __init__(self) -> None:
        self._h1 = np.empty(0, dtype=np.uint64)
        self._h2 = np.empty(0, dtype=np.uint64)
        self._rows = np.empty(0, dtype=np.int64)

    def first_rows(self, refs: pd.Series) -> pd.Series:
        """For each present ref (index = row number): the earlier row it repeats, else -1.
        Refs seen for the first time are remembered."""
        refs = refs.dropna()
        values = refs.to_numpy(dtype=object)
        rows = refs.index.to_numpy(dtype=np.int64)
        h1, h2 = (pd.util.hash_array(values, hash_key=key) for key in self._KEYS)
        first = np.full(len(values), -1, dtype=np.int64)
        if len(self._h1) and len(values):
            left = np.searchsorted(self._h1, h1, side="left")
            right = np.searchsorted(self._h1, h1, side="right")
            for i in np.flatnonzero(right > left):  # repeats (or a 64-bit collision)
                span = slice(left[i], right[i])
                match = np.flatnonzero(self._h2[span] == h2[i])
                if len(match):
                    first[i] = self._rows[span][match[0]]
        keyed = pd.DataFrame({"h1": h1, "h2": h2, "row": rows})
        in_chunk = keyed.groupby(["h1", "h2"], sort=False)["row"].transform("min").to_numpy()
        repeat_here = (first == -1) & (in_chunk != rows)
        first[repeat_here] = in_chunk[repeat_here]
        new = first == -1
        merged = [np.concatenate((old, add[new])) for old, add in ((self._h1, h1), (self._h2, h2))]
        order = np.argsort(merged[0], kind="stable")  # two sorted runs: a linear merge
        self._h1, self._h2 = merged[0][order], merged[1][order]
        self._rows = np.concatenate((self._rows, rows[new]))[order]
        return pd.Series(first, index=refs.index)


# --- the feed --------------------------------------------------------------------------------


@dataclass
class FileState:
    """Per-file state, made by :meth:`UsageEventsFeed.prepare` (``FileContext.lookup``)."""

    now: datetime  # one "now" for every chunk and for apply
    dialect: str
    schema: pa.DataFrameSchema
    kinds: dict[str, str]
    seen: SeenRefs = field(default_factory=SeenRefs)
    period_status: dict[str, str] = field(default_factory=dict)
    known: KnownRefs = field(default_factory=lambda: KnownRefs(None))


@dataclass(frozen=True)
class Layout:
    """The template of one configuration; meters/properties as (lower-case column, name)."""

    meters: tuple[tuple[str, str], ...]
    properties: tuple[tuple[str, str], ...]

    @staticmethod
    def of(config: PipelineConfig) -> Layout:
        settings = config.usage_events
        return Layout(
            tuple((name.lower(), name) for name in settings.meters),
            tuple((name.lower(), name) for name in settings.properties),
        )

    def problem(self) -> str | None:
        """Why this configuration's template cannot be read, or None."""
        seen: set[str] = set(TEMPLATE_FIXED)
        for column, name in (*self.meters, *self.properties):
            if column in seen:
                return (
                    f"the usage_events config names column {name!r} twice when column names"
                    " are compared case-insensitively; rename a meter or property"
                )
            seen.add(column)
        for _, name in self.meters:
            if '"' in name:  # SQLite JSON paths ($."name") cannot address such a key
                return f"the usage_events meter name {name!r} contains a double quote; rename it"
        return None


def _schema(meters: tuple[str, ...], now: datetime, tz: ZoneInfo) -> pa.DataFrameSchema:
    """The pandera contract of a parsed chunk (text cells, UTC instants, meter numbers)."""
    import pandera.pandas as pa

    earliest = pd.Timestamp(datetime.combine(FIRST_DAY, time(), tzinfo=tz))
    latest = pd.Timestamp(now + FUTURE_LIMIT).tz_convert("UTC")
    text = pa.Column(object, nullable=False)
    number = pa.Column(
        float,
        nullable=False,
        checks=[
            pa.Check(lambda s: np.isfinite(s), error="is not a finite number"),
            pa.Check(lambda s: s >= 0, error="is negative"),
        ],
    )
    return pa.DataFrameSchema(
        {
            **{name: text for name in REQUIRED_FIXED},
            "subscription_ref": pa.Column(object, nullable=True),
            "timestamp": pa.Column(
                pd.DatetimeTZDtype("ns", "UTC"),
                nullable=False,
                checks=[
                    pa.Check(
                        lambda s: s <= latest,
                        error=f"is more than 1 day in the future (after {_iso(latest)})",
                    ),
                    pa.Check(
                        lambda s: s >= earliest,
                        error=f"is before {FIRST_DAY}, the first day the pipeline keeps",
                    ),
                ],
            ),
            **{name: number for name in meters},
        },
        strict=True,
        name="usage_events",
    )


def _iso(moment: datetime | pd.Timestamp) -> str:
    return pd.Timestamp(moment).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(raw: pd.DataFrame, column: str) -> pd.Series:
    """Trimmed text cells; blank means missing."""
    if column not in raw.columns:
        return pd.Series(np.nan, index=raw.index, dtype=object)
    values = raw[column].astype(object).str.strip()
    return values.where(values.notna() & (values != ""), np.nan)


def _numbers(raw: pd.DataFrame, column: str) -> pd.Series:
    """Meter cells as float64 (NaN when blank or not a number)."""
    cells = raw[column].astype(object).str.strip()
    return pd.to_numeric(cells, errors="coerce").astype("float64")


def _json_values(values: pd.Series, numbers: bool) -> np.ndarray:
    """Each cell as JSON text (None when missing), encoding each distinct value once; whole
    numbers are written without a fraction (3, not 3.0)."""
    codes, uniques = pd.factorize(values)

    def encode(value: Any) -> str:
        if numbers:
            value = float(value)
            if value.is_integer() and abs(value) < 2**53:
                value = int(value)
        return json.dumps(value, ensure_ascii=False)

    encoded = np.array([encode(v) for v in uniques] + [None], dtype=object)
    return encoded[codes]  # code -1 (missing) picks the trailing None


def _json_objects(columns: list[tuple[str, np.ndarray]], count: int) -> np.ndarray:
    """One JSON object per row from (name, JSON-encoded values) columns, in column order,
    leaving missing values out: the text ``json.dumps`` gives for the same dict."""
    body = np.full(count, "", dtype=object)
    for name, encoded in columns:
        present = pd.notna(encoded)
        if present.any():
            key = json.dumps(name, ensure_ascii=False) + ": "
            before = body[present]
            body[present] = before + np.where(before == "", "", ", ") + key + encoded[present]
    return "{" + body + "}"


def _periods(local: pd.Series) -> pd.Series:
    """``YYYY-MM`` of zone-local instants, formatting each distinct month once."""
    keys = local.dt.year * 100 + local.dt.month
    labels = {key: f"{key // 100:04d}-{key % 100:02d}" for key in pd.unique(keys)}
    return keys.map(labels)


class UsageEventsFeed(Feed):
    """Billable usage events, strict, de-duplicated by ``event_ref`` across files."""

    name = "usage_events"
    required_columns = REQUIRED_FIXED
    optional_columns = OPTIONAL_FIXED
    target = usage_event_rows
    day_column = "day"
    strict = True
    kinds = {
        "customer_ref": "a non-blank value",
        "event_ref": "a non-blank value",
        "event": "a non-blank value",
        "timestamp": TIMESTAMP_KIND,
    }
    check_names = (CLOSED_PERIOD_CHECK,)

    # --- contract ----------------------------------------------------------------------------

    def columns(
        self, config: PipelineConfig, import_name: str | None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        layout = Layout.of(config)
        configured = tuple(column for column, _ in (*layout.meters, *layout.properties))
        return (*REQUIRED_FIXED, *configured), OPTIONAL_FIXED

    def template(self, config: PipelineConfig, import_name: str | None = None) -> str:
        settings = config.usage_events
        line = io.StringIO()
        csv.writer(line, lineterminator="").writerow(
            (*TEMPLATE_FIXED, *settings.meters, *settings.properties)
        )
        return line.getvalue()

    def file_problem(self, context: FileContext) -> str | None:
        return Layout.of(context.config).problem()

    def prepare(self, conn: sa.Connection | None, context: FileContext) -> FileContext:
        now = context.now
        retired: list[int] = []
        if conn is not None:
            retired = self._refuse_changing_final_periods(conn, context, now)
        meters = tuple(column for column, _ in Layout.of(context.config).meters)
        state = FileState(
            now=now,
            dialect=conn.dialect.name if conn is not None else "sqlite",
            schema=_schema(meters, now, context.tz),
            kinds={**self.kinds, **dict.fromkeys(meters, "a number")},
            known=KnownRefs(conn.engine if conn is not None else None, retired),
        )
        return dataclasses.replace(context, lookup=state)

    def _refuse_changing_final_periods(
        self, conn: sa.Connection, context: FileContext, now: datetime
    ) -> list[int]:
        """A correction retires its key's loaded version; refuse it when that version's
        events lie in a final period (a final period never changes). Returns the versions
        the file retires."""
        f, u = ingested_files.c, usage_events.c
        loaded = sa.select(f.file_id).where(
            f.source_key == context.key, f.status == "loaded", f.feed == self.name
        )
        ids = [int(i) for i in conn.execute(loaded).scalars()]
        if not ids:
            return ids
        grouped = (
            sa.select(u.billing_period, sa.func.count())
            .where(u.file_id.in_(ids))
            .group_by(u.billing_period)
            .order_by(u.billing_period)
        )
        settings = context.config.usage_events
        for period, count in conn.execute(grouped).all():
            state = billing.status(period, now, context.tz, settings.grace_hours, settings.on_hold)
            if state == billing.FINAL:
                raise ValueError(
                    f"it corrects file {ids[0]} (same key), whose {count} event(s) in billing"
                    f" period {period} are final, and a final period cannot change; send new"
                    " events under a new file name instead"
                )
        return ids

    # --- rows --------------------------------------------------------------------------------

    def process_chunk(self, raw: pd.DataFrame, context: FileContext) -> ChunkResult:
        state = context.lookup
        if not isinstance(state, FileState):
            raise RuntimeError("UsageEventsFeed.prepare() must run before process_chunk().")
        layout = Layout.of(context.config)
        parsed = pd.DataFrame(index=raw.index)
        for column in (*REQUIRED_FIXED, "subscription_ref"):
            parsed[column] = _text(raw, column)
        received = pd.Timestamp(context.received_at).tz_convert("UTC")
        if "timestamp" in raw.columns:
            stamp_missing = raw["timestamp"].isna().to_numpy()
            instants = parse_instants(raw["timestamp"], context.tz)
            stamps = instants.where(~stamp_missing, received)
        else:
            stamp_missing = np.ones(len(raw), dtype=bool)
            stamps = pd.Series(received, index=raw.index)
        parsed["timestamp"] = stamps.astype("datetime64[ns, UTC]")
        for column, _ in layout.meters:
            # a blank cell is missing (valid, no value); a cell that is not a number stays NaN
            parsed[column] = _numbers(raw, column).where(raw[column].notna(), 0.0)
        _, errors, tally = validate(parsed, raw, state.schema, state.kinds)
        errors = self._receipt_time_wording(errors, raw.index[stamp_missing], received)
        extra = [
            self._repeats(parsed["event_ref"], state, tally),
            self._final_periods(parsed, raw, stamp_missing, received, context, state, tally),
        ]
        errors = _merge_errors([errors, *extra])
        valid = ~raw.index.isin(errors["row_number"].unique())
        return ChunkResult(
            rows=self._rows(parsed[valid], raw[valid], layout, context.tz, state.dialect),
            errors=errors,
            failures=tally,
        )

    @staticmethod
    def _receipt_time_wording(
        errors: pd.DataFrame, defaulted: pd.Index, received: pd.Timestamp
    ) -> pd.DataFrame:
        """Rows without a timestamp were checked with the receipt time: say so."""
        hit = (errors["column_name"] == "timestamp") & errors["row_number"].isin(defaulted)
        if hit.any():
            errors = errors.copy()
            errors.loc[hit, "error"] = errors.loc[hit, "error"].str.replace(
                "timestamp None",
                f"timestamp is missing, so the file's receipt time {_iso(received)} is used, which",
                regex=False,
            )
        return errors

    @staticmethod
    def _repeats(refs: pd.Series, state: FileState, tally: Counter[str]) -> pd.DataFrame:
        first = state.seen.first_rows(refs)
        repeated = first[first >= 0]
        tally[REPEAT_FAILURE] += len(repeated)
        return pd.DataFrame(
            {
                "row_number": repeated.index.to_numpy(dtype=np.int64),
                "column_name": "event_ref",
                "value": refs[repeated.index].to_numpy(dtype=object),
                "error": [
                    f"event_ref {ref!r} repeats row {row}: an event_ref must be unique in a file"
                    for ref, row in zip(refs[repeated.index], repeated, strict=True)
                ],
            },
            columns=ERROR_COLUMNS,
        )

    @staticmethod
    def _final_periods(
        parsed: pd.DataFrame,
        raw: pd.DataFrame,
        stamp_missing: np.ndarray,
        received: pd.Timestamp,
        context: FileContext,
        state: FileState,
        tally: Counter[str],
    ) -> pd.DataFrame:
        """New events dated in a ``final`` billing period are errors (already stored ones
        are duplicates, skipped when the file loads)."""
        instants = parsed["timestamp"].dropna()
        periods = _periods(instants.dt.tz_convert(context.tz))
        settings = context.config.usage_events
        for period in pd.unique(periods):
            if period not in state.period_status:
                state.period_status[period] = billing.status(
                    period, state.now, context.tz, settings.grace_hours, settings.on_hold
                )
        final = periods[periods.map(state.period_status) == billing.FINAL]
        if len(final):
            refs = parsed["event_ref"][final.index]
            stored = state.known.stored(refs.dropna())
            final = final[~refs.isin(stored).to_numpy()]
        messages, values = [], []
        missing = pd.Series(stamp_missing, index=raw.index)
        for row, period in final.items():
            closed = _iso(billing.closes_at(period, context.tz, settings.grace_hours))
            tally[FINAL_PERIOD_FAILURE + period] += 1
            if missing[row]:
                values.append(None)
                messages.append(
                    f"timestamp is missing, so the file's receipt time {_iso(received)} is used,"
                    f" which is in billing period {period}, final since {closed}"
                )
            else:
                value = str(raw.at[row, "timestamp"])
                values.append(value)
                messages.append(
                    f"timestamp {value!r} is in billing period {period}, final since {closed}:"
                    " events of a final period are not accepted"
                )
        return pd.DataFrame(
            {
                "row_number": final.index.to_numpy(dtype=np.int64),
                "column_name": "timestamp",
                "value": values,
                "error": messages,
            },
            columns=ERROR_COLUMNS,
        )

    @staticmethod
    def _rows(
        parsed: pd.DataFrame, raw: pd.DataFrame, layout: Layout, tz: ZoneInfo, dialect: str
    ) -> pd.DataFrame:
        """Staging rows (``usage_event_rows`` without ``file_id``) of valid input rows."""
        instants = parsed["timestamp"]
        local = instants.dt.tz_convert(tz)
        count = len(parsed)
        meters = [
            (name, _json_values(_numbers(raw, column), numbers=True))
            for column, name in layout.meters
        ]
        properties = [
            (name, _json_values(_text(raw, column), numbers=False))
            for column, name in layout.properties
        ]
        return pd.DataFrame(
            {
                "row_number": parsed.index.to_numpy(dtype=np.int64),
                "event_ref": parsed["event_ref"].to_numpy(dtype=object),
                "customer_ref": parsed["customer_ref"].to_numpy(dtype=object),
                "subscription_ref": parsed["subscription_ref"]
                .astype(object)
                .where(parsed["subscription_ref"].notna(), None)
                .to_numpy(dtype=object),
                "event": parsed["event"].to_numpy(dtype=object),
                "occurred_at": storage_text(instants, dialect),
                "day": iso_days(local.dt.tz_localize(None).dt.normalize()),
                "billing_period": _periods(local).to_numpy(dtype=object),
                "properties": _json_objects(properties, count),
                "meters": _json_objects(meters, count),
            }
        )

    # --- loading -----------------------------------------------------------------------------

    def apply(
        self, conn: sa.Connection, context: FileContext, file_id: int, removed: list[int]
    ) -> FeedChange:
        """Retire the superseded versions' events, add this file's new events and their
        meters, count the known refs skipped, empty the staging rows, refresh periods."""
        state = context.lookup
        assert isinstance(state, FileState)
        s, u = usage_event_rows.c, usage_events.c
        days: set[date] = set()
        lost_periods: set[str] = set()
        events_removed = 0
        if removed:
            days |= self._remove_meters(conn, removed)
            lost_periods = set(
                conn.execute(sa.select(u.billing_period).where(u.file_id.in_(removed)).distinct())
                .scalars()
                .all()
            )
            gone = conn.execute(usage_events.delete().where(u.file_id.in_(removed)))
            events_removed = int(gone.rowcount or 0)
            conn.execute(usage_event_rows.delete().where(s.file_id.in_(removed)))

        staged = conn.execute(sa.select(sa.func.count()).where(s.file_id == file_id)).scalar_one()
        conn.execute(self._insert_new_events(conn, file_id))
        added = conn.execute(sa.select(sa.func.count()).where(u.file_id == file_id)).scalar_one()
        for _, name in Layout.of(context.config).meters:
            conn.execute(self._insert_meters(conn, file_id, name))
        this_file = s.file_id == file_id
        new = usage_events.join(usage_event_rows, (s.event_ref == u.event_ref) & this_file)
        days |= {
            _as_date(d)
            for d in conn.execute(
                sa.select(s.day).select_from(new).where(u.file_id == file_id).distinct()
            ).scalars()
        }
        added_periods = set(
            conn.execute(sa.select(u.billing_period).where(u.file_id == file_id).distinct())
            .scalars()
            .all()
        )
        differing, first = self._duplicates(conn, file_id)
        conn.execute(usage_event_rows.delete().where(this_file))
        periods = billing.refresh_billing_periods(
            conn, context.config, state.now, has_events=added_periods, recheck=lost_periods
        )
        touched = added_periods | lost_periods
        notes: dict[str, Any] = {
            "events_staged": int(staged),
            "events_added": int(added),
            "duplicate_event_refs": int(staged) - int(added),
            "billing_periods": {p.period: p.status for p in periods if p.period in touched},
        }
        if differing:
            notes["duplicates_with_other_values"] = differing
        if first:
            notes["first_duplicate"] = first
        if removed:
            notes["events_removed"] = events_removed
        duplicates = int(staged) - int(added)
        return FeedChange(
            days=days,
            tables={"usage_events"} if (added or events_removed) else set(),
            notes=notes,
            rows_loaded=int(added) if duplicates else None,
            ledger_note=(
                f"File {context.key}: {duplicates} of {int(staged)} rows skipped as duplicates,"
                f" their event_ref already ingested (first: {first})."
                if duplicates
                else None
            ),
        )

    @staticmethod
    def _remove_meters(conn: sa.Connection, removed: list[int]) -> set[date]:
        """Delete the removed versions' meters; return their days. The ledger's day range
        of each version bounds the (day, file_id) index search."""
        f, m = ingested_files.c, usage_event_meters.c
        bounds = conn.execute(
            sa.select(sa.func.min(f.min_day), sa.func.max(f.max_day)).where(f.file_id.in_(removed))
        ).one()
        if bounds[0] is None:
            return set()
        where = [m.day >= bounds[0], m.day <= bounds[1], m.file_id.in_(removed)]
        found = conn.execute(sa.select(m.day).where(*where).distinct()).scalars()
        days = {_as_date(d) for d in found}
        conn.execute(usage_event_meters.delete().where(*where))
        return days

    @staticmethod
    def _insert_new_events(conn: sa.Connection, file_id: int) -> sa.Executable:
        """Staged events whose event_ref is not stored yet. ON CONFLICT DO NOTHING also covers
        a concurrent file committing the same new ref first (PostgreSQL)."""
        s, u = usage_event_rows.c, usage_events.c
        columns = [
            "event_ref",
            "customer_ref",
            "subscription_ref",
            "event",
            "occurred_at",
            "billing_period",
            "properties",
            "meters",
            "file_id",
        ]
        rows = (
            sa.select(*(s[c] for c in columns))
            .where(s.file_id == file_id)
            .where(~sa.exists().where(u.event_ref == s.event_ref))
        )
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        return (
            dialect.insert(usage_events)
            .from_select(columns, rows)
            .on_conflict_do_nothing(index_elements=["event_ref"])
        )

    @staticmethod
    def _insert_meters(conn: sa.Connection, file_id: int, meter: str) -> sa.Executable:
        """One ``usage_event_meters`` row per new event of this file with a value for
        ``meter``, read from the staged meters JSON (JSON_EXTRACT / ->>)."""
        s, u = usage_event_rows.c, usage_events.c
        if conn.dialect.name == "postgresql":
            document = sa.cast(s.meters, postgresql.JSONB)
        else:
            document = sa.type_coerce(s.meters, sa.JSON)
        value = document[meter].as_float()
        rows = (
            sa.select(
                s.file_id,
                s.row_number,
                s.event_ref,
                s.day,
                s.customer_ref,
                sa.func.coalesce(s.subscription_ref, ""),
                s.event,
                sa.literal(meter, sa.Text),
                value,
            )
            .select_from(
                usage_event_rows.join(
                    usage_events, (u.event_ref == s.event_ref) & (u.file_id == s.file_id)
                )
            )
            .where(s.file_id == file_id, value.is_not(None))
        )
        columns = [
            "file_id",
            "row_number",
            "event_ref",
            "day",
            "customer_ref",
            "subscription_ref",
            "event",
            "meter",
            "value",
        ]
        return usage_event_meters.insert().from_select(columns, rows)

    @staticmethod
    def _duplicates(conn: sa.Connection, file_id: int) -> tuple[int, str | None]:
        """Of the staged refs already stored by another file: how many differ in any value
        from the stored event, and the first one as a phrase."""
        s, u = usage_event_rows.c, usage_events.c
        earlier = usage_event_rows.join(
            usage_events, (u.event_ref == s.event_ref) & (u.file_id != file_id)
        )
        differs = sa.or_(
            u.customer_ref != s.customer_ref,
            sa.func.coalesce(u.subscription_ref, "") != sa.func.coalesce(s.subscription_ref, ""),
            u.event != s.event,
            u.occurred_at != s.occurred_at,
            u.properties != s.properties,
            u.meters != s.meters,
        )
        differing = conn.execute(
            sa.select(sa.func.count()).select_from(earlier).where(s.file_id == file_id, differs)
        ).scalar_one()
        first = conn.execute(
            sa.select(s.row_number, s.event_ref, u.file_id)
            .select_from(earlier)
            .where(s.file_id == file_id)
            .order_by(s.row_number)
            .limit(1)
        ).first()
        sentence = (
            f"row {first.row_number}: event_ref {first.event_ref!r} is already stored from"
            f" file {first.file_id}"
            if first is not None
            else None
        )
        return int(differing), sentence

    # --- checks --------------------------------------------------------------------------------

    def checks(self, outcome: Any) -> list[FeedCheck]:
        """``closed_period_events`` fails with the count of rows dated in final periods."""
        per_period = {
            key.removeprefix(FINAL_PERIOD_FAILURE): count
            for key, count in sorted(outcome.failures.items())
            if key.startswith(FINAL_PERIOD_FAILURE)
        }
        total = sum(per_period.values())
        description = (
            "No event is dated in a final billing period."
            if not total
            else f"{total} event(s) are dated in final billing periods"
            f" ({', '.join(f'{p}: {n}' for p, n in per_period.items())}); the file is"
            " rejected. New events of a final period are never accepted (stored ones are"
            " skipped as duplicates); put a period on hold"
            " (usage_events.on_hold) before it closes to keep it open for late usage."
        )
        return [
            FeedCheck(
                CLOSED_PERIOD_CHECK,
                passed=total == 0,
                description=description,
                metadata={"events_in_final_periods": total, "periods": per_period},
            )
        ]


def _merge_errors(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One error per (row, column), messages joined, ordered by row then column."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=ERROR_COLUMNS)
    merged = pd.concat(frames, ignore_index=True)
    merged["row_number"] = merged["row_number"].astype("int64")
    return (
        merged.groupby(["row_number", "column_name"], as_index=False, sort=True)
        .agg(value=("value", "first"), error=("error", "; ".join))
        .loc[:, ERROR_COLUMNS]
    )


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


USAGE_EVENTS = UsageEventsFeed()
