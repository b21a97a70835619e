"""The schema of the ``events`` section: throttle, floor date and the imports of existing
tables (``events.imports.<name>``, one per folder under ``events/``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from usage_pipeline.config_drops import Duration, Section
from usage_pipeline.config_types import AlsoEvent, EventImportConfig, EventsConfig
from usage_pipeline.config_values import as_timedelta, check_day, check_mapping, check_text

EVENT_FORMS = "an event name (event: Signed Up) or a column and its value map (event: {column:"
EVENT_FORMS += " type, names: {signup: Signed Up}})"


def _column(value: Any) -> str:
    """A column name as a normalised header spells it (trimmed, lower case)."""
    return check_text(value).lower()


def _renames(value: Any) -> dict[str, str]:
    """``{column: property}``: both trimmed and lower-cased (property keys follow the plain
    feed's rule), no column twice, no two columns renamed to one property."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping of column names to property names, got {value!r}.")
    renames: dict[str, str] = {}
    for column, key in value.items():
        texts = (column, key)
        if not all(isinstance(t, str) and t.strip() for t in texts):
            raise ValueError(f"must map column names to property names, got {column!r}: {key!r}.")
        column, key = _column(column), _column(key)
        if column in renames:
            raise ValueError(f"names column {column!r} twice.")
        other = next((c for c, k in renames.items() if k == key), None)
        if other is not None:
            raise ValueError(f"renames columns {other!r} and {column!r} both to property {key!r}.")
        renames[column] = key
    return renames


def _names(value: Any) -> dict[str, str]:
    """``{value: event name}``: values trimmed (whole numbers read as text), non-empty."""
    if not isinstance(value, Mapping) or not value:
        raise ValueError(
            "must be a non-empty mapping of column values to event names"
            f" (names: {{signup: Signed Up}}), got {value!r}."
        )
    names: dict[str, str] = {}
    for cell, event in value.items():
        if isinstance(cell, bool) or not isinstance(cell, (str, int)) or not str(cell).strip():
            raise ValueError(f"maps {cell!r}, which is not a column value (text or a number).")
        if not isinstance(event, str) or not event.strip():
            raise ValueError(f"maps {cell!r} to {event!r}, which is not an event name.")
        cell = str(cell).strip()
        if cell in names:
            raise ValueError(f"maps the value {cell!r} twice.")
        names[cell] = event.strip()
    return names


class EventSettings(Section):
    """The row's event: a fixed ``name`` (``event: Signed Up`` is short for ``event: {name:
    Signed Up}``), or the ``column`` whose values ``names`` maps to event names."""

    name: Annotated[str | None, BeforeValidator(check_text)] = None
    column: Annotated[str | None, BeforeValidator(_column)] = None
    names: Annotated[dict[str, str] | None, BeforeValidator(_names)] = None

    @model_validator(mode="after")
    def _one_form(self) -> EventSettings:
        if self.name is not None and (self.column or self.names) is not None:
            raise ValueError(f"gives both a fixed name and a column: give {EVENT_FORMS}.")
        if self.name is None and (self.column is None or self.names is None):
            raise ValueError(f"needs both column and names: give {EVENT_FORMS}.")
        return self


def _event(value: Any) -> Any:
    """``event``: text is the fixed name; a mapping is checked by :class:`EventSettings`."""
    if isinstance(value, str):
        return {"name": value}
    if value is None:
        raise ValueError(f"is missing: give {EVENT_FORMS}.")
    if not isinstance(value, Mapping):
        raise ValueError(f"must be {EVENT_FORMS}, got {value!r}.")
    return value


Renames = Annotated[dict[str, str] | None, BeforeValidator(_renames)]


class AlsoSettings(Section):
    event: Annotated[str, BeforeValidator(check_text)] = Field(None, validate_default=True)
    properties: Renames = None


def _also(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"must be a list of {{event: ..., properties: {{...}}}}, got {value!r}.")
    return value


class EventImportSettings(Section):
    identity: Annotated[str, BeforeValidator(_column)] = Field(None, validate_default=True)
    timestamp: Annotated[str, BeforeValidator(_column)] = Field(None, validate_default=True)
    event: Annotated[EventSettings, BeforeValidator(_event)] = Field(None, validate_default=True)
    properties: Renames = None
    also: Annotated[list[AlsoSettings] | None, BeforeValidator(_also)] = None

    @model_validator(mode="after")
    def _distinct(self) -> EventImportSettings:
        """The key columns differ; the events of one row have distinct names (one row never
        makes one (identity, event, timestamp) twice)."""
        keys = {"identity": self.identity, "timestamp": self.timestamp}
        if self.event.column is not None:
            keys["event"] = self.event.column
        for role, column in keys.items():
            first = next(r for r, c in keys.items() if c == column)
            if first != role:
                raise ValueError(
                    f"uses column {column!r} as both its {first} and its {role} column: they"
                    " must differ."
                )
        made = {"event": self.row_events()}
        for index, also in enumerate(self.also or ()):
            clash = next((where for where, names in made.items() if also.event in names), None)
            if clash:
                raise ValueError(
                    f"gives a row two events named {also.event!r} ({clash} and"
                    f" also[{index}].event): the events of one row need distinct names."
                )
            made[f"also[{index}].event"] = {also.event}
        return self

    def row_events(self) -> set[str]:
        """The names the row's own event may take."""
        return {self.event.name} if self.event.name else set((self.event.names or {}).values())

    def resolve(self, name: str) -> EventImportConfig:
        return EventImportConfig(
            name=name,
            identity=self.identity,
            timestamp=self.timestamp,
            event=self.event.name,
            event_column=self.event.column,
            names=tuple((self.event.names or {}).items()),
            properties=tuple((self.properties or {}).items()),
            also=tuple(
                AlsoEvent(a.event, tuple((a.properties or {}).items())) for a in self.also or ()
            ),
        )


class EventsSettings(Section):
    throttle: Annotated[dict[str, Duration] | None, BeforeValidator(check_mapping)] = None
    floor_date: Annotated[str | None, BeforeValidator(check_day)] = None
    imports: Annotated[dict[str, EventImportSettings] | None, BeforeValidator(check_mapping)] = None

    def resolve(self) -> EventsConfig:
        values: dict[str, Any] = {
            "throttle": tuple((n, as_timedelta(w)) for n, w in (self.throttle or {}).items()),
            "imports": tuple(i.resolve(name) for name, i in (self.imports or {}).items()),
        }
        if self.floor_date:
            values["floor_date"] = date.fromisoformat(self.floor_date)
        return EventsConfig(**values)
