"""SPEC §5 inbox sensor: one run per new file version (run key = file identity), hidden and
in-flight names ignored, re-ticks and re-sensing are no-ops, a correction is a new run, and
the cursor stays bounded. Evaluated the way the daemon does (run requests resolved against
the job, dynamic partitions added), over a local folder and over S3 on moto's server."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from usage_pipeline.config import PipelineConfig
from usage_pipeline.definitions import build_definitions
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.sensing import LOOKBACK, InboxCursor, partition_key_for
from usage_pipeline.sources import SourceObject, open_source
from usage_pipeline_tests.helpers import HEADER, rows

CONTRIBUTION = "activity_date, account_id, user_id, module, activity, count"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

FIRST_KEY = "user_activity/usage_2026-11-19.csv"
SECOND_KEY = "user_activity/nested/usage_2026-11-20.csv"
FIRST = f"{HEADER}\nA1,u1,Reports,view,3,2026-11-19T09:00:00Z\n".encode()
SECOND = f"{HEADER}\nA2,u2,Admin,login,1,2026-11-20T09:00:00Z\n".encode()
SECOND_CORRECTED = (
    f"{HEADER}\nA2,u2,Admin,login,5,2026-11-20T09:00:00Z\nA2,u3,Admin,login,2,2026-11-20T10:00:00Z\n"
).encode()
IGNORED = [
    "user_activity/.hidden.csv",
    "user_activity/_tmp.csv",
    "user_activity/x.csv.part",
    "user_activity/y.csv.tmp",
    "user_activity/z_COPYING_.csv",
]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalDrops:
    """Drops into a local inbox folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.uri = str(folder)
        self.endpoint: str | None = None

    def put(self, key: str, data: bytes) -> None:
        path = self.folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


class S3Drops:
    """Drops uploaded under ``drops/inbox/`` of a bucket on the moto server."""

    def __init__(self, client: object, bucket: str, endpoint: str) -> None:
        self.client, self.bucket = client, bucket
        self.uri = f"s3://{bucket}/drops/inbox"
        self.endpoint = endpoint

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"drops/inbox/{key}", Body=data)


@pytest.fixture(params=["local", "s3"])
def drops(request: pytest.FixtureRequest, inbox: Path) -> LocalDrops | S3Drops:
    if request.param == "local":
        return LocalDrops(inbox)
    client, bucket = request.getfixturevalue("s3_bucket")
    return S3Drops(client, bucket, request.getfixturevalue("s3_endpoint"))


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def tick(
    config: PipelineConfig, instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorExecutionData:
    """One evaluation of ``inbox_sensor`` from the code location's definitions, with its run
    requests resolved against ``ingest_file_job`` as the daemon resolves them."""
    definitions = build_definitions(config)
    context = dg.build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),
        cursor=cursor,
        definitions=definitions,
        resources={"pipeline": PipelineResource.from_config(config)},
    )
    return definitions.resolve_sensor_def("inbox_sensor").evaluate_tick(context)


def launch(config: PipelineConfig, instance: dg.DagsterInstance, data) -> None:
    """Apply the tick's dynamic-partition requests and execute its run requests in-process."""
    for request in data.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    job = build_definitions(config).resolve_job_def("ingest_file_job")
    for request in data.run_requests:
        result = job.execute_in_process(
            instance=instance, partition_key=request.partition_key, run_config=QUIET
        )
        assert result.success


def requested(data) -> list[tuple[str, str]]:
    return sorted((r.partition_key, r.run_key) for r in data.run_requests)


def added(data) -> list[tuple[str, list[str]]]:
    return [
        (r.partitions_def_name, list(r.partition_keys)) for r in data.dynamic_partitions_requests
    ]


def test_sensor_requests_one_run_per_new_file_version(
    drops: LocalDrops | S3Drops, sqlite_url: str, instance
) -> None:
    config = PipelineConfig(inbox=drops.uri, warehouse=sqlite_url, s3_endpoint_url=drops.endpoint)
    drops.put(FIRST_KEY, FIRST)
    drops.put(SECOND_KEY, SECOND)
    for key in IGNORED:
        drops.put(key, FIRST)
    first = partition_key_for(FIRST_KEY, sha256(FIRST))
    second = partition_key_for(SECOND_KEY, sha256(SECOND))

    tick1 = tick(config, instance, None)

    assert requested(tick1) == sorted(
        [
            (first, f"{FIRST_KEY}@{sha256(FIRST)}#0"),
            (second, f"{SECOND_KEY}@{sha256(SECOND)}#0"),
        ]
    )
    assert first == f"{FIRST_KEY}@{sha256(FIRST)[:16]}"
    assert added(tick1) == [("inbox_files", sorted([first, second]))]
    assert [r.tags["dagster/partition"] for r in tick1.run_requests] == [
        r.partition_key for r in tick1.run_requests
    ]

    tick2 = tick(config, instance, tick1.cursor)

    assert tick2.run_requests == []
    assert tick2.dynamic_partitions_requests == []
    assert tick2.cursor == tick1.cursor

    launch(config, instance, tick1)
    assert rows(sqlite_url, "ingested_files", columns="source_key, sha256, status") == sorted(
        [(FIRST_KEY, sha256(FIRST), "loaded"), (SECOND_KEY, sha256(SECOND), "loaded")]
    )
    assert rows(sqlite_url, "user_activity_contributions", columns=CONTRIBUTION) == [
        ("2026-11-19", "A1", "u1", "Reports", "view", 3),
        ("2026-11-20", "A2", "u2", "Admin", "login", 1),
    ]
    assert sorted(instance.get_dynamic_partitions("inbox_files")) == sorted([first, second])

    drops.put(SECOND_KEY, SECOND_CORRECTED)
    corrected = partition_key_for(SECOND_KEY, sha256(SECOND_CORRECTED))

    tick3 = tick(config, instance, tick2.cursor)

    assert requested(tick3) == [(corrected, f"{SECOND_KEY}@{sha256(SECOND_CORRECTED)}#1")]
    assert added(tick3) == [("inbox_files", [corrected])]

    launch(config, instance, tick3)
    assert rows(sqlite_url, "ingested_files", columns="source_key, sha256, status") == sorted(
        [
            (FIRST_KEY, sha256(FIRST), "loaded"),
            (SECOND_KEY, sha256(SECOND), "superseded"),
            (SECOND_KEY, sha256(SECOND_CORRECTED), "loaded"),
        ]
    )
    assert rows(sqlite_url, "user_activity_contributions", columns=CONTRIBUTION) == [
        ("2026-11-19", "A1", "u1", "Reports", "view", 3),
        ("2026-11-20", "A2", "u2", "Admin", "login", 5),
        ("2026-11-20", "A2", "u3", "Admin", "login", 2),
    ]

    assert tick(config, instance, tick3.cursor).run_requests == []
    fresh = tick(config, instance, None)
    assert fresh.run_requests == []
    assert fresh.dynamic_partitions_requests == []

    listing = {o.key: o for o in open_source(config.inbox, config.s3_endpoint_url).list_objects()}
    assert sorted(listing) == sorted([FIRST_KEY, SECOND_KEY])
    cursor = InboxCursor.parse(tick3.cursor)
    assert sorted(cursor.recent) == sorted([FIRST_KEY, SECOND_KEY])
    assert cursor.high_water == max(o.changed_at or o.last_modified for o in listing.values())
    assert cursor.recent == {key: o.signature for key, o in listing.items()}
    assert cursor.recent[SECOND_KEY][1] == len(SECOND_CORRECTED)


def _object(key: str, changed: datetime, size: int = 10) -> SourceObject:
    return SourceObject(
        key=key, size=size, last_modified=changed, changed_at=changed, version=f"v-{size}"
    )


def test_cursor_keeps_only_objects_within_lookback_of_the_high_water_mark() -> None:
    now = datetime(2026, 11, 21, 23, 0, tzinfo=timezone.utc)
    old = _object("user_activity/old.csv", now - LOOKBACK - timedelta(hours=2))
    new = _object("user_activity/new.csv", now)

    cursor = InboxCursor(None, {}).advanced([old, new])

    assert cursor.high_water == now
    assert cursor.recent == {new.key: (now.isoformat(), 10, "v-10")}
    assert cursor.is_seen(old) and cursor.is_seen(new)
    later = _object("user_activity/later.csv", now + LOOKBACK + timedelta(minutes=5))
    assert not cursor.is_seen(later)
    assert not cursor.is_seen(_object(new.key, now, size=11))  # same moment, new bytes

    cursor = cursor.advanced([later])

    assert cursor.recent == {
        later.key: ((now + LOOKBACK + timedelta(minutes=5)).isoformat(), 10, "v-10")
    }
    assert InboxCursor.parse(cursor.dump()) == cursor


def test_a_file_moved_in_with_an_old_mtime_is_sensed(
    inbox: Path, tmp_path: Path, sqlite_url: str, instance
) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=sqlite_url)
    LocalDrops(inbox).put(FIRST_KEY, FIRST)
    tick1 = tick(config, instance, None)
    staged = tmp_path / "staging.csv"
    staged.write_bytes(SECOND)
    yesterday = datetime.now(timezone.utc) - timedelta(days=1)
    os.utime(staged, (yesterday.timestamp(), yesterday.timestamp()))
    (inbox / SECOND_KEY).parent.mkdir(parents=True, exist_ok=True)
    staged.rename(inbox / SECOND_KEY)  # like mv / rsync -a: the mtime stays a day old

    tick2 = tick(config, instance, tick1.cursor)

    assert [r.partition_key for r in tick2.run_requests] == [
        partition_key_for(SECOND_KEY, sha256(SECOND))
    ]


def test_s3_same_size_correction_within_the_same_second_is_sensed(
    s3_bucket, s3_endpoint: str, sqlite_url: str, instance
) -> None:
    client, bucket = s3_bucket
    config = PipelineConfig(
        inbox=f"s3://{bucket}/in", warehouse=sqlite_url, s3_endpoint_url=s3_endpoint
    )
    same_size = FIRST.replace(b",3,", b",4,")
    client.put_object(Bucket=bucket, Key=f"in/{FIRST_KEY}", Body=FIRST)
    tick1 = tick(config, instance, None)
    client.put_object(Bucket=bucket, Key=f"in/{FIRST_KEY}", Body=same_size)

    tick2 = tick(config, instance, tick1.cursor)

    assert [r.partition_key for r in tick2.run_requests] == [
        partition_key_for(FIRST_KEY, sha256(same_size))
    ]
