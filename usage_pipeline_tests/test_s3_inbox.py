"""SPEC §1 over S3 (moto's server over HTTP): the whole pipeline reads an s3:// inbox, rejected
files are copied with their errors CSV to the ``quarantine/`` prefix beside the inbox, source
objects are never touched, and an unreachable endpoint is exit status 2 with one sentence."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from usage_pipeline.cli import main
from usage_pipeline.config import PipelineConfig
from usage_pipeline.sources import open_source
from usage_pipeline_tests.helpers import HEADER, rows, run

GOOD_KEY = "user_activity/usage_2026-11-20.csv"
BAD_KEY = "user_activity/bad_2026-11-20.csv"
GOOD = (
    f"{HEADER}\n"
    "A1,u1,Reports,view,3,2026-11-19T09:00:00Z\n"
    "A1,u1,Reports,view,2,2026-11-20T09:00:00Z\n"
    "A1,u2,Admin,login,1,2026-11-20T10:00:00Z\n"
    "A2,u9,Reports,export,4,2026-11-20T23:30:00Z\n"
).encode()
BAD = b"account_id,user_id,module,activity,timestamp\nA1,u1,Reports,view,2026-11-20T09:00:00Z\n"
BAD_ERRORS = (
    b"account_id,user_id,module,activity,timestamp,row_number,column,error\r\n"
    b",,,,,,,required column count missing\r\n"
)
BAD_ERROR = f"File {BAD_KEY} is rejected: required column count missing."
DAILY = [
    ("2026-11-19", "A1", "u1", "Reports", "view", 3),
    ("2026-11-20", "A1", "u1", "Reports", "view", 2),
    ("2026-11-20", "A1", "u2", "Admin", "login", 1),
    ("2026-11-20", "A2", "u9", "Reports", "export", 4),
]
LEDGER_COLUMNS = (
    "source_key, status, rows_total, rows_loaded, rows_rejected, error, min_day, max_day"
)
LEDGER = [
    (BAD_KEY, "rejected", 0, 0, 0, BAD_ERROR, None, None),
    (GOOD_KEY, "loaded", 4, 4, 0, None, "2026-11-19", "2026-11-20"),
]


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def objects(client, bucket: str, prefix: str = "") -> dict[str, tuple[bytes, object]]:
    """Every object under ``prefix``: key -> (bytes, last modified)."""
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {
        item["Key"]: (
            client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read(),
            item["LastModified"],
        )
        for item in listed
    }


def test_s3_inbox_loads_quarantines_and_leaves_sources_untouched(
    s3_bucket, s3_endpoint: str, sqlite_url: str, instance
) -> None:
    client, bucket = s3_bucket
    client.put_object(Bucket=bucket, Key=f"drops/inbox/{GOOD_KEY}", Body=GOOD)
    client.put_object(Bucket=bucket, Key=f"drops/inbox/{BAD_KEY}", Body=BAD)
    before = objects(client, bucket, "drops/inbox/")
    config = PipelineConfig(
        inbox=f"s3://{bucket}/drops/inbox", warehouse=sqlite_url, s3_endpoint_url=s3_endpoint
    )

    report = run(config, instance)

    assert report.exit_code == 1
    assert [(f["file"], f["status"], f.get("quarantine")) for f in report.files] == [
        (BAD_KEY, "rejected", f"s3://{bucket}/drops/quarantine/{BAD_KEY}"),
        (GOOD_KEY, "loaded", None),
    ]
    assert report.rollup_days == ["2026-11-19", "2026-11-20"]
    assert rows(sqlite_url, "user_activity_daily") == DAILY
    assert rows(sqlite_url, "ingested_files", columns=LEDGER_COLUMNS) == LEDGER
    assert rows(sqlite_url, "rejected_rows") == []
    assert objects(client, bucket, "drops/inbox/") == before
    quarantined = objects(client, bucket, "drops/quarantine/")
    assert {key: body for key, (body, _) in quarantined.items()} == {
        f"drops/quarantine/{BAD_KEY}": BAD,
        f"drops/quarantine/{BAD_KEY}.errors.csv": BAD_ERRORS,
    }
    assert sorted(objects(client, bucket)) == sorted([*before, *quarantined])

    again = run(config, instance)

    assert again.files == [] and again.rollup_days == []
    assert rows(sqlite_url, "ingested_files", columns=LEDGER_COLUMNS) == LEDGER
    assert objects(client, bucket) == {**before, **quarantined}


def test_s3_inbox_at_bucket_root_quarantines_beside_it_and_never_senses_the_quarantine(
    s3_bucket, s3_endpoint: str, sqlite_url: str, instance
) -> None:
    client, bucket = s3_bucket
    client.put_object(Bucket=bucket, Key=GOOD_KEY, Body=GOOD)
    client.put_object(Bucket=bucket, Key=BAD_KEY, Body=BAD)
    before = objects(client, bucket)
    config = PipelineConfig(
        inbox=f"s3://{bucket}/", warehouse=sqlite_url, s3_endpoint_url=s3_endpoint
    )

    report = run(config, instance)

    assert [(f["file"], f["status"], f.get("quarantine")) for f in report.files] == [
        (BAD_KEY, "rejected", f"s3://{bucket}/quarantine/{BAD_KEY}"),
        (GOOD_KEY, "loaded", None),
    ]
    after = objects(client, bucket)
    assert {key: body for key, (body, _) in after.items()} == {
        GOOD_KEY: GOOD,
        BAD_KEY: BAD,
        f"quarantine/{BAD_KEY}": BAD,
        f"quarantine/{BAD_KEY}.errors.csv": BAD_ERRORS,
    }
    assert {key: after[key] for key in before} == before
    listed = open_source(config.inbox, config.s3_endpoint_url).list_objects()
    assert sorted(o.key for o in listed) == [BAD_KEY, GOOD_KEY]

    again = run(config, instance)

    assert again.files == [] and again.rollup_days == []
    assert rows(sqlite_url, "ingested_files", columns=LEDGER_COLUMNS) == LEDGER
    assert rows(sqlite_url, "user_activity_daily") == DAILY
    assert objects(client, bucket) == after


def test_unreachable_s3_endpoint_is_exit_status_2_with_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("DAGSTER_HOME", "USAGE_PIPELINE_CONFIG", "USAGE_PIPELINE_TIMEZONE", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "USAGE_PIPELINE_INBOX": "s3://usage-drops/drops/inbox",
        "USAGE_PIPELINE_WAREHOUSE_URL": f"sqlite:///{tmp_path / 'warehouse.db'}",
    }.items():
        monkeypatch.setenv(name, value)

    result = CliRunner().invoke(main, ["run", "--as-of", "2026-11-21T12:00:00+00:00"])

    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr == (
        "error: The inbox s3://usage-drops/drops/inbox cannot be listed: Could not connect to"
        ' the endpoint URL: "http://127.0.0.1:9/usage-drops?list-type=2&prefix=drops%2Finbox%2F'
        '&encoding-type=url".\n'
    )
    assert not (tmp_path / "data").exists()


def test_s3_key_with_dot_dot_is_rejected_and_never_quarantined(
    s3_bucket, s3_endpoint: str, sqlite_url: str
) -> None:
    client, bucket = s3_bucket
    config = PipelineConfig(
        inbox=f"s3://{bucket}/drops/inbox", warehouse=sqlite_url, s3_endpoint_url=s3_endpoint
    )
    client.put_object(Bucket=bucket, Key="drops/inbox/user_activity/../escape.csv", Body=b"x\n")

    with dg.DagsterInstance.ephemeral() as instance:
        report = run(config, instance)

    assert [(f["file"], f["status"]) for f in report.files] == [
        ("user_activity/../escape.csv", "rejected")
    ]
    assert rows(sqlite_url, "ingested_files", columns="error") == [
        (
            "File user_activity/../escape.csv is rejected: its key has a '..' or '.' segment, which"
            " could lead outside the inbox.",
        )
    ]
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["drops/inbox/user_activity/../escape.csv"]
