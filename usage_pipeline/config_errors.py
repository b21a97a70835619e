"""Pydantic validation errors as the one-sentence configuration errors users read: the error's
location becomes the dotted key path (``imports.crm.mappings[0].type``)."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from usage_pipeline.config_values import ConfigError


def _strip(annotation: Any) -> Any:
    """``X`` of ``Annotated[X, ...]`` and ``X | None``."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, UnionType):
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        else:
            return annotation


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> Any:
    """The model (or type) found at ``loc`` below ``root``."""
    node: Any = root
    for part in loc:
        node = _strip(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            if part not in node.model_fields:
                return None
            node = node.model_fields[part].annotation
        else:  # a mapping's name or a list's index
            node = get_args(node)[-1] if get_args(node) else None
    return _strip(node)


def key_path(loc: tuple[Any, ...]) -> str:
    """``('imports', 'crm', 'mappings', 0, 'type')`` -> ``imports.crm.mappings[0].type``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def config_error(exc: ValidationError, root: type[BaseModel]) -> ConfigError:
    """The first error of ``exc`` (raised validating ``root``) as one sentence naming its key
    path: a rule's own sentence, an unknown key with the keys known there, or the rule's
    reason after ``Config key '<path>'``."""
    errors = exc.errors()
    # An unknown key is named first (it often explains the errors beside it: a typo).
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc, cause = tuple(error["loc"]), (error.get("ctx") or {}).get("error")
    path = key_path(loc)
    if isinstance(cause, ConfigError):
        return ConfigError(str(cause))
    if error["type"] == "extra_forbidden":
        model = _model_at(root, loc[:-1])
        known = ", ".join(sorted(model.model_fields)) if model is not None else ""
        return ConfigError(f"Unknown config key '{path}' (known keys: {known}).")
    if isinstance(cause, ValueError):
        reason = str(cause)
    elif error["type"] in ("model_type", "dict_type", "model_attributes_type"):
        reason = "must be a mapping of names to settings."
    else:
        message = str(error["msg"])
        reason = f"is invalid ({message[0].lower()}{message[1:]}), got {error['input']!r}."
    if not path:
        return ConfigError(f"The configuration is invalid: {reason}")
    return ConfigError(f"Config key '{path}' {reason}")
