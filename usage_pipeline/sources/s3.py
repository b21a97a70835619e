"""An S3 inbox (``s3://bucket/prefix/``), any S3 API endpoint (AWS, MinIO, moto)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from usage_pipeline.sources.base import (
    FileSource,
    SourceObject,
    SourceUnavailableError,
    check_key,
    is_ignored,
)
from usage_pipeline.sources.keys import escape_key, key_problem, unescape_key

QUARANTINE_FOLDER = "quarantine/"
GONE = ("404", "NoSuchKey", "NotFound")
DENIED = ("403", "AccessDenied", "Forbidden")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b/")`` (prefix always ends with ``/`` or is empty)."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"Inbox {uri!r} is not an s3://bucket/prefix URI.")
    prefix = parsed.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return parsed.netloc, prefix


class S3Source(FileSource):
    """Objects under a bucket prefix; quarantine is a ``quarantine/`` prefix beside it."""

    def __init__(self, uri: str, client: Any) -> None:
        self.uri = uri
        self.bucket, self.prefix = split_s3_uri(uri)
        self.client = client
        parent = self.prefix.rstrip("/").rpartition("/")[0]
        self.quarantine_prefix = f"{parent}/{QUARANTINE_FOLDER}" if parent else QUARANTINE_FOLDER

    def _object(self, key: str, size: int, modified: Any, etag: str) -> SourceObject:
        """``key`` is the escaped key; an unsafe one carries its problem."""
        return SourceObject(
            version=etag.strip('"'),
            key=key,
            size=int(size),
            last_modified=modified.astimezone(timezone.utc),
            problem=key_problem(unescape_key(key)),
        )

    def list_objects(self) -> Iterator[SourceObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            pages = list(paginator.paginate(Bucket=self.bucket, Prefix=self.prefix))
        except (BotoCoreError, ClientError) as exc:
            raise SourceUnavailableError(f"The inbox {self.uri} cannot be listed: {exc}.") from exc
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) :]
                if not key or key.endswith("/") or is_ignored(key):
                    continue
                if not self.prefix and key.startswith(QUARANTINE_FOLDER):
                    continue
                modified, etag = item["LastModified"], item.get("ETag", "")
                yield self._object(escape_key(key), item["Size"], modified, etag)

    def stat(self, key: str) -> SourceObject | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.prefix + unescape_key(key))
        except ClientError as exc:
            if _code(exc) in GONE:
                return None
            raise
        return self._object(key, head["ContentLength"], head["LastModified"], head.get("ETag", ""))

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """The object's bytes in a temporary file. An object deleted since it was listed
        raises FileNotFoundError, one the credentials may not read PermissionError."""
        with tempfile.TemporaryDirectory(prefix="usage_pipeline_s3_") as folder:
            path = Path(folder) / "object"
            try:
                with path.open("wb") as handle:
                    self.client.download_fileobj(self.bucket, self.prefix + check_key(key), handle)
            except ClientError as exc:
                if _code(exc) in GONE:
                    raise FileNotFoundError(f"s3://{self.bucket}/{self.prefix}{key}") from exc
                if _code(exc) in DENIED:
                    raise PermissionError(13, "Access Denied", key) from exc
                raise
            yield path

    def write_quarantine(self, key: str, files: dict[str, Path]) -> str:
        target = self.quarantine_prefix + check_key(key)
        for suffix, path in files.items():
            self.client.upload_file(str(path), self.bucket, target + suffix)
        return f"s3://{self.bucket}/{target}{next(iter(files))}"
