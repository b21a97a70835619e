"""SPEC §4, §6 and §7 (issue 9 items 7–10): ``status`` and ``check`` never create or change
anything and say in one sentence (exit 2) when the warehouse lacks the project's tables; an
unsupported warehouse URL, missing S3 credentials and an unreachable endpoint are one
sentence, in seconds; concurrent ``run``s on one fresh DAGSTER_HOME both succeed; every
environment override is validated like the file key."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from usage_pipeline.cli import main
from usage_pipeline.config import ConfigError, load_config
from usage_pipeline.instance import instance_storage_error
from usage_pipeline.warehouse.engine import dispose_engines, normalise_url
from usage_pipeline.warehouse.tables import metadata
from usage_pipeline_tests.helpers import drop, rows

AS_OF = "2026-11-21T06:00:00+00:00"
GOOD = ["A1,u1,Reports,view,3,2026-11-20T10:00:00Z"]


def cli(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the CLI run in-process."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def tables(url: str) -> list[str]:
    engine = sa.create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            return sorted(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


# --- 7. status and check are read-only ---------------------------------------------------


def test_status_on_a_mistyped_sqlite_url_creates_nothing(project: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("USAGE_PIPELINE_WAREHOUSE_URL", "sqlite:///data/typo/warehouse.db")

    code, out, err = cli("status")

    assert (code, out) == (2, "")
    assert err == (
        "error: There is no warehouse at sqlite:///data/typo/warehouse.db (no such SQLite file):"
        " check the warehouse URL, or run 'usage-pipeline run' to create it.\n"
    )
    assert not (project / "data" / "typo").exists()


def test_status_and_check_on_a_database_without_the_tables(project: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    empty = project / "other.db"
    sqlite3.connect(empty).close()  # an existing SQLite file, not a warehouse of this project
    before = empty.read_bytes()
    monkeypatch.setenv("USAGE_PIPELINE_WAREHOUSE_URL", "sqlite:///other.db")
    path = drop(project, "usage.csv", GOOD)
    sentence = (
        "error: The warehouse sqlite:///other.db holds none of the project's tables: check the"
        " warehouse URL, or run 'usage-pipeline run' to create them.\n"
    )

    assert cli("status") == (2, "", sentence)
    assert cli("check", str(path), "--feed", "user_activity") == (2, "", sentence)
    assert empty.read_bytes() == before
    assert tables("sqlite:///other.db") == []


def test_status_and_check_on_a_postgres_schema_without_the_tables(
    project: Path, pg_url: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("USAGE_PIPELINE_WAREHOUSE_URL", pg_url)
    path = drop(project, "usage.csv", GOOD)
    shown = repr(sa.engine.make_url(normalise_url(pg_url)))
    sentence = (
        f"error: The warehouse {shown} holds none of the project's tables: check the warehouse"
        " URL, or run 'usage-pipeline run' to create them.\n"
    )

    assert cli("status") == (2, "", sentence)
    assert cli("check", str(path), "--feed", "user_activity") == (2, "", sentence)
    assert tables(pg_url) == []

    missing = sa.engine.make_url(normalise_url(pg_url)).set(database="no_such_database_9")
    monkeypatch.setenv(
        "USAGE_PIPELINE_WAREHOUSE_URL", missing.render_as_string(hide_password=False)
    )
    code, out, err = cli("status")
    assert (code, out) == (2, "")
    assert err.startswith(f"error: Cannot open the warehouse {missing!r}: ")
    assert 'database "no_such_database_9" does not exist' in err
    assert err.count("\n") == 1


def _snapshot(url: str) -> dict[str, list[tuple]]:
    return {name: rows(url, name) for name in sorted(metadata.tables)}


def test_status_and_check_change_nothing(project: Path, warehouse_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    dispose_engines()
    monkeypatch.setenv("USAGE_PIPELINE_WAREHOUSE_URL", warehouse_url)
    drop(project / "data" / "inbox", "user_activity/usage_2026-11-20.csv", GOOD)
    assert cli("run", "--as-of", AS_OF)[0] == 0
    before = _snapshot(warehouse_url)
    path = drop(project, "usage.csv", ["A1,u9,Reports,view,-1,2026-11-20T10:00:00Z"])

    code, out, _err = cli("status")
    checked = cli("check", str(path), "--feed", "user_activity")

    assert code == 1  # the missing-drop check of today's clock fails: status ran
    assert "#1     loaded     user_activity/usage_2026-11-20.csv  1/1 rows loaded" in out
    assert checked[0] == 1 and checked[1].endswith("count '-1' is negative).\n")
    assert _snapshot(warehouse_url) == before


# --- 8. unsupported URLs, S3 credentials and endpoints --------------------------------------


@pytest.mark.parametrize(
    "verb", [["run"], ["status"], ["check", "usage.csv", "--feed", "user_activity"]]
)
def test_an_unsupported_warehouse_url_is_one_sentence(project: Path, monkeypatch, verb) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("USAGE_PIPELINE_WAREHOUSE_URL", "mysql://app:secret@db.example.com/usage")
    drop(project, "usage.csv", GOOD)

    assert cli(*verb) == (
        2,
        "",
        "error: The warehouse URL mysql://app:***@db.example.com/usage is not supported: use"
        " sqlite:///PATH or postgresql://USER@HOST/DATABASE.\n",
    )
    assert sorted(p.name for p in (project / "data").iterdir()) == ["inbox"]


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no_credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no_config"))


def _timed(*args: str) -> tuple[float, tuple[int, str, str]]:
    start = time.monotonic()
    result = cli(*args)
    return time.monotonic() - start, result


def test_s3_without_credentials_says_so_in_seconds(
    project: Path, s3_endpoint: str, no_credentials: None, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)

    elapsed, result = _timed("run", "--inbox", "s3://usage-drops/drops", "--as-of", AS_OF)

    assert result == (
        2,
        "",
        "error: The inbox s3://usage-drops/drops cannot be listed: Unable to locate credentials.\n",
    )
    assert elapsed < 10


@pytest.fixture
def black_hole() -> Iterator[str]:
    """An endpoint that never completes a connection: a listening socket whose backlog is
    full, so the kernel drops further connection attempts as an unreachable host does."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for filler in fillers:
            filler.close()
        server.close()


def test_an_unreachable_s3_endpoint_says_so_in_seconds(
    project: Path, black_hole: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", black_hole)

    elapsed, result = _timed("run", "--inbox", "s3://usage-drops/drops", "--as-of", AS_OF)

    assert result == (
        2,
        "",
        f"error: The inbox s3://usage-drops/drops cannot be listed: Connect timeout on endpoint"
        f' URL: "{black_hole}/usage-drops?list-type=2&prefix=drops%2F&encoding-type=url".\n',
    )
    assert elapsed < 15  # two attempts of a 3-second connect timeout, not boto's minutes


# --- 9. concurrent runs on one fresh DAGSTER_HOME ------------------------------------------


def test_concurrent_runs_on_one_fresh_instance_all_succeed(tmp_path: Path) -> None:
    executable = Path(sys.executable).parent / "usage-pipeline"
    drop(tmp_path / "data" / "inbox", "user_activity/usage_2026-11-20.csv", GOOD)
    url = f"sqlite:///{tmp_path / 'data' / 'warehouse.db'}"
    for attempt in range(2):  # a fresh instance each time: the race is in creating it
        home = tmp_path / f"dagster_home_{attempt}"
        home.mkdir()
        env = {
            "PATH": str(executable.parent),
            "HOME": str(tmp_path),
            "DAGSTER_HOME": str(home),
            "USAGE_PIPELINE_WAREHOUSE_URL": url,
        }
        runs = [
            subprocess.Popen(
                [str(executable), "run", "--as-of", AS_OF],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        results = [(process.wait(timeout=300), *process.communicate()) for process in runs]
        for code, out, err in results:
            assert code == 0, (out, err)
            assert "error:" not in err and "Traceback" not in err
    assert rows(url, "ingested_files", columns="source_key, status") == [
        ("user_activity/usage_2026-11-20.csv", "loaded")
    ]


def _raised_in(filename: str) -> sa.exc.OperationalError:
    """An OperationalError whose innermost non-SQLAlchemy frame is in ``filename``."""
    code = compile(
        "raise OperationalError('CREATE TABLE t', {}, Exception('table t already exists'))",
        filename,
        "exec",
    )
    try:
        exec(code, {"OperationalError": sa.exc.OperationalError})
    except sa.exc.OperationalError as exc:
        return exc
    raise AssertionError("not raised")


def test_a_dagster_storage_error_is_not_called_a_warehouse_error() -> None:
    storage = f"{Path(dg.__file__).parent}/_core/storage/schedules/sqlite_schedule_storage.py"

    assert instance_storage_error(_raised_in(storage)) == (
        "The Dagster instance's storage could not be used: table t already exists."
    )
    assert instance_storage_error(_raised_in("/work/usage_pipeline/ingest.py")) is None


# --- 10. environment overrides are validated like the file -------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "USAGE_PIPELINE_INBOX",
            " ",
            "USAGE_PIPELINE_INBOX (config key 'inbox') must be a non-empty string, got ' '.",
        ),
        (
            "USAGE_PIPELINE_INBOX",
            "s3://",
            "USAGE_PIPELINE_INBOX (config key 'inbox') must be a folder or an s3://bucket/prefix"
            " URI, got 's3://'.",
        ),
        (
            "USAGE_PIPELINE_WAREHOUSE_URL",
            "\t",
            "USAGE_PIPELINE_WAREHOUSE_URL (config key 'warehouse') must be a non-empty string,"
            " got '\\t'.",
        ),
        (
            "USAGE_PIPELINE_TIMEZONE",
            "Mars/Olympus",
            "USAGE_PIPELINE_TIMEZONE (config key 'timezone') must be an IANA time zone name, got"
            " 'Mars/Olympus'.",
        ),
    ],
)
def test_environment_overrides_are_validated_like_the_file(
    project: Path, variable: str, value: str, message: str
) -> None:
    key = message.split("'")[1]
    path = project / "pipeline.yaml"
    path.write_text(yaml.safe_dump({key: value}))
    with pytest.raises(ConfigError) as from_file:
        load_config(path, environ={})
    with pytest.raises(ConfigError) as from_env:
        load_config(environ={variable: value})  # no data/pipeline.yaml in the project
    assert str(from_env.value) == message
    assert str(from_file.value) == message.replace(f"{variable} (config", "Config").replace(
        f"'{key}')", f"'{key}'"
    )


def test_cli_overrides_are_validated_like_the_file(project: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("USAGE_PIPELINE_INBOX", " ")
    assert cli("status") == (
        2,
        "",
        "error: USAGE_PIPELINE_INBOX (config key 'inbox') must be a non-empty string, got ' '.\n",
    )
    monkeypatch.delenv("USAGE_PIPELINE_INBOX")
    assert cli("run", "--inbox", " ") == (
        2,
        "",
        "error: --inbox (config key 'inbox') must be a non-empty string, got ' '.\n",
    )
    assert sorted(p.name for p in (project / "data").iterdir()) == ["inbox"]
