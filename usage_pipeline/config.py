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
from datetime import time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

DEFAULT_CONFIG_PATH = "data/pipeline.yaml"
DEFAULT_INBOX = "data/inbox"
DEFAULT_WAREHOUSE = "sqlite:///data/warehouse.db"

ENV_CONFIG = "USAGE_PIPELINE_CONFIG"
ENV_INBOX = "USAGE_PIPELINE_INBOX"
ENV_WAREHOUSE = "USAGE_PIPELINE_WAREHOUSE_URL"
ENV_TIMEZONE = "USAGE_PIPELINE_TIMEZONE"
ENV_S3_ENDPOINT = "AWS_ENDPOINT_URL"


class ConfigError(ValueError):
    """The configuration is invalid; the message is one sentence naming the key."""


@dataclass(frozen=True)
class PipelineConfig:
    """Resolved settings (file, then environment, then explicit overrides)."""

    timezone: str = "UTC"
    inbox: str = DEFAULT_INBOX
    warehouse: str = DEFAULT_WAREHOUSE
    max_reject_ratio: float = 0.05
    drop_deadline: time = time(23, 0)
    drop_grace: timedelta = timedelta(hours=2)
    s3_endpoint_url: str | None = None
    max_file_bytes: int = 5 * 1024**3
    chunk_rows: int = 200_000
    source_path: str | None = field(default=None, compare=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def to_json(self) -> str:
        """Serialise every setting (for a Dagster resource field)."""
        data = dataclasses.asdict(self)
        data["drop_deadline"] = self.drop_deadline.strftime("%H:%M")
        data["drop_grace"] = f"{int(self.drop_grace.total_seconds())}s"
        return json.dumps(data, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> PipelineConfig:
        data = json.loads(text)
        data["drop_deadline"] = _parse_clock(data["drop_deadline"], "drop_deadline")
        data["drop_grace"] = _parse_duration(data["drop_grace"], "drop_grace")
        return _validated(PipelineConfig(**data))

    def with_overrides(self, **overrides: Any) -> PipelineConfig:
        """Return a copy with the given (non-None) settings replaced and re-validated."""
        data = {k: v for k, v in overrides.items() if v is not None}
        return _validated(dataclasses.replace(self, **data))


# key -> parser; every accepted YAML key appears here and nowhere else.
def _parse_duration(value: Any, key: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", str(value))
    if not match:
        raise ConfigError(f"Config key '{key}' must be a duration like 30m or 2h, got {value!r}.")
    amount, unit = int(match[1]), match[2]
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: amount})


def _parse_clock(value: Any, key: str) -> time:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", str(value))
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ConfigError(f"Config key '{key}' must be a time of day like 23:00, got {value!r}.")
    return time(int(match[1]), int(match[2]))


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


def _parse_text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"Config key '{key}' must be a non-empty string, got {value!r}.")
    return value.strip()


_FILE_KEYS: dict[str, tuple[str, Any]] = {
    "timezone": ("timezone", _parse_text),
    "inbox": ("inbox", _parse_text),
    "warehouse": ("warehouse", _parse_text),
    "max_reject_ratio": ("max_reject_ratio", _parse_ratio),
    "drop_deadline": ("drop_deadline", _parse_clock),
    "drop_grace": ("drop_grace", _parse_duration),
    "s3_endpoint_url": ("s3_endpoint_url", _parse_text),
    "max_file_bytes": ("max_file_bytes", _parse_positive_int),
    "chunk_rows": ("chunk_rows", _parse_positive_int),
}

# Keys owned by feeds that later issues implement; accepted so one config file serves all.
_RESERVED_SECTIONS = {"products", "imports", "usage_events", "events"}

_ENV_KEYS = {
    ENV_INBOX: "inbox",
    ENV_WAREHOUSE: "warehouse",
    ENV_TIMEZONE: "timezone",
    ENV_S3_ENDPOINT: "s3_endpoint_url",
}


def _validated(config: PipelineConfig) -> PipelineConfig:
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"Config key 'timezone' must be an IANA time zone name, got {config.timezone!r}."
        ) from exc
    return config


def parse_config(raw: Mapping[str, Any] | None, source_path: str | None = None) -> PipelineConfig:
    """Build a config from a parsed YAML mapping; unknown keys are an error naming the key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"Config file {source_path} must hold a mapping of keys to values.")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _RESERVED_SECTIONS:
            continue
        if key not in _FILE_KEYS:
            known = ", ".join(sorted([*_FILE_KEYS, *_RESERVED_SECTIONS]))
            raise ConfigError(f"Unknown config key '{key}' (known keys: {known}).")
        if value is None:
            continue
        attr, parser = _FILE_KEYS[key]
        values[attr] = parser(value, key)
    return _validated(PipelineConfig(source_path=source_path, **values))


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
    env_values = {attr: env[name] for name, attr in _ENV_KEYS.items() if env.get(name)}
    explicit = {k: v for k, v in overrides.items() if v is not None}
    return config.with_overrides(**{**env_values, **explicit})
