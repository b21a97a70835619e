"""The scalar parsers every configuration section shares (one-sentence errors naming the
key)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time, timedelta
from typing import Any


class ConfigError(ValueError):
    """The configuration is invalid; the message is one sentence naming the key."""


def seconds(value: timedelta) -> str:
    return f"{int(value.total_seconds())}s"


def parse_duration(value: Any, key: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", str(value))
    if not match:
        raise ConfigError(f"Config key '{key}' must be a duration like 30m or 2h, got {value!r}.")
    amount, unit = int(match[1]), match[2]
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: amount})


def mapping(value: Any, key: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"Config key '{key}' must be a mapping of names to settings.")
    return value


def only_keys(value: Mapping[str, Any], allowed: set[str], key: str) -> None:
    for name in value:
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            raise ConfigError(f"Unknown config key '{key}.{name}' (known keys: {known}).")


def choice(value: Any, choices: tuple[str, ...], key: str) -> str:
    if value not in choices:
        raise ConfigError(f"Config key '{key}' must be one of {', '.join(choices)}, got {value!r}.")
    return str(value)


def parse_clock(value: Any, key: str) -> time:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", str(value))
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ConfigError(f"Config key '{key}' must be a time of day like 23:00, got {value!r}.")
    return time(int(match[1]), int(match[2]))


def parse_text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"Config key '{key}' must be a non-empty string, got {value!r}.")
    return value.strip()
