"""The ``drops`` (per-feed drop watch) and ``notifications`` configuration sections."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any

from usage_pipeline.config_values import (
    ConfigError,
    choice,
    mapping,
    only_keys,
    parse_clock,
    parse_duration,
    parse_text,
    seconds,
)

DROP_DAYS = ("daily", "weekdays")


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


def parse_band(value: Any, key: str) -> tuple[float, float]:
    """``[50%, 200%]`` or ``[0.5, 2]``: the accepted share of the median night."""

    def share(item: Any) -> float:
        text = str(item).strip()
        try:
            number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            number = -1.0
        if isinstance(item, bool) or number < 0:
            raise ConfigError(
                f"Config key '{key}' must be two shares of the median like [50%, 200%],"
                f" got {value!r}."
            )
        return number

    if not isinstance(value, list) or len(value) != 2:
        raise ConfigError(
            f"Config key '{key}' must be two shares of the median like [50%, 200%], got {value!r}."
        )
    low, high = share(value[0]), share(value[1])
    if not low < high:
        raise ConfigError(f"Config key '{key}' must list the lower share first, got {value!r}.")
    return low, high


def parse_drops(value: Any, key: str) -> tuple[DropWatch, ...]:
    from usage_pipeline.feeds import FEEDS  # the feeds import this module

    watches = []
    for feed, settings in mapping(value, key).items():
        path = f"{key}.{feed}"
        if feed not in FEEDS:
            raise ConfigError(
                f"Config key '{path}' names no feed (known feeds: {', '.join(sorted(FEEDS))})."
            )
        settings = mapping(settings, path)
        only_keys(settings, {"deadline", "grace", "days", "volume_band"}, path)
        watch = DropWatch(str(feed))
        if settings.get("deadline") is not None:
            watch = dataclasses.replace(
                watch, deadline=parse_clock(settings["deadline"], f"{path}.deadline")
            )
        if settings.get("grace") is not None:
            watch = dataclasses.replace(
                watch, grace=parse_duration(settings["grace"], f"{path}.grace")
            )
        if settings.get("days") is not None:
            watch = dataclasses.replace(
                watch, days=choice(settings["days"], DROP_DAYS, f"{path}.days")
            )
        if settings.get("volume_band") is not None:
            watch = dataclasses.replace(
                watch, volume_band=parse_band(settings["volume_band"], f"{path}.volume_band")
            )
        watches.append(watch)
    return tuple(sorted(watches, key=lambda w: w.feed))


def parse_notifications(value: Any, key: str) -> dict[str, Any]:
    settings = mapping(value, key)
    only_keys(settings, {"webhook_url"}, key)
    url = settings.get("webhook_url")
    return {} if url is None else {"webhook_url": parse_webhook(url, f"{key}.webhook_url")}


def parse_webhook(value: Any, key: str) -> str:
    url = parse_text(value, key)
    if not re.match(r"https?://[^\s/]+", url):
        raise ConfigError(f"Config key '{key}' must be an http:// or https:// URL, got {url!r}.")
    return url


def drops_raw(watches: tuple[DropWatch, ...]) -> dict[str, dict[str, Any]]:
    """The watches as the YAML mapping :func:`parse_drops` reads back."""
    return {
        w.feed: {
            "deadline": w.deadline.strftime("%H:%M"),
            "grace": seconds(w.grace),
            "days": w.days,
            "volume_band": list(w.volume_band),
        }
        for w in watches
    }


def legacy_drop(attr: str, parser: Any) -> Any:
    """``drop_deadline`` / ``drop_grace``: the older spelling of ``drops.user_activity``."""
    return lambda value, key: {f"legacy_{attr}": parser(value, key)}


def apply_legacy_drop(values: dict[str, Any]) -> None:
    """Turn ``drop_deadline`` / ``drop_grace`` into the ``user_activity`` drop watch."""
    legacy = {
        name: values.pop(f"legacy_{name}")
        for name in ("deadline", "grace")
        if f"legacy_{name}" in values
    }
    if not legacy:
        return
    drops = values.get("drops", DEFAULT_DROPS)
    if "drops" in values and any(w.feed == "user_activity" for w in drops):
        raise ConfigError(
            "Config keys 'drop_deadline'/'drop_grace' and 'drops.user_activity' both set the"
            " user_activity drop watch; keep only 'drops.user_activity'."
        )
    current = next((w for w in drops if w.feed == "user_activity"), DropWatch("user_activity"))
    others = tuple(w for w in drops if w.feed != "user_activity")
    watches = (dataclasses.replace(current, **legacy), *others)
    values["drops"] = tuple(sorted(watches, key=lambda w: w.feed))
