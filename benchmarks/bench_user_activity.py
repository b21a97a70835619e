"""Benchmark the ``user_activity`` ingestion path against a plain bulk load of the same file.

Run it from the repository root::

    .venv/bin/python benchmarks/bench_user_activity.py [--rows N] [--postgres-url URL]
        [--skip-sqlite] [--skip-postgres] [--workdir DIR]

What one run does:

1. Generates a synthetic ``user_activity`` CSV of ``--rows`` rows (default 5,000,000;
   2,000 accounts, 100,000 users, 12 modules, 60 activities, ``count`` 1-50, UTC timestamps
   within 2026-11-20) as ``<workdir>/inbox/user_activity/usage_2026-11-20.csv``.
2. For each database -- a throwaway PostgreSQL database ``usage_pipeline_bench_<pid>``
   created through ``--postgres-url`` and dropped at the end, and a SQLite file in the
   workdir -- it measures:

   * the **pipeline**: ``get_engine`` (creates the tables), ``ingest_file`` on the file
     (ledger, validation, load into ``user_activity_contributions``), then in one
     transaction ``rebuild_user_activity_day`` and ``rebuild_account_activity_day`` for
     every day the file touched. Stages: ingest, user rollup, account rollup (including the
     commit); the total is their sum.
   * the **baseline**, the least work that gets the same daily table out of the same file
     on the same database: PostgreSQL ``COPY ... FROM STDIN (FORMAT csv, HEADER true)`` of
     the file's bytes into an UNLOGGED table, then one ``INSERT ... SELECT ... GROUP BY``
     into a table keyed like ``user_activity_daily``; SQLite ``executemany`` of the rows
     (read with the ``csv`` module, in batches, one transaction) into a plain table, then
     the same ``GROUP BY`` insert, on a connection with the pipeline's pragmas (WAL,
     ``synchronous=NORMAL``, two worker threads for large sorts).

   Every measurement runs in its own freshly spawned process, so its peak RSS
   (``ru_maxrss``) is its own.
3. Prints seconds per stage, rows/s, the ratio pipeline total / baseline total, the peak
   RSS, and the verdicts on the targets (ratio <= 1.0 on each database, first bar 1.5;
   peak RSS <= 1 GiB).

A missed target is a measurement, not a failure: the exit status is non-zero only when
something crashed. The default workdir is a temporary directory removed at the end; a
``--workdir`` you pass is kept (the SQLite file in it is recreated on every run).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from multiprocessing import get_context
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import make_url

from usage_pipeline import rollups
from usage_pipeline.config import PipelineConfig
from usage_pipeline.ingest import ingest_file
from usage_pipeline.sources.local import LocalFolderSource
from usage_pipeline.warehouse.engine import (
    AGGREGATE_SETTINGS,
    SQLITE_SORT_THREADS,
    dispose_engines,
    get_engine,
    normalise_url,
)

DEFAULT_ROWS = 5_000_000
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
FEED = "user_activity"
DAY = date(2026, 11, 20)
CSV_NAME = f"usage_{DAY.isoformat()}.csv"
HEADER = ["account_id", "user_id", "module", "activity", "count", "timestamp"]
ACCOUNTS, USERS, MODULES, ACTIVITIES = 2_000, 100_000, 12, 60
GENERATION_BLOCK = 500_000
SQLITE_BATCH = 100_000
COPY_BLOCK = 1 << 20
SEED = 20261120
RATIO_TARGET = 1.0  # goal: the pipeline as fast as the hand-written SQL
RATIO_FIRST_BAR = 1.5
RSS_TARGET_MIB = 1024.0
BENCH_DATABASE = re.compile(r"usage_pipeline_bench_\d+")

T = TypeVar("T")


@dataclass
class Measurement:
    """One measured run: stage name -> seconds (in order), rows handled, peak RSS."""

    label: str
    stages: dict[str, float] = field(default_factory=dict)
    rows: int = 0
    peak_rss_mib: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.stages.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.total if self.total else 0.0


@dataclass
class DatabaseResult:
    """The pipeline and baseline measurements of one database, and their cross-check."""

    database: str
    pipeline: Measurement
    baseline: Measurement
    check: str

    @property
    def ratio(self) -> float:
        return self.pipeline.total / self.baseline.total


# --------------------------------------------------------------------------- data


def _label_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lookup arrays: account and user per user index, module, activity, time of day."""
    users = np.array([f"u{k:06d}" for k in range(USERS)], dtype=object)
    accounts = np.array([f"a{k % ACCOUNTS:04d}" for k in range(USERS)], dtype=object)
    modules = np.array([f"module_{k:02d}" for k in range(MODULES)], dtype=object)
    activities = np.array([f"activity_{k:02d}" for k in range(ACTIVITIES)], dtype=object)
    midnight = datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc)
    stamps = np.array(
        [(midnight + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ") for s in range(86_400)],
        dtype=object,
    )
    return accounts, users, modules, activities, stamps


def generate_csv(path: Path, rows: int, seed: int = SEED) -> None:
    """Write ``rows`` synthetic ``user_activity`` rows to ``path`` in bounded-memory blocks."""
    rng = np.random.default_rng(seed)
    accounts, users, modules, activities, stamps = _label_arrays()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        handle.write(",".join(HEADER) + "\n")
        for start in range(0, rows, GENERATION_BLOCK):
            size = min(GENERATION_BLOCK, rows - start)
            user = rng.integers(0, USERS, size)
            block = pd.DataFrame(
                {
                    "account_id": accounts[user],
                    "user_id": users[user],
                    "module": modules[rng.integers(0, MODULES, size)],
                    "activity": activities[rng.integers(0, ACTIVITIES, size)],
                    "count": rng.integers(1, 51, size),
                    "timestamp": stamps[rng.integers(0, 86_400, size)],
                }
            )
            block.to_csv(handle, header=False, index=False, lineterminator="\n")


# --------------------------------------------------------------------------- helpers


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed(stages: dict[str, float], name: str) -> Iterator[None]:
    """Add the wall-clock seconds of the block to ``stages[name]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        stages[name] = stages.get(name, 0.0) + time.perf_counter() - start


def run_isolated(function: Callable[..., T], *args: object) -> T:
    """Run ``function(*args)`` in a freshly spawned process and return its result."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as a libpq connection URI for psycopg."""
    parsed = make_url(normalise_url(url)).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database of the same server."""
    parsed = make_url(normalise_url(url)).set(database=database)
    return parsed.render_as_string(hide_password=False)


@contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    """Create ``usage_pipeline_bench_<pid>``, yield its SQLAlchemy URL, drop it afterwards."""
    name = f"usage_pipeline_bench_{os.getpid()}"
    if not BENCH_DATABASE.fullmatch(name):  # only ever drop a database this script created
        raise ValueError(f"refusing to manage database {name!r}")
    identifier = sql.Identifier(name)
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(identifier))
    try:
        yield with_database(admin_url, name)
    finally:
        with psycopg.connect(libpq_url(admin_url), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier))


def postgres_checkpoint(url: str) -> None:
    """Flush dirty buffers so a previous measurement's checkpoint does not slow the next."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("CHECKPOINT")


# --------------------------------------------------------------------------- measurements


def measure_pipeline(url: str, inbox: str, key: str) -> Measurement:
    """The real ingestion path on ``url`` (run in a child process)."""
    engine = get_engine(url)
    source = LocalFolderSource(inbox)
    obj = source.stat(key)
    if obj is None:
        raise FileNotFoundError(f"{key} is not in {inbox}")
    config = PipelineConfig(inbox=inbox, warehouse=url)
    result = Measurement("pipeline")
    with timed(result.stages, "ingest"):
        outcome = ingest_file(engine, source, obj, config)
    if outcome.status != "loaded" or outcome.rows_rejected:
        raise RuntimeError(f"unexpected ingest outcome: {outcome.status} ({outcome.error})")
    result.rows = outcome.rows_total
    for name in ("user_activity_daily", "account_activity_daily"):
        rollup = rollups.rollup_named(name)
        with timed(result.stages, name.split("_")[0] + " rollup"):
            for day in outcome.days_touched:  # each day in its own transaction, as the asset
                with engine.begin() as conn:
                    rollups.rebuild_rollup_day(conn, rollup, day)
    dispose_engines()
    result.peak_rss_mib = peak_rss_mib()
    return result


def postgres_baseline_sql() -> tuple[str, str, str]:
    """DDL of the raw and daily tables, and the aggregating insert."""
    raw = (
        "CREATE UNLOGGED TABLE baseline_raw (account_id text, user_id text, module text,"
        ' activity text, count bigint, "timestamp" timestamptz)'
    )
    daily = (
        "CREATE TABLE baseline_daily (activity_date date, account_id text, user_id text,"
        " module text, activity text, count bigint NOT NULL,"
        " PRIMARY KEY (activity_date, account_id, user_id, module, activity))"
    )
    insert = (
        "INSERT INTO baseline_daily"
        " SELECT (\"timestamp\" AT TIME ZONE 'UTC')::date, account_id, user_id, module,"
        " activity, SUM(count) FROM baseline_raw"
        " GROUP BY 1, account_id, user_id, module, activity"
        " ORDER BY 1, account_id, user_id, module, activity"
    )
    return raw, daily, insert


def measure_postgres_baseline(url: str, csv_path: str) -> Measurement:
    """``COPY`` the file into an UNLOGGED table, then one GROUP BY insert (child process)."""
    raw_ddl, daily_ddl, insert = postgres_baseline_sql()
    result = Measurement("baseline")
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(raw_ddl)
        conn.execute(daily_ddl)
        conn.commit()
        copy_sql = (
            'COPY baseline_raw (account_id, user_id, module, activity, count, "timestamp")'
            " FROM STDIN (FORMAT csv, HEADER true)"
        )
        with timed(result.stages, "load"), conn.cursor() as cursor:
            with cursor.copy(copy_sql) as copy, open(csv_path, "rb") as handle:
                while block := handle.read(COPY_BLOCK):
                    copy.write(block)
            result.rows = cursor.rowcount
        with timed(result.stages, "aggregate"):
            for name, value in AGGREGATE_SETTINGS.items():  # as the pipeline's rollups do
                conn.execute(f"SET LOCAL {name} = '{value}'")
            conn.execute(insert)
            conn.commit()
    result.peak_rss_mib = peak_rss_mib()
    return result


def _csv_batches(path: str, size: int) -> Iterator[list[list[str]]]:
    """The data rows of a CSV file in lists of at most ``size`` rows."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        batch: list[list[str]] = []
        for row in reader:
            batch.append(row)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


def measure_sqlite_baseline(db_path: str, csv_path: str) -> Measurement:
    """``executemany`` the rows into a plain table, then one GROUP BY insert (child process).

    The connection uses the pipeline's pragmas (WAL, ``synchronous=NORMAL``, two worker
    threads for large sorts).
    """
    result = Measurement("baseline")
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=120)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA threads={SQLITE_SORT_THREADS}")
        conn.execute(
            "CREATE TABLE baseline_raw (account_id TEXT, user_id TEXT, module TEXT,"
            ' activity TEXT, count INTEGER, "timestamp" TEXT)'
        )
        conn.execute(
            "CREATE TABLE baseline_daily (activity_date DATE, account_id TEXT, user_id TEXT,"
            " module TEXT, activity TEXT, count BIGINT NOT NULL,"
            " PRIMARY KEY (activity_date, account_id, user_id, module, activity))"
        )
        insert_raw = "INSERT INTO baseline_raw VALUES (?, ?, ?, ?, ?, ?)"
        with timed(result.stages, "load"):
            conn.execute("BEGIN IMMEDIATE")
            for batch in _csv_batches(csv_path, SQLITE_BATCH):
                conn.executemany(insert_raw, batch)
                result.rows += len(batch)
        with timed(result.stages, "aggregate"):
            conn.execute(
                "INSERT INTO baseline_daily"
                ' SELECT substr("timestamp", 1, 10), account_id, user_id, module, activity,'
                " SUM(count) FROM baseline_raw"
                ' GROUP BY substr("timestamp", 1, 10), account_id, user_id, module, activity'
                ' ORDER BY substr("timestamp", 1, 10), account_id, user_id, module, activity'
            )
            conn.execute("COMMIT")
    finally:
        conn.close()
    result.peak_rss_mib = peak_rss_mib()
    return result


def cross_check(url: str) -> str:
    """Compare rows and count sums of ``user_activity_daily`` and ``baseline_daily``."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            pipeline = conn.exec_driver_sql(
                "SELECT COUNT(*), SUM(count) FROM user_activity_daily"
            ).one()
            baseline = conn.exec_driver_sql("SELECT COUNT(*), SUM(count) FROM baseline_daily").one()
    finally:
        engine.dispose()
    same = tuple(pipeline) == tuple(baseline)
    verdict = "match" if same else "MISMATCH"
    return (
        f"daily rows/sum {verdict}: pipeline {pipeline[0]:,}/{pipeline[1]:,},"
        f" baseline {baseline[0]:,}/{baseline[1]:,}"
    )


# --------------------------------------------------------------------------- orchestration


def bench_postgres(admin_url: str, inbox: Path, key: str, csv_path: Path) -> DatabaseResult:
    """Pipeline then baseline on a throwaway PostgreSQL database."""
    with throwaway_database(admin_url) as url:
        postgres_checkpoint(url)
        pipeline = run_isolated(measure_pipeline, url, str(inbox), key)
        postgres_checkpoint(url)
        baseline = run_isolated(measure_postgres_baseline, url, str(csv_path))
        check = cross_check(url)
    return DatabaseResult("PostgreSQL", pipeline, baseline, check)


def bench_sqlite(workdir: Path, inbox: Path, key: str, csv_path: Path) -> DatabaseResult:
    """Pipeline then baseline on a fresh SQLite file in the workdir."""
    db_path = workdir / "warehouse.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{db_path}"
    pipeline = run_isolated(measure_pipeline, url, str(inbox), key)
    baseline = run_isolated(measure_sqlite_baseline, str(db_path), str(csv_path))
    return DatabaseResult("SQLite", pipeline, baseline, cross_check(url))


def describe(result: DatabaseResult) -> str:
    """Per-database detail: stage seconds, rows/s, RSS, ratio, cross-check."""
    lines = [f"== {result.database}"]
    for run in (result.pipeline, result.baseline):
        stages = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in run.stages.items())
        lines.append(
            f"  {run.label:<9} {stages}; total {run.total:.2f}s,"
            f" {run.rows_per_second:,.0f} rows/s, peak RSS {run.peak_rss_mib:,.0f} MiB"
        )
    lines.append(f"  ratio pipeline/baseline: {result.ratio:.2f}")
    lines.append(f"  {result.check}")
    return "\n".join(lines)


def summary(results: list[DatabaseResult], rows: int, generation_seconds: float) -> str:
    """The closing table and the verdicts on the targets."""
    header = (
        f"{'database':<11}{'run':<10}{'stage 1':>9}{'stage 2':>9}{'stage 3':>9}"
        f"{'total s':>9}{'rows/s':>11}{'RSS MiB':>9}{'ratio':>7}"
    )
    lines = [
        f"SUMMARY ({rows:,} rows; generation {generation_seconds:.1f}s, not in ratios)",
        "pipeline stages: ingest, user rollup, account rollup; baseline: load, aggregate",
        header,
        "-" * len(header),
    ]
    for result in results:
        for run in (result.pipeline, result.baseline):
            stages = [*run.stages.values(), None, None, None][:3]
            cells = "".join(f"{s:>9.2f}" if s is not None else f"{'-':>9}" for s in stages)
            ratio = f"{result.ratio:>7.2f}" if run is result.pipeline else f"{'':>7}"
            lines.append(
                f"{result.database:<11}{run.label:<10}{cells}{run.total:>9.2f}"
                f"{run.rows_per_second:>11,.0f}{run.peak_rss_mib:>9,.0f}{ratio}"
            )
    lines.append("")
    for result in results:
        verdict = (
            "met"
            if result.ratio <= RATIO_TARGET
            else "first bar met"
            if result.ratio <= RATIO_FIRST_BAR
            else "MISSED"
        )
        lines.append(
            f"{result.database} ratio <= {RATIO_TARGET:.1f} (first bar {RATIO_FIRST_BAR:.1f}):"
            f" {verdict} ({result.ratio:.2f})"
        )
    if results:
        peak = max(r.pipeline.peak_rss_mib for r in results)
        verdict = "PASS" if peak <= RSS_TARGET_MIB else "MISS"
        lines.append(f"peak RSS <= 1 GiB: {verdict} (pipeline max {peak:,.0f} MiB)")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows in the file")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="server to create the throwaway database on (default: %(default)s)",
    )
    parser.add_argument("--skip-sqlite", action="store_true", help="do not measure SQLite")
    parser.add_argument("--skip-postgres", action="store_true", help="do not measure PostgreSQL")
    parser.add_argument(
        "--workdir", type=Path, help="where the file and SQLite database go (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    if args.rows <= 0:
        parser.error("--rows must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_user_activity_"))
    workdir = workdir.resolve()
    try:
        inbox = workdir / "inbox"
        key = f"{FEED}/{CSV_NAME}"
        csv_path = inbox / key
        shutil.rmtree(workdir / "quarantine", ignore_errors=True)
        start = time.perf_counter()
        generate_csv(csv_path, args.rows)
        generated = time.perf_counter() - start
        size_mib = csv_path.stat().st_size / 2**20
        print(f"generated {args.rows:,} rows ({size_mib:,.0f} MiB) in {generated:.1f}s", flush=True)
        results: list[DatabaseResult] = []
        if not args.skip_postgres:
            results.append(bench_postgres(args.postgres_url, inbox, key, csv_path))
            print(describe(results[-1]), flush=True)
        if not args.skip_sqlite:
            results.append(bench_sqlite(workdir, inbox, key, csv_path))
            print(describe(results[-1]), flush=True)
        print("\n" + summary(results, args.rows, generated), flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
