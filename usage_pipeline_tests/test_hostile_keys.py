"""SPEC §1 and §7 (issue 9 items 1, 2, 5): an object whose key cannot be used safely — a
newline, a backslash or bytes that are not UTF-8 in its name, ``..``, a link leading outside
the inbox, a file the process may not read — is one ``rejected`` ledger row (its key escaped,
its bytes never read: sha256 '') with a one-sentence reason; listing never stops for it, the
good files beside it load, a rerun adds nothing. An S3 object deleted between its listing and
its download is a clear skip, never a traceback."""

from __future__ import annotations

import os
import pathlib
from pathlib import Path

import dagster as dg
import pytest

from usage_pipeline.batch import ingest_batch
from usage_pipeline.config import PipelineConfig
from usage_pipeline.sources import open_source
from usage_pipeline.sources.s3 import S3Source
from usage_pipeline.warehouse.engine import dispose_engines, get_engine
from usage_pipeline_tests.helpers import HEADER, invoke, rows, run

AS_OF = "2026-11-21T06:00:00+00:00"
LEDGER = "source_key, sha256 = '', status, rows_total, rows_loaded, rows_rejected, error"


def body(user: str) -> bytes:
    return f"{HEADER}\nA1,{user},Reports,view,3,2026-11-20T10:00:00Z\n".encode()


def refused(key: str, reason: str) -> tuple:
    return (key, 1, "rejected", 0, 0, 0, f"File {key} is rejected: {reason}.")


CONTROL = "its name holds a control character (the key is recorded with it as \\xNN)"
BACKSLASH = "its name holds a backslash (the key is recorded with it doubled)"
NOT_UTF8 = "its name holds bytes that are not UTF-8 (the key is recorded with them as \\xNN)"
OUTSIDE = "it is a link leading outside the inbox and is not followed"
DOT_DOT = "its key has a '..' or '.' segment, which could lead outside the inbox"


@pytest.fixture
def hostile_inbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two good files (one reached through a link that stays inside the inbox) beside every
    class of unusable key."""
    inbox = tmp_path / "inbox"
    feed = inbox / "user_activity"
    (inbox / "_archive").mkdir(parents=True)  # hidden: never listed itself
    feed.mkdir()
    (tmp_path / "outside").mkdir()
    (feed / "good.csv").write_bytes(body("u1"))
    (inbox / "_archive" / "kept.csv").write_bytes(body("u2"))
    (feed / "inner_link.csv").symlink_to(inbox / "_archive" / "kept.csv")
    (feed / "new\nline.csv").write_bytes(body("u3"))
    (feed / "back\\slash.csv").write_bytes(body("u4"))
    with open(os.fsencode(feed) + b"/bad\xff.csv", "wb") as handle:
        handle.write(body("u5"))
    (tmp_path / "outside" / "secret.csv").write_bytes(body("u6"))
    (feed / "outside_link.csv").symlink_to(tmp_path / "outside" / "secret.csv")
    (inbox / "folder_link").symlink_to(tmp_path / "outside", target_is_directory=True)
    unreadable = feed / "unreadable.csv"
    unreadable.write_bytes(body("u7"))
    unreadable.chmod(0)
    if os.geteuid() == 0:  # root reads any file: deny it the way the OS denies other users
        real_open = pathlib.Path.open

        def denying_open(self: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
            if self.name == unreadable.name:
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, *args, **kwargs)

        monkeypatch.setattr(pathlib.Path, "open", denying_open)
    return inbox


EXPECTED_LEDGER = sorted(
    [
        refused("user_activity/back\\\\slash.csv", BACKSLASH),
        refused("user_activity/bad\\xff.csv", NOT_UTF8),
        ("user_activity/good.csv", 0, "loaded", 1, 1, 0, None),
        ("user_activity/inner_link.csv", 0, "loaded", 1, 1, 0, None),
        refused("user_activity/new\\x0aline.csv", CONTROL),
        refused("user_activity/outside_link.csv", OUTSIDE),
        refused("user_activity/unreadable.csv", "it cannot be read (Permission denied)"),
    ]
)


def test_unusable_keys_are_rejected_rows_and_good_files_load(
    hostile_inbox: Path, warehouse_url: str
) -> None:
    config = PipelineConfig(inbox=str(hostile_inbox), warehouse=warehouse_url)
    with dg.DagsterInstance.ephemeral() as instance:
        report = run(config, instance)
        again = run(config, instance)

    assert report.exit_code == 1
    assert sorted((f["file"], f["status"]) for f in report.files) == [
        (key, status) for key, _, status, *_ in EXPECTED_LEDGER
    ]
    assert rows(warehouse_url, "ingested_files", columns=LEDGER) == EXPECTED_LEDGER
    assert rows(warehouse_url, "user_activity_daily", columns="user_id, count") == [
        ("u1", 3),
        ("u2", 3),
    ]
    assert again.files == []  # the refusals are recorded once
    assert rows(warehouse_url, "ingested_files", columns=LEDGER) == EXPECTED_LEDGER
    # sensed afresh (a new sensor cursor), each refusal finds its row and adds nothing
    keys = [key for key, *_ in EXPECTED_LEDGER]
    outcomes = list(
        ingest_batch(get_engine(warehouse_url), open_source(str(hostile_inbox)), keys, config)
    )
    assert all(o.already_done for o in outcomes)
    assert rows(warehouse_url, "ingested_files", columns=LEDGER) == EXPECTED_LEDGER
    # the link leading outside was never followed: nothing was quarantined from outside
    quarantine = hostile_inbox.parent / "quarantine"
    assert not quarantine.exists()


def test_a_key_with_dot_dot_given_to_a_run_is_refused_unread(
    hostile_inbox: Path, warehouse_url: str
) -> None:
    """A key named in a run's config (the Dagster launchpad) is checked like a listed one:
    nothing outside the inbox is read, not even its metadata."""
    config = PipelineConfig(inbox=str(hostile_inbox), warehouse=warehouse_url)
    source = open_source(str(hostile_inbox))
    keys = ["user_activity/../../outside/secret.csv", "/etc/passwd", "user_activity/good.csv"]

    outcomes = list(ingest_batch(get_engine(warehouse_url), source, keys, config))

    assert [(o.source_key, o.status, o.sha256 == "") for o in outcomes] == [
        ("user_activity/../../outside/secret.csv", "rejected", True),
        ("/etc/passwd", "rejected", True),
        ("user_activity/good.csv", "loaded", False),
    ]
    assert rows(warehouse_url, "ingested_files", columns="source_key, size_bytes, error") == [
        (
            "/etc/passwd",
            0,
            "File /etc/passwd is rejected: its key is an absolute path and is refused.",
        ),
        (
            "user_activity/../../outside/secret.csv",
            0,
            f"File user_activity/../../outside/secret.csv is rejected: {DOT_DOT}.",
        ),
        ("user_activity/good.csv", len(body("u1")), None),
    ]


def test_cli_run_prints_sentences_not_tracebacks(project: Path) -> None:
    dispose_engines()  # engines are cached per URL: forget other tests' data/warehouse.db
    feed = project / "data" / "inbox" / "user_activity"
    feed.mkdir()
    (feed / "usage_2026-11-20.csv").write_bytes(body("u1"))
    (feed / "new\nline.csv").write_bytes(body("u2"))
    with open(os.fsencode(feed) + b"/bad\xff.csv", "wb") as handle:
        handle.write(body("u3"))
    (project / "elsewhere.csv").write_bytes(body("u4"))
    (feed / "link.csv").symlink_to(project / "elsewhere.csv")

    result = invoke("run", "--as-of", AS_OF)

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "Stack Trace" not in result.output
    lines = result.output.splitlines()
    for key, reason in (
        ("user_activity/bad\\xff.csv", NOT_UTF8),
        ("user_activity/link.csv", OUTSIDE),
        ("user_activity/new\\x0aline.csv", CONTROL),
    ):
        assert f"  rejected   {key}  rows 0/0 loaded" in lines
        assert f"             File {key} is rejected: {reason}." in lines
    assert "  loaded     user_activity/usage_2026-11-20.csv  rows 1/1 loaded" in lines


# --- S3 ----------------------------------------------------------------------------------


def _s3_config(bucket: str, endpoint: str, url: str) -> PipelineConfig:
    return PipelineConfig(
        inbox=f"s3://{bucket}/drops/inbox", warehouse=url, s3_endpoint_url=endpoint
    )


def test_s3_unusable_keys_are_rejected_rows(
    s3_bucket, s3_endpoint: str, warehouse_url: str
) -> None:  # type: ignore[no-untyped-def]
    client, bucket = s3_bucket
    for key, user in (
        ("user_activity/good.csv", "u1"),
        ("user_activity/back\\slash.csv", "u2"),
        ("user_activity/ctl\x01.csv", "u3"),
        ("user_activity/../up.csv", "u4"),
    ):
        client.put_object(Bucket=bucket, Key=f"drops/inbox/{key}", Body=body(user))

    with dg.DagsterInstance.ephemeral() as instance:
        report = run(_s3_config(bucket, s3_endpoint, warehouse_url), instance)

    assert report.exit_code == 1
    assert rows(warehouse_url, "ingested_files", columns=LEDGER) == [
        refused("user_activity/../up.csv", DOT_DOT),
        refused("user_activity/back\\\\slash.csv", BACKSLASH),
        refused("user_activity/ctl\\x01.csv", CONTROL),
        ("user_activity/good.csv", 0, "loaded", 1, 1, 0, None),
    ]
    assert rows(warehouse_url, "user_activity_daily", columns="user_id, count") == [("u1", 3)]
    listed = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert not [key for key in listed if "quarantine" in key]  # refused objects are not copied


@pytest.fixture
def vanishing(s3_bucket, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Three objects; ``late.csv`` is deleted right after the run checked it, before its
    download: the worst moment for a concurrent delete."""
    client, bucket = s3_bucket
    for name, user in (("early.csv", "u1"), ("late.csv", "u2"), ("zz.csv", "u3")):
        client.put_object(Bucket=bucket, Key=f"drops/inbox/user_activity/{name}", Body=body(user))
    real_stat = S3Source.stat

    def stat_then_delete(self: S3Source, key: str):  # type: ignore[no-untyped-def]
        found = real_stat(self, key)
        if key.endswith("late.csv"):
            client.delete_object(Bucket=bucket, Key=f"drops/inbox/{key}")
        return found

    monkeypatch.setattr(S3Source, "stat", stat_then_delete)
    return client, bucket


GONE = "File user_activity/late.csv left the inbox before it was read; nothing was recorded."


def test_s3_object_deleted_before_download_is_a_clear_skip(
    vanishing, s3_endpoint: str, warehouse_url: str
) -> None:  # type: ignore[no-untyped-def]
    _client, bucket = vanishing
    with dg.DagsterInstance.ephemeral() as instance:
        report = run(_s3_config(bucket, s3_endpoint, warehouse_url), instance)

    assert [(f["file"], f["status"], f["error"]) for f in report.files] == [
        ("user_activity/early.csv", "loaded", None),
        ("user_activity/late.csv", "missing", GONE),
        ("user_activity/zz.csv", "loaded", None),
    ]
    assert report.failed_runs == []
    assert rows(warehouse_url, "ingested_files", columns="source_key, status") == [
        ("user_activity/early.csv", "loaded"),
        ("user_activity/zz.csv", "loaded"),
    ]
    assert rows(warehouse_url, "user_activity_daily", columns="user_id, count") == [
        ("u1", 3),
        ("u3", 3),
    ]


def test_cli_output_of_a_vanished_s3_object_has_no_stack_frames(
    vanishing, s3_endpoint: str, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    _client, bucket = vanishing
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    dispose_engines()

    result = invoke("run", "--inbox", f"s3://{bucket}/drops/inbox", "--as-of", AS_OF)

    assert "Traceback" not in result.output and "Stack Trace" not in result.output
    assert "File " not in result.output.replace(GONE, "")  # the one sentence, once
    assert f"             {GONE}" in result.output.splitlines()
    assert result.exit_code == 0  # every file still in the inbox loaded
