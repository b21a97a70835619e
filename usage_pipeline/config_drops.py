"""The schema of the ``drops`` section (per-feed drop watch) and of its older spelling
``drop_deadline`` / ``drop_grace``."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator

from usage_pipeline.config_types import DEFAULT_DROPS, DROP_DAYS, DropWatch
from usage_pipeline.config_values import (
    ConfigError,
    as_time,
    as_timedelta,
    check_band,
    check_clock,
    check_duration,
    check_mapping,
    one_of,
)


class Section(BaseModel):
    """A mapping of settings: unknown keys are errors, a null value means "not set"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_unset(cls, data: Any) -> Any:
        if data is None:
            return {}
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


Clock = Annotated[str | None, BeforeValidator(check_clock)]
Duration = Annotated[str | None, BeforeValidator(check_duration)]


class DropSettings(Section):
    """``drops.<feed>``: unset keys keep :class:`DropWatch`'s defaults."""

    deadline: Clock = None
    grace: Duration = None
    days: Annotated[str | None, BeforeValidator(one_of(*DROP_DAYS))] = None
    volume_band: Annotated[list[float] | None, BeforeValidator(check_band)] = None

    def watch(self, feed: str) -> DropWatch:
        values: dict[str, Any] = {"days": self.days}
        if self.deadline is not None:
            values["deadline"] = as_time(self.deadline)
        if self.grace is not None:
            values["grace"] = as_timedelta(self.grace)
        if self.volume_band is not None:
            values["volume_band"] = tuple(self.volume_band)
        return DropWatch(feed, **{k: v for k, v in values.items() if v is not None})


def check_drop_feeds(value: Any) -> dict[str, Any]:
    """``drops``: a mapping whose keys are feeds."""
    from usage_pipeline.feed_headers import FEED_NAMES  # it imports the configuration

    drops = check_mapping(value)
    for feed in drops:
        if feed not in FEED_NAMES:
            known = ", ".join(FEED_NAMES)
            raise ConfigError(f"Config key 'drops.{feed}' names no feed (known feeds: {known}).")
    return drops


def drop_watches(
    drops: dict[str, DropSettings] | None, deadline: str | None, grace: str | None
) -> tuple[DropWatch, ...]:
    """The watches of ``drops`` (default: user_activity), with the legacy ``drop_deadline`` /
    ``drop_grace`` applied to the user_activity watch."""
    watches = DEFAULT_DROPS if drops is None else tuple(s.watch(f) for f, s in drops.items())
    legacy: dict[str, Any] = {}
    if deadline is not None:
        legacy["deadline"] = as_time(deadline)
    if grace is not None:
        legacy["grace"] = as_timedelta(grace)
    if legacy:
        if drops is not None and "user_activity" in drops:
            raise ConfigError(
                "Config keys 'drop_deadline'/'drop_grace' and 'drops.user_activity' both set the"
                " user_activity drop watch; keep only 'drops.user_activity'."
            )
        current = next((w for w in watches if w.feed == "user_activity"), None)
        others = tuple(w for w in watches if w.feed != "user_activity")
        current = current or DropWatch("user_activity")
        watches = (dataclasses.replace(current, **legacy), *others)
    return tuple(sorted(watches, key=lambda w: w.feed))
