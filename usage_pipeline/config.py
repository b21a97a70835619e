"""Pipeline settings: one YAML file, overridden by environment variables and CLI flags.

The keys and their rules live in :mod:`usage_pipeline.config_schema` (pydantic models, loaded
when a setting is parsed); the resolved values in :mod:`usage_pipeline.config_types`. Nothing
is read at import time: call :func:`load_config`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from usage_pipeline.config_types import (
    DEFAULT_DROPS,
    DEFAULT_INBOX,
    DEFAULT_WAREHOUSE,
    DIMENSION_TYPES,
    DROP_DAYS,
    IDENTIFIER_KINDS,
    SNAPSHOT_PERIODS,
    AlsoEvent,
    DropWatch,
    EventImportConfig,
    EventsConfig,
    ImportConfig,
    MappingConfig,
    PipelineConfig,
    ProductConfig,
    UsageEventsConfig,
)
from usage_pipeline.config_values import ConfigError

__all__ = [
    "DEFAULT_DROPS",
    "DEFAULT_INBOX",
    "DEFAULT_WAREHOUSE",
    "DIMENSION_TYPES",
    "DROP_DAYS",
    "IDENTIFIER_KINDS",
    "SNAPSHOT_PERIODS",
    "AlsoEvent",
    "ConfigError",
    "DropWatch",
    "EventImportConfig",
    "EventsConfig",
    "ImportConfig",
    "MappingConfig",
    "PipelineConfig",
    "ProductConfig",
    "UsageEventsConfig",
    "load_config",
    "parse_config",
]

DEFAULT_CONFIG_PATH = "data/pipeline.yaml"

ENV_CONFIG = "USAGE_PIPELINE_CONFIG"
ENV_INBOX = "USAGE_PIPELINE_INBOX"
ENV_WAREHOUSE = "USAGE_PIPELINE_WAREHOUSE_URL"
ENV_TIMEZONE = "USAGE_PIPELINE_TIMEZONE"
ENV_S3_ENDPOINT = "AWS_ENDPOINT_URL"
ENV_WEBHOOK = "USAGE_PIPELINE_WEBHOOK_URL"

# variable -> the setting it overrides
_ENV_KEYS = {
    ENV_INBOX: "inbox",
    ENV_WAREHOUSE: "warehouse",
    ENV_TIMEZONE: "timezone",
    ENV_S3_ENDPOINT: "s3_endpoint_url",
    ENV_WEBHOOK: "webhook_url",
}
# Settings whose file key is nested: setting -> its key path.
_KEY_PATHS = {"webhook_url": "notifications.webhook_url"}


def parse_config(raw: Mapping[str, Any] | None, source_path: str | None = None) -> PipelineConfig:
    """Build a config from a parsed YAML mapping; unknown keys are an error naming the key."""
    from usage_pipeline import config_schema  # pydantic loads only when settings are parsed

    return config_schema.parse_config(raw, source_path)


def _read_file(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> PipelineConfig:
    chosen = path or env.get(ENV_CONFIG)
    config_path = Path(chosen) if chosen else Path(DEFAULT_CONFIG_PATH)
    if not config_path.exists():
        if chosen:
            raise ConfigError(f"Config file {config_path} does not exist.")
        return PipelineConfig()
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file {config_path} is not valid YAML: {exc}.") from exc
    return parse_config(raw, str(config_path))


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> PipelineConfig:
    """Load the YAML file (``--config``, ``USAGE_PIPELINE_CONFIG`` or ``data/pipeline.yaml``),
    apply environment overrides, then explicit ``overrides`` (CLI flags)."""
    env = os.environ if environ is None else environ
    config = _read_file(path, env)
    # Overrides pass the same rule as the file key; an empty variable counts as unset.
    given = {attr: (env[name], name) for name, attr in _ENV_KEYS.items() if env.get(name)}
    given.update(
        {k: (v, f"--{k.replace('_', '-')}") for k, v in overrides.items() if v is not None}
    )
    for attr, (value, source) in given.items():
        _check_override(attr, value, source)
    return config.with_overrides(**{attr: value for attr, (value, _) in given.items()})


def _check_override(attr: str, value: Any, source: str) -> None:
    """Validate ``value`` like the file key of setting ``attr``; the error names ``source``
    (a variable or an option) and the key."""
    from usage_pipeline.config_schema import PipelineSettings, validate_settings

    path = _KEY_PATHS.get(attr, attr)
    if path.split(".")[0] not in PipelineSettings.model_fields:
        return  # not a file key (set only by code)
    raw: Any = value
    for part in reversed(path.split(".")):
        raw = {part: raw}
    try:
        validate_settings(raw)
    except ConfigError as exc:
        raise ConfigError(
            str(exc).replace(f"Config key '{path}'", f"{source} (config key '{path}')", 1)
        ) from None
