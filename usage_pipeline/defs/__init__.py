"""Dagster definitions: assets, checks, jobs, sensors and schedules."""
