"""The value rules every configuration section shares, as pydantic-ready validators.

Each ``check_*`` takes a raw YAML value and returns its canonical form, or raises
``ValueError`` whose text is the end of the sentence ("must be ...") that
:mod:`usage_pipeline.config_errors` prefixes with the key path. A rule that must name other
keys raises :class:`ConfigError` with the whole sentence instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(ValueError):
    """The configuration is invalid; the message is one sentence naming the key."""


_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_BYTE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_BYTE_UNITS.update({"kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4})


def seconds(value: timedelta) -> str:
    return f"{int(value.total_seconds())}s"


def check_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {value!r}.")
    return value.strip()


def check_duration(value: Any) -> str:
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", str(value))
    if not match:
        raise ValueError(f"must be a duration like 30m or 2h, got {value!r}.")
    return f"{int(match[1])}{match[2]}"


def as_timedelta(text: str) -> timedelta:
    """A duration already checked by :func:`check_duration`."""
    return timedelta(**{_UNITS[text[-1]]: int(text[:-1])})


def check_clock(value: Any) -> str:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", str(value))
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"must be a time of day like 23:00, got {value!r}.")
    return f"{int(match[1]):02d}:{match[2]}"


def as_time(text: str) -> time:
    """A time of day already checked by :func:`check_clock`."""
    return time.fromisoformat(text)


def one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}.")
        return str(value)

    return check


def check_ratio(value: Any) -> float:
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"must be a number between 0 and 1, got {value!r}.")
    return ratio


def check_positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"must be a positive whole number, got {value!r}.")
    return value


def check_bytes(value: Any) -> int:
    """A byte size: a whole number or a number with a unit (500MB, 1GiB)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    unit = match[2].lower() if match else ""
    if not match or unit not in _BYTE_UNITS or float(match[1]) <= 0:
        raise ValueError(f"must be a size like 500MB or 1GiB, got {value!r}.")
    return max(1, int(float(match[1]) * _BYTE_UNITS[unit]))


def check_hours(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError("must be a number of hours >= 0.")
    return float(value)


def check_timezone(value: Any) -> str:
    name = check_text(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"must be an IANA time zone name, got {name!r}.") from None
    return name


def check_inbox(value: Any) -> str:
    inbox = check_text(value)
    if inbox.lower().startswith("s3:") and not re.fullmatch(
        r"s3://[a-z0-9][a-z0-9.-]+(/.*)?", inbox
    ):
        raise ValueError(f"must be a folder or an s3://bucket/prefix URI, got {inbox!r}.")
    return inbox


def check_webhook(value: Any) -> str:
    url = check_text(value)
    if not re.match(r"https?://[^\s/]+", url):
        raise ValueError(f"must be an http:// or https:// URL, got {url!r}.")
    return url


def check_names(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"must be a list of names, got {value!r}.")
    names = [v.strip() for v in value]
    if len(set(names)) != len(names):
        raise ValueError("lists a name twice.")
    return names


def check_periods(value: Any) -> list[str]:
    periods = [str(v) for v in (value or [])]
    for period in periods:
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
            raise ValueError(f"must list YYYY-MM periods, got {period!r}.")
    return periods


def check_day(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ValueError("must be a YYYY-MM-DD date.") from None


def check_band(value: Any) -> list[float]:
    """``[50%, 200%]`` or ``[0.5, 2]``: the accepted share of the median night."""
    wrong = f"must be two shares of the median like [50%, 200%], got {value!r}."
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(wrong)
    shares = []
    for item in value:
        text = str(item).strip()
        try:
            number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            number = -1.0
        if isinstance(item, bool) or number < 0:
            raise ValueError(wrong)
        shares.append(number)
    if not shares[0] < shares[1]:
        raise ValueError(f"must list the lower share first, got {value!r}.")
    return shares


def check_mapping(value: Any) -> dict[str, Any]:
    """A mapping of names to settings (names as text); None is empty."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError("must be a mapping of names to settings.")
    return {str(name): settings for name, settings in value.items()}
