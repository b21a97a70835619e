"""The one resource every asset uses: resolved settings, warehouse engine, inbox source."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa

from usage_pipeline.config import PipelineConfig, load_config
from usage_pipeline.sources import FileSource, open_source
from usage_pipeline.warehouse.engine import get_engine


class PipelineResource(dg.ConfigurableResource):
    """Settings resolved when the code location loads (file, environment, CLI flags).

    The YAML file supplies the remaining keys; the environment is not read again.
    """

    config_file: str | None = None
    inbox: str
    warehouse: str
    timezone: str
    s3_endpoint_url: str | None = None

    @classmethod
    def from_config(cls, config: PipelineConfig) -> PipelineResource:
        return cls(
            config_file=config.source_path,
            inbox=config.inbox,
            warehouse=config.warehouse,
            timezone=config.timezone,
            s3_endpoint_url=config.s3_endpoint_url,
        )

    def settings(self) -> PipelineConfig:
        return load_config(
            self.config_file,
            environ={},
            inbox=self.inbox,
            warehouse=self.warehouse,
            timezone=self.timezone,
            s3_endpoint_url=self.s3_endpoint_url,
        )

    def engine(self) -> sa.Engine:
        return get_engine(self.warehouse)

    def source(self) -> FileSource:
        return open_source(self.inbox, self.s3_endpoint_url)
