"""Every feed's file header: its fixed columns and the template line a user fills in.

The one place these names live; the feeds read their columns from here. It imports neither
pandas nor SQLAlchemy, so ``usage-pipeline template`` starts in a fraction of a second.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from usage_pipeline.config import ConfigError, EventImportConfig, ImportConfig, PipelineConfig

ACCOUNT_ID = "account_id"
DATE = "date"
USER_ACTIVITY_REQUIRED = (ACCOUNT_ID, "user_id", "module", "activity", "count")
USER_ACTIVITY_OPTIONAL = (DATE, "timestamp")
ACCOUNT_PARENT = "parent_account_id"
ACCOUNT_VALUE_COLUMNS = ("crm_id", "domain", "name", ACCOUNT_PARENT)
EVENT_KEY_COLUMNS = ("identity", "event", "timestamp")
USAGE_EVENTS_REQUIRED = ("customer_ref", "event_ref", "event")
USAGE_EVENTS_OPTIONAL = ("subscription_ref", "timestamp")
USAGE_EVENTS_TEMPLATE = ("customer_ref", "subscription_ref", "event_ref", "timestamp", "event")


def lower(name: str) -> str:
    """A configured column name as it appears in a normalised header."""
    return name.strip().lower()


def import_columns(imp: ImportConfig) -> list[str]:
    """A product_usage import's columns as they appear in a normalised header, no repeats."""
    names = [lower(imp.identifier_column), *(lower(m.column) for m in imp.mappings)]
    if imp.date_column:
        names.append(lower(imp.date_column))
    return list(dict.fromkeys(names))


def configured_imports(config: PipelineConfig) -> str:
    """Which product_usage imports exist, for messages about a file outside them."""
    if not config.imports:
        return "no imports are configured: add one under 'imports' in the config file"
    return "configured imports: " + ", ".join(sorted(i.name for i in config.imports))


def event_import_columns(imp: EventImportConfig) -> list[str]:
    """An events import's columns as they appear in a normalised header, no repeats: identity,
    timestamp, the event column, then the columns its properties and extra events name."""
    names = [imp.identity, imp.timestamp, *([imp.event_column] if imp.event_column else [])]
    names += [column for column, _ in imp.properties]
    names += [column for also in imp.also for column, _ in also.properties]
    return list(dict.fromkeys(names))


def configured_event_imports(config: PipelineConfig) -> str:
    """Which events imports exist, for messages about a folder under ``events/``."""
    if not config.events.imports:
        return "no events imports are configured: add one under 'events.imports'"
    return "configured events imports: " + ", ".join(sorted(i.name for i in config.events.imports))


def _events(config: PipelineConfig, import_name: str | None) -> str:
    if import_name is None:
        return ",".join(EVENT_KEY_COLUMNS)
    imp = config.events.import_config(import_name)
    if imp is None:
        raise ConfigError(
            f"The events import {import_name!r} is not configured"
            f" ({configured_event_imports(config)})."
        )
    return ",".join(event_import_columns(imp))


def _usage_events(config: PipelineConfig, import_name: str | None) -> str:
    """The configured meters and properties after the fixed columns, CSV-quoted as needed."""
    settings = config.usage_events
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(
        (*USAGE_EVENTS_TEMPLATE, *settings.meters, *settings.properties)
    )
    return line.getvalue()


def _product_usage(config: PipelineConfig, import_name: str | None) -> str:
    imp = config.import_config(import_name) if import_name else None
    if imp is None:
        raise ConfigError(
            "The product_usage template depends on the import: pass --import NAME"
            f" ({configured_imports(config)})."
        )
    return ",".join(import_columns(imp))


def _fixed(*names: str) -> Callable[[PipelineConfig, str | None], str]:
    line = ",".join(names)
    return lambda config, import_name: line


TEMPLATES: dict[str, Callable[[PipelineConfig, str | None], str]] = {
    "user_activity": _fixed(*USER_ACTIVITY_REQUIRED, *USER_ACTIVITY_OPTIONAL),
    "events": _events,
    "product_usage": _product_usage,
    "usage_events": _usage_events,
    "account_usage": _fixed(ACCOUNT_ID, DATE, "<Module>##<Activity>", "<attribute>"),
    "account_attributes": _fixed(ACCOUNT_ID, DATE, "<attribute>"),
    "accounts": _fixed(ACCOUNT_ID, *ACCOUNT_VALUE_COLUMNS),
}
FEED_NAMES = tuple(sorted(TEMPLATES))


def template(feed: str, config: PipelineConfig, import_name: str | None = None) -> str:
    """The CSV header line of ``feed`` under ``config`` (product_usage, events: of one
    import)."""
    return TEMPLATES[feed](config, import_name)
