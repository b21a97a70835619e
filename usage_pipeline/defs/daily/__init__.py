"""Daily-partitioned rollups and snapshots, their schedule and the follow-up sensor."""
