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
from usage_pipeline.sources import open_source
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
    assert cursor.high_water == max(o.last_modified for o in listing.values())
    assert cursor.recent == {
        key: (o.last_modified.isoformat(), o.size)
        for key, o in listing.items()
        if o.last_modified >= cursor.high_water - LOOKBACK
    }
    assert cursor.recent[SECOND_KEY] == (
        listing[SECOND_KEY].last_modified.isoformat(),
        len(SECOND_CORRECTED),
    )


def _touch(path: Path, moment: datetime) -> None:
    os.utime(path, (moment.timestamp(), moment.timestamp()))


def test_cursor_keeps_only_objects_within_lookback_of_the_high_water_mark(
    inbox: Path, sqlite_url: str, instance
) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=sqlite_url)
    drops = LocalDrops(inbox)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    drops.put(FIRST_KEY, FIRST)
    drops.put(SECOND_KEY, SECOND)
    _touch(inbox / FIRST_KEY, now - LOOKBACK - timedelta(hours=2))
    _touch(inbox / SECOND_KEY, now)

    tick1 = tick(config, instance, None)

    assert requested(tick1) == sorted(
        [
            (partition_key_for(FIRST_KEY, sha256(FIRST)), f"{FIRST_KEY}@{sha256(FIRST)}#0"),
            (partition_key_for(SECOND_KEY, sha256(SECOND)), f"{SECOND_KEY}@{sha256(SECOND)}#0"),
        ]
    )
    cursor = InboxCursor.parse(tick1.cursor)
    assert cursor.high_water == now
    assert cursor.recent == {SECOND_KEY: (now.isoformat(), len(SECOND))}

    third_key = "user_activity/usage_2026-11-21.csv"
    drops.put(third_key, FIRST)
    _touch(inbox / third_key, now + timedelta(minutes=10))
    fourth_key = "user_activity/usage_2026-11-22.csv"
    drops.put(fourth_key, SECOND)
    _touch(inbox / fourth_key, now + LOOKBACK + timedelta(minutes=5))

    tick2 = tick(config, instance, tick1.cursor)

    assert [r.partition_key for r in tick2.run_requests] == [
        partition_key_for(third_key, sha256(FIRST)),
        partition_key_for(fourth_key, sha256(SECOND)),
    ]
    cursor = InboxCursor.parse(tick2.cursor)
    assert cursor.high_water == now + LOOKBACK + timedelta(minutes=5)
    assert cursor.recent == {
        third_key: ((now + timedelta(minutes=10)).isoformat(), len(FIRST)),
        fourth_key: ((now + LOOKBACK + timedelta(minutes=5)).isoformat(), len(SECOND)),
    }

    tick3 = tick(config, instance, tick2.cursor)

    assert tick3.run_requests == []
    assert tick3.cursor == tick2.cursor
