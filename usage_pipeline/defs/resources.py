"""The one resource every asset uses: resolved settings, warehouse engine, inbox source."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig
from usage_pipeline.sources import FileSource, open_source
from usage_pipeline.warehouse.engine import get_engine


class PipelineResource(dg.ConfigurableResource):
    """Every setting, resolved once when the code location loads (file, environment, CLI
    flags) and carried as JSON, so runs never re-read the environment."""

    config_json: str

    @classmethod
    def from_config(cls, config: PipelineConfig) -> PipelineResource:
        return cls(config_json=config.to_json())

    def settings(self) -> PipelineConfig:
        return PipelineConfig.from_json(self.config_json)

    def engine(self) -> sa.Engine:
        return get_engine(self.settings().warehouse)

    def source(self) -> FileSource:
        settings = self.settings()
        return open_source(settings.inbox, settings.s3_endpoint_url)
