"""The one resource every asset uses: the resolved settings as typed resource config, the
warehouse engine and the inbox source.

The settings' Dagster config schema is derived from the file schema
(:class:`~usage_pipeline.config_schema.PipelineSettings`), so the UI shows every setting
under its file key and a new key needs no change here.
"""

from __future__ import annotations

from functools import cache, cached_property
from types import UnionType
from typing import Annotated, Any, Optional, Union, get_args, get_origin

import dagster as dg
import pydantic
import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig, parse_config
from usage_pipeline.config_schema import PipelineSettings
from usage_pipeline.sources import FileSource, open_source
from usage_pipeline.warehouse.engine import get_engine


@cache
def dagster_config(model: type[pydantic.BaseModel]) -> type[dg.Config]:
    """``model`` as a :class:`dagster.Config` with the same keys and value types (the values
    it receives are already valid, so its rules are not repeated)."""
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation = _config_type(field.annotation)
        fields[name] = (Optional[annotation], None)  # noqa: UP045 (a runtime type)
    return pydantic.create_model(model.__name__, __base__=dg.Config, **fields)


def _config_type(annotation: Any) -> Any:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _config_type(args[0])
    if origin in (Union, UnionType):
        return _config_type(next(a for a in args if a is not type(None)))
    if origin is dict:
        return dict[str, _config_type(args[1])]  # type: ignore[misc]
    if origin is list:
        return list[_config_type(args[0])]  # type: ignore[misc]
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return dagster_config(annotation)
    return annotation


SettingsConfig = dagster_config(PipelineSettings)


class PipelineResource(dg.ConfigurableResource):
    """Every setting, resolved once when the code location loads (file, environment, CLI
    flags), so runs never re-read the environment."""

    settings_file: str | None = None  # the YAML file the settings came from, if any
    resolved: SettingsConfig  # type: ignore[valid-type]

    @classmethod
    def from_config(cls, config: PipelineConfig) -> PipelineResource:
        settings = PipelineSettings.model_validate(config.to_raw())
        return cls(
            settings_file=config.source_path,
            resolved=SettingsConfig.model_validate(settings.model_dump()),
        )

    @cached_property
    def _settings(self) -> PipelineConfig:
        return parse_config(self.resolved.model_dump(), self.settings_file)

    def settings(self) -> PipelineConfig:
        return self._settings

    def engine(self) -> sa.Engine:
        return get_engine(self.settings().warehouse)

    def source(self) -> FileSource:
        settings = self.settings()
        return open_source(settings.inbox, settings.s3_endpoint_url)
