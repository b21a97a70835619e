"""Pick the source implementation for an inbox URI."""

from __future__ import annotations

from usage_pipeline.sources.base import FileSource


def open_source(inbox: str, s3_endpoint_url: str | None = None) -> FileSource:
    """A :class:`FileSource` for a folder path or an ``s3://bucket/prefix`` URI."""
    if inbox.startswith("s3://"):
        import boto3

        from usage_pipeline.sources.s3 import S3Source

        client = (
            boto3.client("s3", endpoint_url=s3_endpoint_url)
            if s3_endpoint_url
            else boto3.client("s3")
        )
        return S3Source(inbox, client)
    from usage_pipeline.sources.local import LocalFolderSource

    return LocalFolderSource(inbox)
