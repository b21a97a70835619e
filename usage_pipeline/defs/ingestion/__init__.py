"""Ingestion: the inbox sensor, the ``inbox_file`` batch asset, its checks, and the tables
that ingestion rewrites."""
