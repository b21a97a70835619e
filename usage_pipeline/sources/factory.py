"""Pick the source implementation for an inbox URI."""

from __future__ import annotations

from typing import Any

from usage_pipeline.sources.base import FileSource

# An unreachable endpoint or missing credentials must be told in seconds, not after boto's
# default minutes of retries: short connect/read timeouts, one retry, one metadata probe.
CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 10
ATTEMPTS = 2


def s3_client(endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client with bounded timeouts and retries."""
    import boto3
    import botocore.session
    from botocore.config import Config

    core = botocore.session.get_session()
    core.set_config_variable("metadata_service_timeout", 1)
    core.set_config_variable("metadata_service_num_attempts", 1)
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"total_max_attempts": ATTEMPTS, "mode": "standard"},
    )
    session = boto3.session.Session(botocore_session=core)
    return session.client("s3", endpoint_url=endpoint_url or None, config=config)


def open_source(inbox: str, s3_endpoint_url: str | None = None) -> FileSource:
    """A :class:`FileSource` for a folder path or an ``s3://bucket/prefix`` URI."""
    if inbox.startswith("s3://"):
        from usage_pipeline.sources.s3 import S3Source

        return S3Source(inbox, s3_client(s3_endpoint_url))
    from usage_pipeline.sources.local import LocalFolderSource

    return LocalFolderSource(inbox)
