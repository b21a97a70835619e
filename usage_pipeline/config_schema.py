"""The configuration file's schema as pydantic models: every accepted key, its rule and its
default live here. :func:`parse_config` validates a YAML mapping and resolves it into a
:class:`PipelineConfig`; an error is one sentence naming the key path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, model_validator

from usage_pipeline.config_drops import (
    Clock,
    DropSettings,
    Duration,
    Section,
    check_drop_feeds,
    drop_watches,
)
from usage_pipeline.config_errors import config_error
from usage_pipeline.config_events import EventsSettings
from usage_pipeline.config_types import (
    DIMENSION_TYPES,
    IDENTIFIER_KINDS,
    SNAPSHOT_PERIODS,
    ImportConfig,
    MappingConfig,
    PipelineConfig,
    ProductConfig,
    UsageEventsConfig,
)
from usage_pipeline.config_values import (
    ConfigError,
    check_bytes,
    check_hours,
    check_inbox,
    check_mapping,
    check_names,
    check_periods,
    check_positive_int,
    check_ratio,
    check_text,
    check_timezone,
    check_webhook,
    one_of,
)

TEMPLATE_COLUMNS = {"customer_ref", "subscription_ref", "event_ref", "timestamp", "event"}

Text = Annotated[str | None, BeforeValidator(check_text)]
PositiveInt = Annotated[int | None, BeforeValidator(check_positive_int)]
Names = Annotated[list[str] | None, BeforeValidator(check_names)]


def _snapshot_period(value: Any) -> str:
    if value is None:
        raise ValueError(
            f"is missing: every product needs a snapshot period ({', '.join(SNAPSHOT_PERIODS)})."
        )
    return one_of(*SNAPSHOT_PERIODS)(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false.")
    return value


def _non_empty_list(value: Any) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list.")
    return value


class ProductSettings(Section):
    snapshot_period: Annotated[str, BeforeValidator(_snapshot_period)] = Field(
        None, validate_default=True
    )
    allow_multiple_rows_per_customer: Annotated[bool | None, BeforeValidator(_boolean)] = None


class IdentifierSettings(Section):
    column: Annotated[str, BeforeValidator(check_text)] = Field(None, validate_default=True)
    kind: Annotated[str, BeforeValidator(one_of(*IDENTIFIER_KINDS))] = Field(
        None, validate_default=True
    )


class MappingSettings(Section):
    column: Annotated[str, BeforeValidator(check_text)] = Field(None, validate_default=True)
    product: Annotated[str, BeforeValidator(check_text)] = Field(None, validate_default=True)
    dimension: Annotated[str, BeforeValidator(check_text)] = Field(None, validate_default=True)
    type: Annotated[str, BeforeValidator(one_of(*DIMENSION_TYPES))] = Field(
        None, validate_default=True
    )


class ImportSettings(Section):
    identifier: IdentifierSettings = Field(None, validate_default=True)
    date_column: Text = None
    mappings: Annotated[list[MappingSettings], BeforeValidator(_non_empty_list)] = Field(
        None, validate_default=True
    )


class UsageEventsSettings(Section):
    meters: Names = None
    properties: Names = None
    grace_hours: Annotated[float | None, BeforeValidator(check_hours)] = None
    on_hold: Annotated[list[str] | None, BeforeValidator(check_periods)] = None

    @model_validator(mode="after")
    def _columns_differ(self) -> UsageEventsSettings:
        meters, properties = set(self.meters or ()), set(self.properties or ())
        clash = sorted((meters & properties) | ((meters | properties) & TEMPLATE_COLUMNS))
        if clash:
            raise ConfigError(
                f"Config key 'usage_events' names column {clash[0]!r} twice (meters, properties"
                " and the fixed template columns must all differ)."
            )
        return self


class BatchSettings(Section):
    max_files: PositiveInt = None
    max_bytes: Annotated[int | None, BeforeValidator(check_bytes)] = None


class NotificationSettings(Section):
    webhook_url: Annotated[str | None, BeforeValidator(check_webhook)] = None


class PipelineSettings(Section):
    """The whole file; a key left out (or null) keeps :class:`PipelineConfig`'s default."""

    timezone: Annotated[str | None, BeforeValidator(check_timezone)] = None
    inbox: Annotated[str | None, BeforeValidator(check_inbox)] = None
    warehouse: Text = None
    max_reject_ratio: Annotated[float | None, BeforeValidator(check_ratio)] = None
    drops: Annotated[dict[str, DropSettings] | None, BeforeValidator(check_drop_feeds)] = None
    notifications: NotificationSettings | None = None
    drop_deadline: Clock = None
    drop_grace: Duration = None
    s3_endpoint_url: Text = None
    max_file_bytes: PositiveInt = None
    chunk_rows: PositiveInt = None
    products: Annotated[dict[str, ProductSettings] | None, BeforeValidator(check_mapping)] = None
    imports: Annotated[dict[str, ImportSettings] | None, BeforeValidator(check_mapping)] = None
    usage_events: UsageEventsSettings | None = None
    events: EventsSettings | None = None
    batch: BatchSettings | None = None

    @model_validator(mode="after")
    def _mappings_name_products(self) -> PipelineSettings:
        """Every mapping names a configured product; one type per (product, dimension)."""
        products = set(self.products or {})
        types: dict[tuple[str, str], tuple[str, str]] = {}
        for name, imp in (self.imports or {}).items():
            for index, mapping in enumerate(imp.mappings):
                path = f"imports.{name}.mappings[{index}]"
                if mapping.product not in products:
                    raise ConfigError(
                        f"Config key '{path}.product' names product {mapping.product!r}, which"
                        " has no snapshot period: add it under 'products' with a snapshot_period."
                    )
                seen = types.setdefault((mapping.product, mapping.dimension), (mapping.type, path))
                if seen[0] != mapping.type:
                    raise ConfigError(
                        f"Config key '{path}.type' maps dimension {mapping.dimension!r} of product"
                        f" {mapping.product!r} as {mapping.type}, but '{seen[1]}' maps it as"
                        f" {seen[0]}."
                    )
        return self

    def resolve(self, source_path: str | None = None) -> PipelineConfig:
        """The :class:`PipelineConfig` these settings describe (defaults for unset keys)."""
        usage = self.usage_events or UsageEventsSettings()
        events = self.events or EventsSettings()
        batch = self.batch or BatchSettings()
        values: dict[str, Any] = {
            "timezone": self.timezone,
            "inbox": self.inbox,
            "warehouse": self.warehouse,
            "max_reject_ratio": self.max_reject_ratio,
            "drops": drop_watches(self.drops, self.drop_deadline, self.drop_grace),
            "webhook_url": (self.notifications or NotificationSettings()).webhook_url,
            "s3_endpoint_url": self.s3_endpoint_url,
            "max_file_bytes": self.max_file_bytes,
            "chunk_rows": self.chunk_rows,
            "batch_max_files": batch.max_files,
            "batch_max_bytes": batch.max_bytes,
            "products": tuple(
                ProductConfig(name, p.snapshot_period, bool(p.allow_multiple_rows_per_customer))
                for name, p in (self.products or {}).items()
            ),
            "imports": tuple(
                ImportConfig(
                    name,
                    i.identifier.column,
                    i.identifier.kind,
                    i.date_column,
                    tuple(MappingConfig(**m.model_dump()) for m in i.mappings),
                )
                for name, i in (self.imports or {}).items()
            ),
            "usage_events": UsageEventsConfig(
                **{
                    key: tuple(value) if isinstance(value, list) else value
                    for key, value in usage.model_dump().items()
                    if value is not None
                }
            ),
            "events": events.resolve(),
        }
        settings = {key: value for key, value in values.items() if value is not None}
        return PipelineConfig(source_path=source_path, **settings)


def validate_settings(raw: Mapping[str, Any]) -> PipelineSettings:
    try:
        return PipelineSettings.model_validate(dict(raw))
    except ValidationError as exc:
        raise config_error(exc, PipelineSettings) from None


def parse_config(raw: Mapping[str, Any] | None, source_path: str | None = None) -> PipelineConfig:
    """Build a config from a parsed YAML mapping; unknown keys are an error naming the key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"Config file {source_path} must hold a mapping of keys to values.")
    return validate_settings(raw).resolve(source_path)
