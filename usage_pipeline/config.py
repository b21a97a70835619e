"""Pipeline settings: one YAML file, overridden by environment variables.

This module is the single source of truth for every configuration key. Nothing is
read at import time: call :func:`load_config`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from usage_pipeline.config_drops import (
    DEFAULT_DROPS,
    DropWatch,
    apply_legacy_drop,
    drops_raw,
    legacy_drop,
    parse_drops,
    parse_notifications,
    parse_webhook,
)
from usage_pipeline.config_values import ConfigError
from usage_pipeline.config_values import choice as _choice
from usage_pipeline.config_values import mapping as _mapping
from usage_pipeline.config_values import only_keys as _only_keys
from usage_pipeline.config_values import parse_clock as _parse_clock
from usage_pipeline.config_values import parse_duration as _parse_duration
from usage_pipeline.config_values import parse_text as _parse_text
from usage_pipeline.config_values import seconds as _seconds

DEFAULT_CONFIG_PATH = "data/pipeline.yaml"
DEFAULT_INBOX = "data/inbox"
DEFAULT_WAREHOUSE = "sqlite:///data/warehouse.db"

ENV_CONFIG = "USAGE_PIPELINE_CONFIG"
ENV_INBOX = "USAGE_PIPELINE_INBOX"
ENV_WAREHOUSE = "USAGE_PIPELINE_WAREHOUSE_URL"
ENV_TIMEZONE = "USAGE_PIPELINE_TIMEZONE"
ENV_S3_ENDPOINT = "AWS_ENDPOINT_URL"
ENV_WEBHOOK = "USAGE_PIPELINE_WEBHOOK_URL"


SNAPSHOT_PERIODS = ("single", "daily", "weekly", "monthly", "quarterly", "yearly")
IDENTIFIER_KINDS = ("account_id", "crm_id", "domain", "name")
DIMENSION_TYPES = ("numeric", "text", "boolean")


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
class EventsConfig:
    """Back-dated behaviour events: per-event throttle windows and the oldest accepted day."""

    throttle: tuple[tuple[str, timedelta], ...] = ()
    floor_date: date = date(2009, 1, 1)

    def window(self, event: str) -> timedelta | None:
        return dict(self.throttle).get(event)


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
    chunk_rows: int = 200_000
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
        """The settings as YAML-shaped data that :func:`parse_config` reads back."""
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
                "throttle": {name: _seconds(window) for name, window in self.events.throttle},
                "floor_date": self.events.floor_date.isoformat(),
            },
        }

    def to_json(self) -> str:
        """Serialise every setting (for a Dagster resource field)."""
        return json.dumps({"source_path": self.source_path, "raw": self.to_raw()}, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> PipelineConfig:
        data = json.loads(text)
        return parse_config(data["raw"], data["source_path"])

    def with_overrides(self, **overrides: Any) -> PipelineConfig:
        """Return a copy with the given (non-None) settings replaced and re-validated."""
        data = {k: v for k, v in overrides.items() if v is not None}
        return _validated(dataclasses.replace(self, **data))


# key -> parser; every accepted YAML key appears here and nowhere else.
def _names(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"Config key '{key}' must be a list of names, got {value!r}.")
    names = tuple(v.strip() for v in value)
    if len(set(names)) != len(names):
        raise ConfigError(f"Config key '{key}' lists a name twice.")
    return names


def _parse_products(value: Any, key: str) -> tuple[ProductConfig, ...]:
    products = []
    for name, settings in _mapping(value, key).items():
        path = f"{key}.{name}"
        settings = _mapping(settings, path)
        _only_keys(settings, {"snapshot_period", "allow_multiple_rows_per_customer"}, path)
        if settings.get("snapshot_period") is None:
            raise ConfigError(
                f"Config key '{path}.snapshot_period' is missing: every product needs a"
                f" snapshot period ({', '.join(SNAPSHOT_PERIODS)})."
            )
        history = settings.get("allow_multiple_rows_per_customer", False)
        if not isinstance(history, bool):
            raise ConfigError(
                f"Config key '{path}.allow_multiple_rows_per_customer' must be true or false."
            )
        period = _choice(settings["snapshot_period"], SNAPSHOT_PERIODS, f"{path}.snapshot_period")
        products.append(ProductConfig(str(name), period, history))
    return tuple(products)


def _parse_imports(value: Any, key: str) -> tuple[ImportConfig, ...]:
    imports = []
    for name, settings in _mapping(value, key).items():
        path = f"{key}.{name}"
        settings = _mapping(settings, path)
        _only_keys(settings, {"identifier", "date_column", "mappings"}, path)
        identifier = _mapping(settings.get("identifier"), f"{path}.identifier")
        _only_keys(identifier, {"column", "kind"}, f"{path}.identifier")
        column = _parse_text(identifier.get("column"), f"{path}.identifier.column")
        kind = _choice(identifier.get("kind"), IDENTIFIER_KINDS, f"{path}.identifier.kind")
        date_column = settings.get("date_column")
        if date_column is not None:
            date_column = _parse_text(date_column, f"{path}.date_column")
        raw_mappings = settings.get("mappings") or []
        if not isinstance(raw_mappings, list) or not raw_mappings:
            raise ConfigError(f"Config key '{path}.mappings' must be a non-empty list.")
        mappings = []
        for index, mapping in enumerate(raw_mappings):
            mpath = f"{path}.mappings[{index}]"
            mapping = _mapping(mapping, mpath)
            _only_keys(mapping, {"column", "product", "dimension", "type"}, mpath)
            mappings.append(
                MappingConfig(
                    column=_parse_text(mapping.get("column"), f"{mpath}.column"),
                    product=_parse_text(mapping.get("product"), f"{mpath}.product"),
                    dimension=_parse_text(mapping.get("dimension"), f"{mpath}.dimension"),
                    type=_choice(mapping.get("type"), DIMENSION_TYPES, f"{mpath}.type"),
                )
            )
        imports.append(ImportConfig(str(name), column, kind, date_column, tuple(mappings)))
    return tuple(imports)


def _parse_usage_events(value: Any, key: str) -> UsageEventsConfig:
    settings = _mapping(value, key)
    _only_keys(settings, {"meters", "properties", "grace_hours", "on_hold"}, key)
    meters = _names(settings.get("meters"), f"{key}.meters")
    properties = _names(settings.get("properties"), f"{key}.properties")
    fixed = {"customer_ref", "subscription_ref", "event_ref", "timestamp", "event"}
    clash = sorted((set(meters) & set(properties)) | ((set(meters) | set(properties)) & fixed))
    if clash:
        raise ConfigError(
            f"Config key '{key}' names column {clash[0]!r} twice (meters, properties and the"
            " fixed template columns must all differ)."
        )
    grace = settings.get("grace_hours", 8)
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
        raise ConfigError(f"Config key '{key}.grace_hours' must be a number of hours >= 0.")
    on_hold = tuple(str(v) for v in (settings.get("on_hold") or []))
    for period in on_hold:
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
            raise ConfigError(
                f"Config key '{key}.on_hold' must list YYYY-MM periods, got {period!r}."
            )
    return UsageEventsConfig(meters, properties, float(grace), on_hold)


def _parse_events(value: Any, key: str) -> EventsConfig:
    settings = _mapping(value, key)
    _only_keys(settings, {"throttle", "floor_date"}, key)
    throttle = tuple(
        (str(name), _parse_duration(window, f"{key}.throttle.{name}"))
        for name, window in _mapping(settings.get("throttle"), f"{key}.throttle").items()
    )
    floor = settings.get("floor_date", date(2009, 1, 1))
    if isinstance(floor, str):
        try:
            floor = date.fromisoformat(floor)
        except ValueError as exc:
            raise ConfigError(f"Config key '{key}.floor_date' must be a YYYY-MM-DD date.") from exc
    if not isinstance(floor, date):
        raise ConfigError(f"Config key '{key}.floor_date' must be a YYYY-MM-DD date.")
    return EventsConfig(throttle, floor)


_BYTE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_BYTE_UNITS.update({"kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4})


def _parse_bytes(value: Any, key: str) -> int:
    """A byte size: a whole number or a number with a unit (500MB, 1GiB)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    unit = match[2].lower() if match else ""
    if not match or unit not in _BYTE_UNITS or float(match[1]) <= 0:
        raise ConfigError(f"Config key '{key}' must be a size like 500MB or 1GiB, got {value!r}.")
    return max(1, int(float(match[1]) * _BYTE_UNITS[unit]))


def _parse_batch(value: Any, key: str) -> dict[str, int]:
    settings = _mapping(value, key)
    _only_keys(settings, {"max_files", "max_bytes"}, key)
    parsed = {}
    if settings.get("max_files") is not None:
        parsed["batch_max_files"] = _parse_positive_int(settings["max_files"], f"{key}.max_files")
    if settings.get("max_bytes") is not None:
        parsed["batch_max_bytes"] = _parse_bytes(settings["max_bytes"], f"{key}.max_bytes")
    return parsed


def _parse_ratio(value: Any, key: str) -> float:
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"Config key '{key}' must be a number between 0 and 1, got {value!r}.")
    return ratio


def _parse_positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"Config key '{key}' must be a positive whole number, got {value!r}.")
    return value


def _parse_timezone(value: Any, key: str) -> str:
    name = _parse_text(value, key)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"Config key '{key}' must be an IANA time zone name, got {name!r}."
        ) from exc
    return name


def _parse_inbox(value: Any, key: str) -> str:
    inbox = _parse_text(value, key)
    if inbox.lower().startswith("s3:") and not re.fullmatch(
        r"s3://[a-z0-9][a-z0-9.-]+(/.*)?", inbox
    ):
        raise ConfigError(
            f"Config key '{key}' must be a folder or an s3://bucket/prefix URI, got {inbox!r}."
        )
    return inbox


_FILE_KEYS: dict[str, tuple[str, Any]] = {
    "timezone": ("timezone", _parse_timezone),
    "inbox": ("inbox", _parse_inbox),
    "warehouse": ("warehouse", _parse_text),
    "max_reject_ratio": ("max_reject_ratio", _parse_ratio),
    "drops": ("drops", parse_drops),
    "notifications": ("", parse_notifications),
    "drop_deadline": ("", legacy_drop("deadline", _parse_clock)),
    "drop_grace": ("", legacy_drop("grace", _parse_duration)),
    "s3_endpoint_url": ("s3_endpoint_url", _parse_text),
    "max_file_bytes": ("max_file_bytes", _parse_positive_int),
    "chunk_rows": ("chunk_rows", _parse_positive_int),
    "products": ("products", _parse_products),
    "imports": ("imports", _parse_imports),
    "usage_events": ("usage_events", _parse_usage_events),
    "events": ("events", _parse_events),
    "batch": ("", _parse_batch),  # sets batch_max_files / batch_max_bytes
}

_ENV_KEYS = {
    ENV_INBOX: "inbox",
    ENV_WAREHOUSE: "warehouse",
    ENV_TIMEZONE: "timezone",
    ENV_S3_ENDPOINT: "s3_endpoint_url",
    ENV_WEBHOOK: "webhook_url",
}


def _validated(config: PipelineConfig) -> PipelineConfig:
    _check_products_and_imports(config)
    if config.webhook_url is not None:
        parse_webhook(config.webhook_url, "notifications.webhook_url")
    _parse_timezone(config.timezone, "timezone")
    return config


def parse_config(raw: Mapping[str, Any] | None, source_path: str | None = None) -> PipelineConfig:
    """Build a config from a parsed YAML mapping; unknown keys are an error naming the key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"Config file {source_path} must hold a mapping of keys to values.")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _FILE_KEYS:
            known = ", ".join(sorted(_FILE_KEYS))
            raise ConfigError(f"Unknown config key '{key}' (known keys: {known}).")
        if value is None:
            continue
        attr, parser = _FILE_KEYS[key]
        if attr:
            values[attr] = parser(value, key)
        else:
            values.update(parser(value, key))
    apply_legacy_drop(values)
    return _validated(PipelineConfig(source_path=source_path, **values))


def _check_products_and_imports(config: PipelineConfig) -> None:
    """Every mapping names a configured product; one type per (product, dimension)."""
    products = {p.name for p in config.products}
    types: dict[tuple[str, str], tuple[str, str]] = {}
    for imp in config.imports:
        for index, mapping in enumerate(imp.mappings):
            path = f"imports.{imp.name}.mappings[{index}]"
            if mapping.product not in products:
                raise ConfigError(
                    f"Config key '{path}.product' names product {mapping.product!r}, which has"
                    " no snapshot period: add it under 'products' with a snapshot_period."
                )
            seen = types.setdefault((mapping.product, mapping.dimension), (mapping.type, path))
            if seen[0] != mapping.type:
                raise ConfigError(
                    f"Config key '{path}.type' maps dimension {mapping.dimension!r} of product"
                    f" {mapping.product!r} as {mapping.type}, but '{seen[1]}' maps it as"
                    f" {seen[0]}."
                )


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> PipelineConfig:
    """Load the YAML file (``--config``, ``USAGE_PIPELINE_CONFIG`` or ``data/pipeline.yaml``),
    apply environment overrides, then explicit ``overrides`` (CLI flags)."""
    env = os.environ if environ is None else environ
    chosen = path or env.get(ENV_CONFIG)
    config_path = Path(chosen) if chosen else Path(DEFAULT_CONFIG_PATH)
    if config_path.exists():
        try:
            raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"Config file {config_path} is not valid YAML: {exc}.") from exc
        config = parse_config(raw, str(config_path))
    elif chosen:
        raise ConfigError(f"Config file {config_path} does not exist.")
    else:
        config = PipelineConfig()
    # Overrides pass the same parser as the file key; an empty variable counts as unset.
    env_values = {
        attr: _override(attr, env[name], name) for name, attr in _ENV_KEYS.items() if env.get(name)
    }
    explicit = {
        k: _override(k, v, f"--{k.replace('_', '-')}")
        if k in _FILE_KEYS or k in _NESTED_OVERRIDES
        else v
        for k, v in overrides.items()
        if v is not None
    }
    return config.with_overrides(**{**env_values, **explicit})


# Overridable settings that live inside a nested file key: (their key path, parser).
_NESTED_OVERRIDES: dict[str, tuple[str, Any]] = {
    "webhook_url": ("notifications.webhook_url", parse_webhook),
}


def _override(key: str, value: Any, source: str) -> Any:
    """``value`` for config key ``key`` given by ``source`` (a variable or an option),
    validated like the file key; the error names both."""
    path, parser = _NESTED_OVERRIDES.get(key) or (key, _FILE_KEYS[key][1])
    try:
        return parser(value, path)
    except ConfigError as exc:
        raise ConfigError(
            str(exc).replace(f"Config key '{path}'", f"{source} (config key '{path}')", 1)
        ) from None
