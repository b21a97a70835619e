"""File sources: where drops are listed and read from (local folder or S3)."""

from usage_pipeline.sources.base import (
    FileSource,
    SourceObject,
    SourceUnavailableError,
    UnsafeKeyError,
    check_key,
    is_ignored,
    sha256_file,
)
from usage_pipeline.sources.factory import open_source

__all__ = [
    "FileSource",
    "SourceObject",
    "SourceUnavailableError",
    "UnsafeKeyError",
    "check_key",
    "is_ignored",
    "open_source",
    "sha256_file",
]
