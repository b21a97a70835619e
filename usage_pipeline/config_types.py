"""The resolved settings the pipeline reads (frozen values; validated by
:mod:`usage_pipeline.config_schema`)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from usage_pipeline.config_values import seconds

DEFAULT_INBOX = "data/inbox"
DEFAULT_WAREHOUSE = "sqlite:///data/warehouse.db"
DROP_DAYS = ("daily", "weekdays")
SNAPSHOT_PERIODS = ("single", "daily", "weekly", "monthly", "quarterly", "yearly")
IDENTIFIER_KINDS = ("account_id", "crm_id", "domain", "name")
DIMENSION_TYPES = ("numeric", "text", "boolean")


@dataclass(frozen=True)
class DropWatch:
    """When a feed's nightly drop is due (``drops.<feed>``): night D's file must be loaded by
    ``deadline`` on D (instance time) plus ``grace``, on every day or on weekdays only; the
    volume check warns outside ``volume_band`` (fractions of the median night)."""

    feed: str
    deadline: time = time(23, 0)
    grace: timedelta = timedelta(hours=2)
    days: str = "daily"
    volume_band: tuple[float, float] = (0.5, 2.0)


DEFAULT_DROPS = (DropWatch("user_activity"),)


def drops_raw(watches: tuple[DropWatch, ...]) -> dict[str, dict[str, Any]]:
    """The watches as the YAML mapping of ``drops``."""
    return {
        w.feed: {
            "deadline": w.deadline.strftime("%H:%M"),
            "grace": seconds(w.grace),
            "days": w.days,
            "volume_band": list(w.volume_band),
        }
        for w in watches
    }


@dataclass(frozen=True)
class ProductConfig:
    """A product of product-usage imports: its snapshot period and history rule."""

    name: str
    snapshot_period: str
    allow_multiple_rows_per_customer: bool = False


@dataclass(frozen=True)
class MappingConfig:
    """CSV column -> product -> dimension of one type."""

    column: str
    product: str
    dimension: str
    type: str


@dataclass(frozen=True)
class ImportConfig:
    """One product-usage import (a folder under ``product_usage/``)."""

    name: str
    identifier_column: str
    identifier_kind: str
    date_column: str | None
    mappings: tuple[MappingConfig, ...]


@dataclass(frozen=True)
class UsageEventsConfig:
    """The ``usage_events`` template and billing-period rules."""

    meters: tuple[str, ...] = ()
    properties: tuple[str, ...] = ()
    grace_hours: float = 8.0
    on_hold: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlsoEvent:
    """An extra event every row of an events import produces: its name and the columns it
    carries (column -> property key)."""

    event: str
    properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class EventImportConfig:
    """One events import (a folder under ``events/``): a table export read as events.

    Column names and property keys are lower-case and trimmed (as in a normalised header);
    the row's event is ``event`` when fixed, else ``names`` looked up in ``event_column``.
    """

    name: str
    identity: str  # column
    timestamp: str  # column
    event: str | None = None  # a fixed event name ...
    event_column: str | None = None  # ... or the column whose values ``names`` maps
    names: tuple[tuple[str, str], ...] = ()  # column value -> event name
    properties: tuple[tuple[str, str], ...] = ()  # column -> property key (renames)
    also: tuple[AlsoEvent, ...] = ()

    def event_names(self) -> set[str]:
        """Every event name a row of this import may make."""
        own = {self.event} if self.event else {name for _, name in self.names}
        return own | {also.event for also in self.also}

    def raw(self) -> dict[str, Any]:
        """The import as the YAML mapping of ``events.imports.<name>``."""
        event: Any = self.event or {"column": self.event_column, "names": dict(self.names)}
        return {
            "identity": self.identity,
            "timestamp": self.timestamp,
            "event": event,
            "properties": dict(self.properties),
            "also": [{"event": a.event, "properties": dict(a.properties)} for a in self.also],
        }


@dataclass(frozen=True)
class EventsConfig:
    """Back-dated behaviour events: per-event throttle windows, the oldest accepted day and
    the imports of existing tables."""

    throttle: tuple[tuple[str, timedelta], ...] = ()
    floor_date: date = date(2009, 1, 1)
    imports: tuple[EventImportConfig, ...] = ()

    def window(self, event: str) -> timedelta | None:
        return dict(self.throttle).get(event)

    def import_config(self, name: str | None) -> EventImportConfig | None:
        return next((i for i in self.imports if i.name == name), None)


@dataclass(frozen=True)
class PipelineConfig:
    """Resolved settings (file, then environment, then explicit overrides)."""

    timezone: str = "UTC"
    inbox: str = DEFAULT_INBOX
    warehouse: str = DEFAULT_WAREHOUSE
    max_reject_ratio: float = 0.05
    drops: tuple[DropWatch, ...] = DEFAULT_DROPS
    webhook_url: str | None = None  # notifications.webhook_url
    s3_endpoint_url: str | None = None
    max_file_bytes: int = 5 * 1024**3
    chunk_rows: int = 50_000
    batch_max_files: int = 200  # new file versions per ingestion run ...
    batch_max_bytes: int = 1024**3  # ... and their bytes (a larger file runs alone)
    products: tuple[ProductConfig, ...] = ()
    imports: tuple[ImportConfig, ...] = ()
    usage_events: UsageEventsConfig = UsageEventsConfig()
    events: EventsConfig = EventsConfig()
    source_path: str | None = field(default=None, compare=False)

    def product(self, name: str) -> ProductConfig:
        return next(p for p in self.products if p.name == name)

    def import_config(self, name: str) -> ImportConfig | None:
        return next((i for i in self.imports if i.name == name), None)

    def drop_watch(self, feed: str) -> DropWatch | None:
        return next((w for w in self.drops if w.feed == feed), None)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def to_raw(self) -> dict[str, Any]:
        """The settings as YAML-shaped data that ``parse_config`` reads back."""
        return {
            "timezone": self.timezone,
            "inbox": self.inbox,
            "warehouse": self.warehouse,
            "max_reject_ratio": self.max_reject_ratio,
            "drops": drops_raw(self.drops),
            "notifications": {"webhook_url": self.webhook_url},
            "s3_endpoint_url": self.s3_endpoint_url,
            "max_file_bytes": self.max_file_bytes,
            "chunk_rows": self.chunk_rows,
            "batch": {"max_files": self.batch_max_files, "max_bytes": self.batch_max_bytes},
            "products": {
                p.name: {
                    "snapshot_period": p.snapshot_period,
                    "allow_multiple_rows_per_customer": p.allow_multiple_rows_per_customer,
                }
                for p in self.products
            },
            "imports": {
                i.name: {
                    "identifier": {"column": i.identifier_column, "kind": i.identifier_kind},
                    "date_column": i.date_column,
                    "mappings": [dataclasses.asdict(m) for m in i.mappings],
                }
                for i in self.imports
            },
            "usage_events": {
                "meters": list(self.usage_events.meters),
                "properties": list(self.usage_events.properties),
                "grace_hours": self.usage_events.grace_hours,
                "on_hold": list(self.usage_events.on_hold),
            },
            "events": {
                "throttle": {name: seconds(window) for name, window in self.events.throttle},
                "floor_date": self.events.floor_date.isoformat(),
                "imports": {i.name: i.raw() for i in self.events.imports},
            },
        }

    def to_json(self) -> str:
        """Every setting as JSON (for a process that cannot share Python objects)."""
        return json.dumps({"source_path": self.source_path, "raw": self.to_raw()}, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> PipelineConfig:
        from usage_pipeline.config_schema import parse_config

        data = json.loads(text)
        return parse_config(data["raw"], data["source_path"])

    def with_overrides(self, **overrides: Any) -> PipelineConfig:
        """A copy with the given (non-None) settings replaced and validated again."""
        from usage_pipeline.config_schema import parse_config

        changed = dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})
        return parse_config(changed.to_raw(), self.source_path)
