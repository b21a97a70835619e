"""SPEC §5 as deployed: the real ``dagster-daemon run`` and ``dagster-webserver`` processes on a
PostgreSQL Dagster instance (dagster-postgres) with a PostgreSQL warehouse. Nothing here calls
the pipeline: files are dropped into the inbox (a local folder, or an S3 bucket on moto's
server), the daemon's sensors launch the runs, and the webserver's GraphQL API is what the test
watches. The warehouse is read back with SQLAlchemy.

Two deployments (local inbox, S3 inbox) run side by side, each with its own processes, instance
database and warehouse schema, so the module waits for one sensor cycle, not two. The local one
starts on an instance that already has history (a week of demo drops loaded by
``usage-pipeline run``): its sensors must plan only the new drop, within two ticks.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from usage_pipeline.defs.tags import AS_OF_TAG

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / ".venv" / "bin"
LOCATION = "usage_pipeline"
REPOSITORY = "__repository__"
S3_PREFIX = "drops/inbox"
RUN_TIMEOUT = 150.0
POLL = 2.0
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}

# The moment the test's days are taken from; the drop watch is run as of it, so a run that
# crosses midnight (UTC) does not move the due day under the test.
NOW = datetime.now(timezone.utc)
YESTERDAY = (NOW - timedelta(days=1)).date().isoformat()
DROP_KEY = f"user_activity/usage_{YESTERDAY}.csv"
DROP = (
    "account_id,user_id,module,activity,count,timestamp\n"
    f"A1,u1,Reports,view,3,{YESTERDAY}T09:00:00Z\n"
    f"A1,u2,Admin,login,2,{YESTERDAY}T10:00:00Z\n"
    f"A1,u3,Reports,view,1,{YESTERDAY}T11:00:00Z\n"
    f"A2,u9,Reports,export,4,{YESTERDAY}T22:00:00Z\n"
).encode()
USER_DAILY = [
    (YESTERDAY, "A1", "u1", "Reports", "view", 3),
    (YESTERDAY, "A1", "u2", "Admin", "login", 2),
    (YESTERDAY, "A1", "u3", "Reports", "view", 1),
    (YESTERDAY, "A2", "u9", "Reports", "export", 4),
]
ACCOUNT_DAILY = [
    (YESTERDAY, "A1", "Admin", "login", "user_activity", 2, 1),
    (YESTERDAY, "A1", "Reports", "view", "user_activity", 4, 2),
    (YESTERDAY, "A2", "Reports", "export", "user_activity", 4, 1),
]
LEDGER = [(DROP_KEY, "user_activity", "loaded", 4, 4, 0, YESTERDAY, YESTERDAY)]

# Instance for both processes: PostgreSQL storage, the queued coordinator polled every second,
# sensor ticks evaluated in threads (the two sensors do not wait for each other).
INSTANCE_YAML = """\
storage:
  postgres:
    postgres_url:
      env: USAGE_PIPELINE_DAGSTER_PG_URL
run_queue:
  max_concurrent_runs: 4
  dequeue_interval_seconds: 1
sensors:
  use_threads: true
  num_workers: 4
schedules:
  use_threads: true
  num_workers: 2
telemetry:
  enabled: false
"""

RUNS_QUERY = """
query Runs {
  runsOrError(limit: 50) {
    __typename
    ... on Runs { results { runId jobName status creationTime tags { key value } } }
    ... on PythonError { message }
  }
}
"""
RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status }
    ... on PythonError { message }
  }
}
"""
CHECK_QUERY = """
query Check($assetKey: AssetKeyInput!, $checkName: String!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 20) {
    runId
    status
    evaluation { success severity description }
  }
}
"""
SENSOR_QUERY = """
query Sensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { name sensorState { status } }
  }
}
"""
SCHEDULE_QUERY = """
query Schedule($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename
    ... on Schedule { name scheduleState { status } }
  }
}
"""
LAUNCH_MUTATION = """
mutation Launch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path.name}: no output)"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return f"--- {path.name} (last {len(text)} lines) ---\n" + "\n".join(text)


@dataclass
class Deployment:
    """One daemon + webserver pair on its own DAGSTER_HOME, instance database and warehouse."""

    name: str
    home: Path
    env: dict[str, str]
    warehouse: str
    port: int = field(default_factory=_free_port)
    procs: list[subprocess.Popen] = field(default_factory=list)
    last_answer: object = None
    dropped_at: float = 0.0  # wall-clock time the drop was written

    @property
    def logs(self) -> list[Path]:
        return [self.home / "daemon.log", self.home / "webserver.log"]

    def start(self) -> None:
        workspace = str(REPO / "workspace.yaml")
        commands = [
            [str(BIN / "dagster-daemon"), "run", "-w", workspace],
            [
                str(BIN / "dagster-webserver"),
                *("-h", "127.0.0.1", "-p", str(self.port), "-w", workspace),
            ],
        ]
        for command, log in zip(commands, self.logs, strict=True):
            with log.open("wb") as out:
                self.procs.append(
                    subprocess.Popen(
                        command,
                        cwd=REPO,
                        env=self.env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )

    def stop(self) -> None:
        """SIGTERM each started process group (its pgid is its own pid), then SIGKILL."""
        for proc in self.procs:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=20)
            # Children (code servers, run workers) share the group; make sure none outlives it.
            _signal_group(proc, signal.SIGKILL)
            if proc.poll() is None:
                proc.wait(timeout=10)

    def diagnostics(self, what: str) -> str:
        answer = json.dumps(self.last_answer, indent=1)[-4000:]
        tails = "\n".join(_tail(log) for log in self.logs)
        return f"[{self.name}] {what}\nlast GraphQL answer:\n{answer}\n{tails}"

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        self.last_answer = answer
        if answer.get("errors"):
            raise AssertionError(self.diagnostics(f"GraphQL errors: {answer['errors']}"))
        return answer["data"]

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float = RUN_TIMEOUT) -> Any:
        """Poll ``probe`` until it returns something truthy; fail with the diagnostics."""
        deadline = time.monotonic() + timeout
        while True:
            for proc, log in zip(self.procs, self.logs, strict=True):
                if proc.poll() is not None:
                    pytest.fail(self.diagnostics(f"{log.stem} exited with {proc.returncode}"))
            try:
                result = probe()
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                result, self.last_answer = None, f"no answer: {exc}"
            if result:
                return result
            if time.monotonic() > deadline:
                pytest.fail(self.diagnostics(f"timed out after {timeout:.0f} s waiting for {what}"))
            time.sleep(POLL)

    def runs(self) -> list[dict[str, Any]]:
        data = self.graphql(RUNS_QUERY)["runsOrError"]
        assert data["__typename"] == "Runs", self.diagnostics("runsOrError failed")
        return data["results"]

    def launch(self, job: str, tags: dict[str, str] | None = None) -> str:
        params = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "jobName": job,
            },
            "runConfigData": {},
            "executionMetadata": {
                "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]
            },
        }
        answer = self.graphql(LAUNCH_MUTATION, {"executionParams": params})["launchRun"]
        assert answer["__typename"] == "LaunchRunSuccess", self.diagnostics(f"launching {job}")
        return answer["run"]["runId"]

    def wait_run(self, run_id: str) -> str:
        def status() -> str | None:
            run = self.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
            return run["status"] if run.get("status") in TERMINAL else None

        return self.wait_for(f"run {run_id} to finish", status)

    def check_executions(self, asset: str, check: str) -> list[dict[str, Any]]:
        variables = {"assetKey": {"path": [asset]}, "checkName": check}
        return self.graphql(CHECK_QUERY, variables)["assetCheckExecutions"]

    def instigator_status(self, kind: str, name: str) -> str:
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
        if kind == "sensor":
            data = self.graphql(SENSOR_QUERY, {"selector": {**selector, "sensorName": name}})
            return data["sensorOrError"]["sensorState"]["status"]
        data = self.graphql(SCHEDULE_QUERY, {"selector": {**selector, "scheduleName": name}})
        return data["scheduleOrError"]["scheduleState"]["status"]


def _signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _by_sensor(runs: list[dict[str, Any]], sensor: str, job: str) -> list[dict[str, Any]]:
    return [
        r
        for r in runs
        if r["jobName"] == job and {"key": "dagster/sensor_name", "value": sensor} in r["tags"]
    ]


def _sensor_runs_done(deployment: Deployment) -> list[dict[str, Any]] | None:
    """The sensor-launched runs once an ingestion and a rollup succeeded and all finished."""
    runs = deployment.runs()
    failed = [r for r in runs if r["status"] in {"FAILURE", "CANCELED"}]
    if failed:
        pytest.fail(deployment.diagnostics(f"runs did not succeed: {failed}"))
    ingest = _by_sensor(runs, "inbox_sensor", "ingest_files_job")
    rollup = _by_sensor(runs, "followup_sensor", "rollup_job")
    done = all(r["status"] == "SUCCESS" for r in runs)
    return runs if ingest and rollup and done else None


def _rows(url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            result = conn.execute(sa.text(sql)).all()
    finally:
        engine.dispose()
    return sorted(tuple(v.isoformat() if hasattr(v, "isoformat") else v for v in r) for r in result)


def _warehouse(url: str) -> dict[str, list[tuple]]:
    """The drop's day and ledger row (the local warehouse also holds the older history)."""
    day = f"'{YESTERDAY}'"
    return {
        "user_activity_daily": _rows(
            url,
            "SELECT activity_date, account_id, user_id, module, activity, count"
            f" FROM user_activity_daily WHERE activity_date = {day}",
        ),
        "account_activity_daily": _rows(
            url,
            "SELECT activity_date, account_id, module, activity, source, count, active_users"
            f" FROM account_activity_daily WHERE activity_date = {day}",
        ),
        "ingested_files": _rows(
            url,
            "SELECT source_key, feed, status, rows_total, rows_loaded, rows_rejected, min_day,"
            f" max_day FROM ingested_files WHERE source_key = '{DROP_KEY}'",
        ),
    }


HISTORY_NIGHTS = 7


def _load_history(inbox: Path, env: dict[str, str], home: Path) -> None:
    """A week of demo drops ending four days ago, loaded by ``usage-pipeline run`` on the
    deployment's instance and warehouse before its daemon starts."""
    from usage_pipeline.demo import demo_drops

    first = datetime.now(timezone.utc).date() - timedelta(days=HISTORY_NIGHTS + 3)
    for item in demo_drops(first, HISTORY_NIGHTS, timezone.utc):
        path = inbox / item.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item.content)
    morning = f"{first + timedelta(days=HISTORY_NIGHTS)}T06:00:00+00:00"
    done = subprocess.run(
        [str(BIN / "usage-pipeline"), "run", "--as-of", morning],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # the demo's bad files
    assert "rejected" in done.stdout


@pytest.fixture(scope="module")
def deployments(
    pg_database: str, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Deployment]]:
    """Both deployments, started with yesterday's drop already in their inbox."""
    import boto3

    server = sa.engine.make_url(pg_database)
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    databases: list[str] = []
    started: list[Deployment] = []
    try:
        built = {}
        for name in ("local", "s3"):
            home = tmp_path_factory.mktemp(f"dagster_home_{name}")
            database = f"usage_pipeline_e2e_{name}_{uuid.uuid4().hex[:10]}"
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{database}"')
            databases.append(database)
            schema = f"e2e_{name}_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')  # in the session database
            warehouse = f"{pg_database}?options=-csearch_path%3D{schema}"
            (home / "dagster.yaml").write_text(INSTANCE_YAML, encoding="utf-8")
            # The missing-drop due day is date(now - grace) with a 00:00 deadline: yesterday
            # (the drop's day) for the local deployment, the day before for the S3 one.
            grace = "24h" if name == "local" else "48h"
            pipeline_yaml = home / "pipeline.yaml"
            pipeline_yaml.write_text(
                f"timezone: UTC\ndrop_deadline: '00:00'\ndrop_grace: {grace}\n", encoding="utf-8"
            )
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("USAGE_PIPELINE_", "DAGSTER_")) and k != "AWS_ENDPOINT_URL"
            }
            env.update(
                DAGSTER_HOME=str(home),
                USAGE_PIPELINE_DAGSTER_PG_URL=server.set(
                    drivername="postgresql", database=database
                ).render_as_string(hide_password=False),
                USAGE_PIPELINE_CONFIG=str(pipeline_yaml),
                USAGE_PIPELINE_WAREHOUSE_URL=warehouse,
                USAGE_PIPELINE_TIMEZONE="UTC",
            )
            if name == "local":
                inbox = home / "inbox"
                inbox.mkdir()
                env["USAGE_PIPELINE_INBOX"] = str(inbox)
                _load_history(inbox, env, home)
            else:
                client = boto3.client("s3", endpoint_url=s3_endpoint)
                bucket = f"e2e-drops-{uuid.uuid4().hex[:8]}"
                client.create_bucket(Bucket=bucket)
                client.put_object(Bucket=bucket, Key=f"{S3_PREFIX}/{DROP_KEY}", Body=DROP)
                env["USAGE_PIPELINE_INBOX"] = f"s3://{bucket}/{S3_PREFIX}"
                env["AWS_ENDPOINT_URL"] = s3_endpoint
            built[name] = Deployment(name=name, home=home, env=env, warehouse=warehouse)
        for deployment in built.values():
            started.append(deployment)
            deployment.start()
        local = built["local"]
        (Path(local.env["USAGE_PIPELINE_INBOX"]) / DROP_KEY).parent.mkdir(exist_ok=True)
        (Path(local.env["USAGE_PIPELINE_INBOX"]) / DROP_KEY).write_bytes(DROP)
        local.dropped_at = time.time()
        yield built
    finally:
        for deployment in started:
            deployment.stop()
        with admin.connect() as conn:
            for database in databases:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.dispose()


@pytest.mark.parametrize("name", ["local", "s3"])
def test_sensors_ingest_and_roll_up_a_drop(deployments: dict[str, Deployment], name: str) -> None:
    deployment = deployments[name]

    runs = deployment.wait_for(
        "inbox_sensor's ingest_files_job and followup_sensor's rollup_job to succeed",
        lambda: _sensor_runs_done(deployment),
    )

    ingest = _by_sensor(runs, "inbox_sensor", "ingest_files_job")
    rollup = _by_sensor(runs, "followup_sensor", "rollup_job")
    # Only the new drop: one ingestion run, one rollup run for its day, nothing for the
    # history the CLI already loaded (its cursor and the pending-work queue say so).
    assert len(ingest) == 1, deployment.diagnostics("one ingestion run")
    assert [_tag(r, "dagster/partition") for r in rollup] == [YESTERDAY]
    # Schedules fire by the clock (billing_periods_schedule every hour on the hour), so a
    # scheduled run may land inside the test's window; the sensors must launch nothing else.
    launched = [r for r in runs if _tag(r, "dagster/sensor_name")]
    assert len(launched) == 2, deployment.diagnostics("no other run launched by the sensors")
    if deployment.dropped_at:  # picked up within two sensor ticks (30 s each) of the drop
        assert ingest[0]["creationTime"] - deployment.dropped_at < 2 * 30 + 15
    assert _warehouse(deployment.warehouse) == {
        "user_activity_daily": USER_DAILY,
        "account_activity_daily": ACCOUNT_DAILY,
        "ingested_files": LEDGER,
    }
    for kind, instigator in (
        ("sensor", "inbox_sensor"),
        ("sensor", "followup_sensor"),
        ("schedule", "snapshot_schedule"),
        ("schedule", "missing_drop_schedule"),
    ):
        assert deployment.instigator_status(kind, instigator) == "RUNNING", instigator
    # Dagster may also keep a SKIPPED, evaluation-less record for the rollup run (seen with
    # dagster 1.13 on PostgreSQL); the evaluated records are what the checks decided.
    for (asset, check), run in (
        (("inbox_file", "validation"), ingest[0]),
        (("account_activity_daily", "rollup_reconciliation"), rollup[0]),
    ):
        executions = deployment.check_executions(asset, check)
        evaluated = [
            (c["runId"], c["status"])
            for c in executions
            if c["evaluation"] and c["runId"] == run["runId"]
        ]
        assert evaluated == [(run["runId"], "SUCCEEDED")], deployment.diagnostics(
            f"{asset}:{check}"
        )


@pytest.mark.parametrize(
    ("name", "expected"), [("local", "SUCCEEDED"), ("s3", "FAILED")], ids=["arrived", "missing"]
)
def test_drop_watch_job_launched_over_graphql(
    deployments: dict[str, Deployment], name: str, expected: str
) -> None:
    """Yesterday's drop is loaded: the check passes when yesterday is due (local) and fails
    when the due day is the day before, for which no file arrived (S3)."""
    deployment = deployments[name]
    deployment.wait_for("the sensor runs", lambda: _sensor_runs_done(deployment))

    run_id = deployment.launch("drop_watch_job", tags={AS_OF_TAG: NOW.isoformat()})

    assert deployment.wait_run(run_id) == "SUCCESS", deployment.diagnostics("drop_watch_job")
    executions = [
        c
        for c in deployment.check_executions("user_activity_drop_arrivals", "missing_drop")
        if c["runId"] == run_id
    ]
    assert [(c["status"], c["evaluation"]["severity"]) for c in executions] == [
        (expected, "ERROR")
    ], deployment.diagnostics("missing_drop")
    due = YESTERDAY if name == "local" else _day_before(YESTERDAY)
    assert due in executions[0]["evaluation"]["description"]


def _tag(run: dict[str, Any], key: str) -> str | None:
    return next((t["value"] for t in run["tags"] if t["key"] == key), None)


def _day_before(day: str) -> str:
    return (datetime.fromisoformat(day) - timedelta(days=1)).date().isoformat()
