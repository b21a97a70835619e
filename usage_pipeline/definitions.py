"""The code location: ``dagster dev`` (via workspace.yaml) loads :func:`defs`."""

from __future__ import annotations

import dagster as dg

from usage_pipeline.config import PipelineConfig, load_config
from usage_pipeline.defs.daily.assets import build_daily_definitions
from usage_pipeline.defs.daily.sensor import build_followup_sensor
from usage_pipeline.defs.files.actions import build_file_jobs
from usage_pipeline.defs.ingestion.assets import build_ingest_job, inbox_file
from usage_pipeline.defs.ingestion.sensor import inbox_sensor
from usage_pipeline.defs.ingestion.tables import TABLE_ASSETS
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.defs.tags import INBOX_TAG
from usage_pipeline.defs.watch.billing import billing_periods, build_billing
from usage_pipeline.defs.watch.drop_watch import build_drop_watch
from usage_pipeline.defs.watch.run_end import build_end_of_run_job
from usage_pipeline.instance import inbox_identity


def build_definitions(config: PipelineConfig) -> dg.Definitions:
    """Every asset, check, job, sensor and schedule for one resolved configuration. Every
    run is tagged with the inbox it serves (one Dagster instance per inbox)."""
    run_tags = {INBOX_TAG: inbox_identity(config.inbox)}
    daily = build_daily_definitions(config.timezone, run_tags)
    drop_assets, drop_job, drop_schedules = build_drop_watch(config, run_tags)
    billing_job, billing_schedule = build_billing(config, run_tags)
    rollup_job, snapshot_job = daily.jobs
    return dg.Definitions(
        assets=[inbox_file, *drop_assets, *daily.assets, *TABLE_ASSETS, billing_periods],
        jobs=[
            build_ingest_job(run_tags),
            *daily.jobs,
            drop_job,
            billing_job,
            build_end_of_run_job(drop_job, billing_job, *daily.jobs, run_tags=run_tags),
            *build_file_jobs(run_tags),
        ],
        sensors=[inbox_sensor, build_followup_sensor(rollup_job, snapshot_job)],
        schedules=[*daily.schedules, *drop_schedules, billing_schedule],
        resources={"pipeline": PipelineResource.from_config(config)},
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Load settings (file + environment) when Dagster loads the code location."""
    return build_definitions(load_config())
