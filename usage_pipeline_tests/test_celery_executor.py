"""SPEC §7 "Scale" / issue 4: the same definitions run on Dagster's Celery executor.

A real ``celery`` worker process (the ``dagster_celery.app`` app, Redis as broker and result
backend) executes every step; the runs live in a Dagster instance on dagster-postgres, which
the worker reaches through the instance ref each step carries. The whole ``usage-pipeline
run`` flow (ingest each file, roll up the touched days, snapshot, drop watch) goes through
Celery and must give exactly the tables of the in-process run.

Skips when Redis is unreachable, unless USAGE_PIPELINE_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster_celery import celery_executor

from usage_pipeline.config import PipelineConfig
from usage_pipeline.definitions import build_definitions
from usage_pipeline.runner import PipelineRunner, RunReport, pipeline_pass
from usage_pipeline_tests.conftest import _unavailable
from usage_pipeline_tests.helpers import AS_OF, run
from usage_pipeline_tests.test_parallel_ingestion import (  # noqa: F401 (fixtures)
    assert_same_tables,
    complete_tables,
    night_inbox,
    other_pg_url,
)

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DB = 11  # this module's own database on the machine's Redis
REPO = Path(__file__).resolve().parents[1]
WORKER_START_TIMEOUT = 60
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def celery_job(job_name: str, config_json: str, broker: str) -> dg.JobDefinition:
    """The project's job ``job_name`` from ``build_definitions`` with the Celery executor.

    Module-level so that the run (and every Celery worker) can reconstruct it from
    ``build_reconstructable_job(__name__, "celery_job", args)``."""
    defs = build_definitions(PipelineConfig.from_json(config_json))
    executor = celery_executor.configured({"broker": broker, "backend": broker})
    return dg.Definitions.merge(defs, dg.Definitions(executor=executor)).resolve_job_def(job_name)


class _CeleryJob:
    """Stands in for a job definition: ``execute_in_process`` becomes a Celery-executed run
    of the reconstructable job on the same instance."""

    def __init__(self, name: str, config_json: str, broker: str) -> None:
        self.recon = dg.build_reconstructable_job(
            __name__, "celery_job", reconstructable_args=(name, config_json, broker)
        )

    def execute_in_process(
        self,
        run_config: Any,
        instance: dg.DagsterInstance,
        partition_key: str | None,
        asset_selection: list[dg.AssetKey] | None,
        tags: dict[str, str] | None,
        raise_on_error: bool,
    ) -> Any:
        run_tags = dict(tags or {})
        if partition_key:
            run_tags["dagster/partition"] = partition_key
        return dg.execute_job(
            self.recon,
            instance,
            run_config=run_config,
            tags=run_tags,
            asset_selection=asset_selection,
            raise_on_error=False,
        )


class _CeleryDefinitions:
    def __init__(self, config_json: str, broker: str) -> None:
        self.config_json, self.broker = config_json, broker

    def resolve_job_def(self, name: str) -> _CeleryJob:
        return _CeleryJob(name, self.config_json, self.broker)


def run_on_celery(config: PipelineConfig, instance: dg.DagsterInstance, broker: str) -> RunReport:
    """``run_pipeline`` with every job executed by the Celery executor."""
    runner = PipelineRunner(config, instance, "WARNING")
    runner.definitions = _CeleryDefinitions(config.to_json(), broker)  # type: ignore[assignment]
    return pipeline_pass(runner, AS_OF)


@pytest.fixture
def redis_broker() -> Iterator[str]:
    """redis://…/REDIS_DB on the machine's Redis, emptied before and after the test."""
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=2) as sock:
            sock.sendall(f"SELECT {REDIS_DB}\r\nFLUSHDB\r\n".encode())
            reply = sock.recv(64)
    except OSError as exc:
        _unavailable(f"Redis is not reachable at {REDIS_HOST}:{REDIS_PORT}: {exc}")
    assert reply.startswith(b"+OK"), reply
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
    try:
        yield url
    finally:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=2) as sock:
            sock.sendall(f"SELECT {REDIS_DB}\r\nFLUSHDB\r\n".encode())
            sock.recv(64)


@pytest.fixture
def celery_worker(redis_broker: str, tmp_path: Path) -> Iterator[str]:
    """A real worker of ``dagster_celery.app`` on the test's broker, in its own process
    group (stopped by that group's id whatever happens)."""
    settings = tmp_path / "celery_settings"
    settings.mkdir()
    # dagster_celery.make_app reads this module when it is importable (the worker's config).
    (settings / "dagster_celery_config.py").write_text(
        f"broker_url = {redis_broker!r}\nresult_backend = {redis_broker!r}\n", encoding="utf-8"
    )
    log = tmp_path / "celery_worker.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(settings), str(REPO)]))
    name = f"usage-pipeline-test-{uuid.uuid4().hex[:8]}@%h"
    command = [
        str(Path(sys.executable).with_name("celery")),
        "-A",
        "dagster_celery.app",
        "worker",
        "-l",
        "info",
        "--concurrency",
        "2",
        "-n",
        name,
        "--without-gossip",
        "--without-mingle",
    ]
    with log.open("wb") as out:
        worker = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while b" ready." not in log.read_bytes():
            if worker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"The Celery worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield redis_broker
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)


@pytest.mark.postgres
# dagster_celery registers its step task on every submission; celery warns, harmlessly.
@pytest.mark.filterwarnings("ignore:Task name 'execute_plan' is already registered")
def test_celery_executor_gives_the_in_process_tables(
    inbox: Path,
    pg_url: str,
    other_pg_url: str,  # noqa: F811 (the imported fixture)
    pg_instance: dg.DagsterInstance,  # noqa: F811 (the imported fixture)
    celery_worker: str,
    tmp_path: Path,
) -> None:
    every = night_inbox(inbox)
    for extra in every[4:]:  # the directory and three regional files are enough here
        extra.unlink()
    config = PipelineConfig(inbox=str(inbox), warehouse=pg_url)

    report = run_on_celery(config, pg_instance, celery_worker)

    assert not report.failed_runs, report.failed_runs
    assert sorted(f["status"] for f in report.files) == ["loaded"] * 4
    assert sorted(report.rollup_days) == ["2026-11-18", "2026-11-19", "2026-11-20"]
    # Every step of every run went through a Celery worker.
    runs = pg_instance.get_runs()
    assert sorted(r.job_name for r in runs) == [  # one run each: a batch, a stretch of days
        "end_of_run_job",
        "ingest_files_job",
        "rollup_job",
        "snapshot_job",
    ]
    for dagster_run in runs:
        assert dagster_run.status == dg.DagsterRunStatus.SUCCESS, dagster_run.run_id
        events = [
            e.dagster_event for e in pg_instance.all_logs(dagster_run.run_id) if e.dagster_event
        ]
        steps = {e.step_key for e in events if e.is_step_success}
        delegated = {
            e.step_key
            for e in events
            if e.is_engine_event and "in celery worker" in (e.message or "")
        }
        assert steps and steps <= delegated, dagster_run.run_id

    reference = PipelineConfig(inbox=str(inbox), warehouse=other_pg_url)
    with dg.instance_for_test() as instance:
        expected = run(reference, instance)
    assert not expected.failed_runs
    assert sorted(report.rollup_days) == sorted(expected.rollup_days)
    tables = complete_tables(pg_url)
    assert len(tables["user_activity_daily"]) > 20
    assert_same_tables(tables, complete_tables(other_pg_url))


def test_worker_side_module_reconstructs_the_project_job(inbox: Path, sqlite_url: str) -> None:
    """What a worker does with a step: rebuild the job from module + arguments."""
    config = PipelineConfig(inbox=str(inbox), warehouse=sqlite_url)
    recon = dg.build_reconstructable_job(
        __name__, "celery_job", reconstructable_args=("ingest_files_job", config.to_json(), "x")
    )
    job = recon.get_definition()
    assert job.name == "ingest_files_job"
    assert job.executor_def.name == "celery"
