"""The one run ``usage-pipeline run`` ends with: the assets that move on with the clock,
and, when they cover one stretch of days, the night's rollups and snapshots.

The drop watch and ``billing_periods`` are refreshed together, in a single Dagster run, as
of the run's ``--as-of`` time, whether or not anything loaded. On a usual night the same
run also rolls up the day the files touched and builds its snapshots (Dagster orders them
by their dependencies), so a night is two runs: the ingestion batch and this one. The
daemon keeps its own jobs, sensors and schedules (``rollup_job``, ``snapshot_job``,
``drop_watch_job``, ``billing_periods_job``).
"""

from __future__ import annotations

from typing import Any

import dagster as dg

END_OF_RUN_JOB = "end_of_run_job"


def build_end_of_run_job(*jobs: Any, run_tags: dict[str, str]) -> Any:
    """One job selecting every asset of ``jobs`` (asset jobs of this code location)."""
    selection = jobs[0].selection
    for job in jobs[1:]:
        selection = selection | job.selection
    return dg.define_asset_job(
        END_OF_RUN_JOB,
        selection=selection,
        run_tags=run_tags,
        description="What `usage-pipeline run` ends with, in one run: the drop watch and the"
        " billing period states as of the run's as-of time, with the night's rollups and"
        " snapshots when they cover one stretch of days.",
    )
