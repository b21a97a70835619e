"""The code location: ``dagster dev`` (via workspace.yaml) loads :func:`defs`."""

from __future__ import annotations

import dagster as dg

from usage_pipeline.config import PipelineConfig, load_config
from usage_pipeline.defs.billing import billing_periods, build_billing
from usage_pipeline.defs.daily import build_daily_definitions
from usage_pipeline.defs.drop_watch import build_drop_watch
from usage_pipeline.defs.file_actions import reprocess_file_job, revert_file_job
from usage_pipeline.defs.ingestion import inbox_file, ingest_files_job
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.defs.run_end import build_end_of_run_job
from usage_pipeline.defs.sensors import build_followup_sensor, inbox_sensor

# Tables that ingestion itself rewrites (in the file's transaction); each ingestion run reports
# a materialisation of the ones it touched.
TABLE_ASSETS = [
    dg.AssetSpec(name, group_name=group, deps=["inbox_file"], description=description)
    for name, group, description in (
        ("accounts", "accounts", "Account directory: latest file wins per account."),
        (
            "account_attribute_history",
            "accounts",
            "Attribute values per account with valid_from/valid_to; a row per change.",
        ),
        (
            "product_usage",
            "product_usage",
            "Product-usage dimension values per account and snapshot period.",
        ),
        ("usage_events", "billing", "Billable usage events, one per event_ref."),
        ("events", "behaviour", "Back-dated behaviour events kept after throttling."),
    )
]


def build_definitions(config: PipelineConfig) -> dg.Definitions:
    """Every asset, check, job, sensor and schedule for one resolved configuration."""
    daily = build_daily_definitions(config.timezone)
    drop_assets, drop_job, drop_schedules = build_drop_watch(config)
    billing_job, billing_schedule = build_billing(config)
    rollup_job, snapshot_job = daily.jobs
    end_of_run_job = build_end_of_run_job(drop_job, billing_job)
    return dg.Definitions(
        assets=[
            inbox_file,
            *drop_assets,
            *daily.assets,
            *TABLE_ASSETS,
            billing_periods,
        ],
        jobs=[
            ingest_files_job,
            *daily.jobs,
            drop_job,
            billing_job,
            end_of_run_job,
            revert_file_job,
            reprocess_file_job,
        ],
        sensors=[inbox_sensor, build_followup_sensor(rollup_job, snapshot_job)],
        schedules=[*daily.schedules, *drop_schedules, billing_schedule],
        resources={"pipeline": PipelineResource.from_config(config)},
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Load settings (file + environment) when Dagster loads the code location."""
    return build_definitions(load_config())
