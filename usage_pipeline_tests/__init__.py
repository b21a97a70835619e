"""Tests for usage_pipeline (real SQLite, PostgreSQL and S3-over-HTTP services)."""
