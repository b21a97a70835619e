"""Dagster definitions by domain: ``ingestion`` (inbox files), ``daily`` (rollups and
snapshots), ``watch`` (drop watch, billing periods, the end-of-run job) and ``files``
(revert / reprocess), over the shared ``resources`` and run ``tags``."""
