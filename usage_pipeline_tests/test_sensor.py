"""SPEC §1 and §5 inbox sensor: it lists (never reads) the inbox and requests one run per
batch of new file versions (run key = the identities it holds); hidden and in-flight names
are ignored, re-ticks are no-ops, a correction is a new run, batches are bounded by files
and bytes, and the cursor stays bounded. Evaluated the way the daemon does, over a local
folder and over S3 on moto's server. Also the follow-up sensor, planned from pending work."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from usage_pipeline import work_queue
from usage_pipeline.config import PipelineConfig
from usage_pipeline.definitions import build_definitions
from usage_pipeline.defs.resources import PipelineResource
from usage_pipeline.sensing import LOOKBACK, Batch, InboxCursor, plan_batches
from usage_pipeline.snapshots import build_snapshot_day
from usage_pipeline.sources import SourceObject, open_source
from usage_pipeline.sources.local import LocalFolderSource
from usage_pipeline.sources.s3 import S3Source
from usage_pipeline.warehouse.engine import get_engine
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


@pytest.fixture
def no_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sensing must never read a file's bytes: any read fails the test."""

    def refuse(self, key):  # type: ignore[no-untyped-def]
        raise AssertionError(f"the sensor read the bytes of {key}")

    monkeypatch.setattr(LocalFolderSource, "local_copy", refuse)
    monkeypatch.setattr(S3Source, "local_copy", refuse)


def tick(
    config: PipelineConfig, instance: dg.DagsterInstance, cursor: str | None, name="inbox_sensor"
) -> dg.SensorExecutionData:
    """One evaluation of a sensor from the code location's definitions, with its run
    requests resolved against their jobs as the daemon resolves them."""
    definitions = build_definitions(config)
    context = dg.build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),
        cursor=cursor,
        definitions=definitions,
        resources={"pipeline": PipelineResource.from_config(config)},
    )
    return definitions.resolve_sensor_def(name).evaluate_tick(context)


def launch(config: PipelineConfig, instance: dg.DagsterInstance, data) -> None:
    """Execute the tick's run requests in-process, as the daemon would launch them."""
    job = build_definitions(config).resolve_job_def("ingest_files_job")
    for request in data.run_requests:
        result = job.execute_in_process(
            instance=instance, run_config={**request.run_config, **QUIET}
        )
        assert result.success


def batches(data) -> list[list[str]]:
    """The keys each requested run ingests, in order."""
    return [r.run_config["ops"]["inbox_file"]["config"]["keys"] for r in data.run_requests]


def test_sensor_requests_one_run_per_batch_of_new_versions(
    drops: LocalDrops | S3Drops,
    sqlite_url: str,
    instance,
    no_reads: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = PipelineConfig(inbox=drops.uri, warehouse=sqlite_url, s3_endpoint_url=drops.endpoint)
    drops.put(FIRST_KEY, FIRST)
    drops.put(SECOND_KEY, SECOND)
    for key in IGNORED:
        drops.put(key, FIRST)

    tick1 = tick(config, instance, None)

    [batch] = batches(tick1)  # one run for both files (oldest first; S3 times are seconds)
    assert sorted(batch) == sorted([FIRST_KEY, SECOND_KEY])
    listing = {o.key: o for o in open_source(config.inbox, config.s3_endpoint_url).list_objects()}
    expected_key = Batch(tuple(listing[key] for key in batch)).run_key
    assert [r.run_key for r in tick1.run_requests] == [expected_key]
    assert expected_key.startswith("batch:2:")

    tick2 = tick(config, instance, tick1.cursor)

    assert tick2.run_requests == []
    assert tick2.cursor == tick1.cursor

    monkeypatch.undo()  # the run reads (and hashes) the bytes, once
    launch(config, instance, tick1)
    assert rows(sqlite_url, "ingested_files", columns="source_key, status") == sorted(
        [(FIRST_KEY, "loaded"), (SECOND_KEY, "loaded")]
    )
    assert rows(sqlite_url, "user_activity_contributions", columns=CONTRIBUTION) == [
        ("2026-11-19", "A1", "u1", "Reports", "view", 3),
        ("2026-11-20", "A2", "u2", "Admin", "login", 1),
    ]

    drops.put(SECOND_KEY, SECOND_CORRECTED)

    tick3 = tick(config, instance, tick2.cursor)

    assert batches(tick3) == [[SECOND_KEY]]
    assert tick(config, instance, tick3.cursor).run_requests == []
    launch(config, instance, tick3)
    assert rows(sqlite_url, "ingested_files", columns="source_key, status") == sorted(
        [(FIRST_KEY, "loaded"), (SECOND_KEY, "loaded"), (SECOND_KEY, "superseded")]
    )

    listing = {o.key: o for o in open_source(config.inbox, config.s3_endpoint_url).list_objects()}
    assert sorted(listing) == sorted([FIRST_KEY, SECOND_KEY])
    cursor = InboxCursor.parse(tick3.cursor)
    assert cursor.high_water == max(o.changed_at or o.last_modified for o in listing.values())
    assert cursor.recent == {key: o.signature for key, o in listing.items()}
    assert cursor.recent[SECOND_KEY][1] == len(SECOND_CORRECTED)


def test_the_run_hashes_and_loads_what_the_sensor_listed(
    drops: LocalDrops | S3Drops, sqlite_url: str, instance
) -> None:
    config = PipelineConfig(inbox=drops.uri, warehouse=sqlite_url, s3_endpoint_url=drops.endpoint)
    drops.put(SECOND_KEY, SECOND)
    first = tick(config, instance, None)
    launch(config, instance, first)
    drops.put(SECOND_KEY, SECOND_CORRECTED)
    correction = tick(config, instance, first.cursor)

    launch(config, instance, correction)
    launch(config, instance, correction)  # a retried run changes nothing

    assert rows(sqlite_url, "ingested_files", columns="source_key, status, rows_loaded") == [
        (SECOND_KEY, "loaded", 2),
        (SECOND_KEY, "superseded", 1),
    ]
    assert rows(sqlite_url, "user_activity_contributions", columns=CONTRIBUTION) == [
        ("2026-11-20", "A2", "u2", "Admin", "login", 5),
        ("2026-11-20", "A2", "u3", "Admin", "login", 2),
    ]


def _obj(key: str, minute: int, size: int = 10) -> SourceObject:
    moment = datetime(2026, 11, 21, 23, minute, tzinfo=timezone.utc)
    return SourceObject(key=key, size=size, last_modified=moment, changed_at=moment, version="v")


def test_batches_are_bounded_by_files_and_bytes_and_load_the_directory_first() -> None:
    objects = [_obj(f"user_activity/f{n}.csv", n) for n in range(5)]
    objects += [_obj("accounts/a.csv", 9), _obj("user_activity/big.csv", 7, size=500)]

    planned = plan_batches(objects, max_files=3, max_bytes=100)

    assert [b.keys for b in planned] == [
        ["accounts/a.csv", "user_activity/f0.csv", "user_activity/f1.csv"],
        ["user_activity/f2.csv", "user_activity/f3.csv", "user_activity/f4.csv"],
        ["user_activity/big.csv"],  # larger than max_bytes: a batch of its own
    ]
    limited = plan_batches(objects, max_files=3, max_bytes=100, limit=1)
    assert [b.keys for b in limited] == [
        ["user_activity/f0.csv", "user_activity/f1.csv", "user_activity/f2.csv"]
    ]  # the oldest versions only, so the cursor advances over exactly those
    assert plan_batches([], max_files=3, max_bytes=100) == []


def test_a_tick_requests_at_most_ten_batches_and_the_next_tick_the_rest(
    inbox: Path, sqlite_url: str, instance, no_reads: None
) -> None:
    config = PipelineConfig(inbox=str(inbox), warehouse=sqlite_url, batch_max_files=2)
    start = datetime.now(timezone.utc) - timedelta(hours=3)
    for n in range(23):
        path = inbox / f"user_activity/u{n:02d}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(FIRST)
        moment = (start + timedelta(minutes=n)).timestamp()
        os.utime(path, (moment, moment))

    tick1 = tick(config, instance, None)
    tick2 = tick(config, instance, tick1.cursor)
    tick3 = tick(config, instance, tick2.cursor)

    names = [f"user_activity/u{n:02d}.csv" for n in range(23)]  # written (changed) in order
    assert batches(tick1) == [names[n : n + 2] for n in range(0, 20, 2)]
    assert batches(tick2) == [names[20:22], names[22:]]
    assert tick3.run_requests == []


def test_a_new_sensor_starts_from_the_cli_cursor(
    inbox: Path, sqlite_url: str, instance, no_reads: None
) -> None:
    from usage_pipeline.state import save_cli_cursor

    config = PipelineConfig(inbox=str(inbox), warehouse=sqlite_url)
    LocalDrops(inbox).put(FIRST_KEY, FIRST)
    source = open_source(config.inbox)
    save_cli_cursor(
        get_engine(sqlite_url),
        source.uri,
        InboxCursor(None, {}).advanced(list(source.list_objects())),
    )
    LocalDrops(inbox).put(SECOND_KEY, SECOND)

    assert batches(tick(config, instance, None)) == [[SECOND_KEY]]


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

    assert batches(tick2) == [[SECOND_KEY]]


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

    assert batches(tick2) == [[FIRST_KEY]]


def test_followup_sensor_requests_one_run_per_stretch_of_pending_days(
    sqlite_url: str, instance
) -> None:
    config = PipelineConfig(warehouse=sqlite_url)
    engine = get_engine(sqlite_url)

    assert tick(config, instance, None, "followup_sensor").skip_message == "Nothing pending."

    with engine.begin() as conn:
        work_queue.mark(conn, "user_activity_daily", [date(2026, 11, 3), date(2026, 11, 2)])
        work_queue.mark(conn, "account_activity_daily", [date(2026, 11, 2), date(2026, 11, 3)])
        work_queue.mark(conn, "events_daily", [date(2026, 11, 9)])
        build_snapshot_day(conn, "user_usage_snapshot", date(2026, 11, 20))
        work_queue.mark(conn, "user_usage_snapshot", [date(2026, 11, 20)])  # waits: 11-03
    requests = tick(config, instance, None, "followup_sensor").run_requests

    assert [
        (
            r.job_name,
            r.partition_key,
            r.tags.get("dagster/asset_partition_range_start"),
            r.tags.get("dagster/asset_partition_range_end"),
            sorted(k.to_user_string() for k in r.asset_selection),
        )
        for r in requests
    ] == [
        (
            "rollup_job",
            None,
            "2026-11-02",
            "2026-11-03",
            ["account_activity_daily", "user_activity_daily"],
        ),
        ("rollup_job", "2026-11-09", None, None, ["events_daily"]),
    ]
    assert requests[0].run_key == "rollup:2026-11-02:2026-11-03:4"
    again = tick(config, instance, None, "followup_sensor").run_requests
    assert [r.run_key for r in again] == [r.run_key for r in requests]  # deduplicated by key

    with engine.begin() as conn:  # the rollups ran: the snapshot refresh is due now
        from usage_pipeline.rollups import rebuild_rollup_day, rollup_named

        for day in (2, 3):
            for name in ("user_activity_daily", "account_activity_daily"):
                rebuild_rollup_day(conn, rollup_named(name), date(2026, 11, day))
        rebuild_rollup_day(conn, rollup_named("events_daily"), date(2026, 11, 9))
    [refresh] = tick(config, instance, None, "followup_sensor").run_requests

    assert (refresh.job_name, refresh.partition_key) == ("snapshot_job", "2026-11-20")
    assert [k.to_user_string() for k in refresh.asset_selection] == ["user_usage_snapshot"]
