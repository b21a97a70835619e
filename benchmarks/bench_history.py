"""Benchmark nightly compute against history and users: flat in history, linear in users.

Run it from the repository root (nothing else running; check ``uptime`` first)::

    .venv/bin/python benchmarks/bench_history.py [--repeat 3] [--only nightly,users]
        [--skip-sqlite] [--skip-postgres] [--postgres-url URL]

* ``nightly``: one night's work — ingest a 30,000-row ``user_activity`` file for a new day,
  rebuild that day's rollups, build that day's account and user snapshots — on a warehouse
  holding 365 days of history (A) against one holding 30 days (B). Target ratio <= 1.2.
* ``users``: the user snapshot of one date over a 30-day window with 100,000 users (A)
  against 20,000 users (B): linear means 5; target ratio <= 6.

History is generated in SQL (30,000 rollup rows a day, 20,000 users over 1,000 accounts,
the same rows in the contribution table, month and activity state built from them, every
earlier snapshot date recorded as built), then each measurement runs the pipeline's own
functions in a fresh process (PostgreSQL: after VACUUM ANALYZE and a CHECKPOINT, as a DBA
would after a bulk load): the figures are the pipeline's work, not Dagster's.
A and B alternate pair by pair; min and median are printed, with the ratio per pair.
Throwaway PostgreSQL databases ``usage_pipeline_bench_*`` are dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
ROWS_PER_DAY = 30_000
USERS = 20_000
ACCOUNTS = 1_000
LAST_DAY = date(2026, 11, 20)  # history ends here; measured nights follow it
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _numbers(conn: sa.Connection, count: int) -> str:
    """A row source of ``n`` = 0 .. count-1 in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return f"(SELECT generate_series(0, {count - 1}) AS n)"
    return (
        f"(WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq"
        f" WHERE n < {count - 1}) SELECT n FROM seq)"
    )


def _day_expr(conn: sa.Connection, offset: str) -> str:
    if conn.dialect.name == "postgresql":
        return f"(DATE '{LAST_DAY}' - {offset})"
    return f"date('{LAST_DAY}', '-' || {offset} || ' days')"


def populate(url: str, days: int, users: int, rows_per_day: int) -> None:
    """``days`` days of history ending on LAST_DAY, in the pipeline's own tables."""
    from usage_pipeline.activity_state import ACCOUNT_STATE, USER_STATE, backfill_state
    from usage_pipeline.warehouse.engine import get_engine

    engine = get_engine(url)
    with engine.begin() as conn:
        rows, day_numbers = _numbers(conn, rows_per_day), _numbers(conn, days)
        day = _day_expr(conn, "d.n")
        mod = "%%" if conn.dialect.name == "postgresql" else "%"  # psycopg placeholders
        user = f"((r.n + d.n * 7) {mod} {users})"
        conn.exec_driver_sql(
            "INSERT INTO user_activity_contributions"
            " (file_id, activity_date, account_id, user_id, module, activity, count)"
            f" SELECT 0, {day}, 'a' || ({user} {mod} {ACCOUNTS}), 'u' || {user},"
            f" 'm' || (r.n {mod} 12), 'act' || (r.n / {users}), 1 + (r.n {mod} 50)"
            f" FROM {day_numbers} AS d CROSS JOIN {rows} AS r ORDER BY d.n DESC, r.n"
        )
        # Rows are laid down as night after night of rollups lay them: oldest day first, each
        # day in key order (the user rollup inserts ORDER BY its key; a PostgreSQL heap and
        # SQLite's rowids keep insertion order, so a window's rows stay together, in key order)
        conn.exec_driver_sql(
            "INSERT INTO user_activity_daily SELECT activity_date, account_id, user_id, module,"
            " activity, count FROM user_activity_contributions"
            " ORDER BY activity_date, account_id, user_id, module, activity"
        )
        conn.exec_driver_sql(
            "INSERT INTO account_activity_daily SELECT activity_date, account_id, module,"
            " activity, 'user_activity', SUM(count), COUNT(*) FROM user_activity_daily"
            " GROUP BY activity_date, account_id, module, activity"
            " ORDER BY activity_date, account_id, module, activity"
        )
        for spec in (USER_STATE, ACCOUNT_STATE):
            backfill_state(conn, spec)
        for table in ("account_usage_snapshot", "user_usage_snapshot"):
            conn.exec_driver_sql(
                "INSERT INTO snapshot_dates (snapshot_table, snapshot_date, built_at)"
                f" SELECT '{table}', {day}, CURRENT_TIMESTAMP FROM {day_numbers} AS d"
            )


def settle(url: str) -> None:
    """After a bulk load, what a DBA does before measuring: statistics and a checkpoint
    (PostgreSQL), so autovacuum and the checkpointer do not run during the measurement."""
    if not url.startswith("postgresql"):
        return
    import psycopg

    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")


def write_night(path: Path, day: date, users: int, rows: int) -> None:
    lines = ["account_id,user_id,module,activity,count,timestamp"]
    for n in range(rows):
        user = (n * 3 + day.toordinal()) % users
        lines.append(
            f"a{user % ACCOUNTS},u{user},m{n % 12},act{n // users},{1 + n % 50},"
            f"{day}T{n % 24:02d}:{n % 60:02d}:00Z"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


NIGHT = """
import sys, time
from datetime import date
from pathlib import Path
from usage_pipeline import rollups, snapshots
from usage_pipeline.config import PipelineConfig
from usage_pipeline.ingest import ingest_file
from usage_pipeline.sources.local import LocalFolderSource
from usage_pipeline.warehouse.engine import get_engine
url, inbox, key, day = sys.argv[1], sys.argv[2], sys.argv[3], date.fromisoformat(sys.argv[4])
engine = get_engine(url)
source = LocalFolderSource(inbox)
start = time.perf_counter()
outcome = ingest_file(engine, source, source.stat(key), PipelineConfig(inbox=inbox, warehouse=url))
assert outcome.status == "loaded", outcome.error
stages = [time.perf_counter()]
for name in ("user_activity_daily", "account_activity_daily"):
    with engine.begin() as conn:
        rollups.rebuild_rollup_day(conn, rollups.rollup_named(name), day)
    stages.append(time.perf_counter())
for table in ("account_usage_snapshot", "user_usage_snapshot"):
    with engine.begin() as conn:
        snapshots.build_snapshot_day(conn, table, day)
    stages.append(time.perf_counter())
print(stages[-1] - start, *(b - a for a, b in zip([start, *stages], stages)))
"""
STAGES = ("ingest", "user rollup", "account rollup", "account snapshot", "user snapshot")

USER_SNAPSHOT = """
import sys, time
from datetime import date
from usage_pipeline import snapshots
from usage_pipeline.warehouse.engine import get_engine
engine = get_engine(sys.argv[1])
day = date.fromisoformat(sys.argv[2])
start = time.perf_counter()
with engine.begin() as conn:
    rows = snapshots.build_snapshot_day(conn, "user_usage_snapshot", day)
print(time.perf_counter() - start, rows)
"""


def child_figures(script: str, *args: str) -> list[float]:
    """The numbers a measurement script prints (first: its total seconds)."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=REPO
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return [float(v) for v in done.stdout.split()]


def child(script: str, *args: str) -> float:
    return child_figures(script, *args)[0]


def stage_medians(a: list[list[float]], b: list[list[float]]) -> str:
    """Median seconds of each stage of the nightly script, A against B."""
    lines = []
    for index, name in enumerate(STAGES, start=1):
        left = statistics.median(r[index] for r in a)
        right = statistics.median(r[index] for r in b)
        lines.append(f"    {name:<17} A {left:6.2f}  B {right:6.2f}")
    return "\n".join(["  stages (median s):", *lines])


def report(title: str, a: list[float], b: list[float], target: float) -> str:
    ratios = [x / y for x, y in zip(a, b, strict=True)]

    def figures(values: list[float]) -> str:
        return f"min {min(values):7.2f}  median {statistics.median(values):7.2f}"

    verdict = "met" if statistics.median(ratios) <= target else "MISSED"
    return (
        f"{title}\n  A s     {figures(a)}\n  B s     {figures(b)}\n"
        f"  A/B     {figures(ratios)}   target <= {target:g}: {verdict} ({len(ratios)} pairs)"
    )


class Databases:
    def __init__(self, kind: str, workdir: Path, server: str) -> None:
        self.kind, self.workdir, self.server, self.created = kind, workdir, server, []

    def fresh(self) -> str:
        name = f"usage_pipeline_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        if self.kind == "sqlite":
            return f"sqlite:///{self.workdir / (name + '.db')}"
        import psycopg

        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"postgresql+psycopg://{self.server.split('://', 1)[1].rsplit('/', 1)[0]}/{name}"

    def drop_all(self) -> None:
        import psycopg

        for name in self.created:
            with psycopg.connect(self.server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_nightly(dbs: Databases, args: argparse.Namespace) -> str:
    start = time.perf_counter()
    long_url, short_url = dbs.fresh(), dbs.fresh()
    populate(long_url, 365, USERS, ROWS_PER_DAY)
    populate(short_url, 30, USERS, ROWS_PER_DAY)
    settle(long_url)
    settle(short_url)
    print(f"  [{dbs.kind}] history generated in {time.perf_counter() - start:.0f} s", flush=True)
    inbox = args.workdir / f"inbox_{dbs.kind}"

    def night(url: str, index: int, label: str) -> list[float]:
        day = LAST_DAY + timedelta(days=index + 1)
        key = f"user_activity/{label}_usage_{day}.csv"
        write_night(inbox / key, day, USERS, ROWS_PER_DAY)
        return child_figures(NIGHT, url, str(inbox), key, day.isoformat())

    a, b = [], []
    for index in range(args.repeat):
        a.append(night(long_url, index, "long"))
        b.append(night(short_url, index, "short"))
    title = f"[{dbs.kind}] nightly (30,000 rows + snapshots): 365 days of history (A) vs 30 (B)"
    totals = report(title, [r[0] for r in a], [r[0] for r in b], 1.2)
    return f"{totals}\n{stage_medians(a, b)}"


def bench_users(dbs: Databases, args: argparse.Namespace) -> str:
    big, small = dbs.fresh(), dbs.fresh()
    populate(big, 30, 100_000, 150_000)
    populate(small, 30, 20_000, 30_000)
    settle(big)
    settle(small)
    a, b = [], []
    for _ in range(args.repeat):
        a.append(child(USER_SNAPSHOT, big, LAST_DAY.isoformat()))
        b.append(child(USER_SNAPSHOT, small, LAST_DAY.isoformat()))
    return report(
        f"[{dbs.kind}] user snapshot, 30-day window: 100,000 users (A) vs 20,000 (B)", a, b, 6.0
    )


def on_each_database(
    args: argparse.Namespace, measure: Callable[[Databases, argparse.Namespace], None]
) -> None:
    """``measure`` on SQLite, then PostgreSQL (unless skipped), in a scratch folder
    (``args.workdir``), dropping the throwaway databases after each; load average around."""
    choices = (("sqlite", args.skip_sqlite), ("postgres", args.skip_postgres))
    with tempfile.TemporaryDirectory(prefix="usage_pipeline_bench_") as tmp:
        args.workdir = Path(tmp)
        print(f"load average: {os.getloadavg()}; repeat {args.repeat}", flush=True)
        for kind in [kind for kind, skip in choices if not skip]:
            dbs = Databases(kind, args.workdir, args.postgres_url)
            try:
                measure(dbs, args)
            finally:
                dbs.drop_all()
        print(f"load average: {os.getloadavg()}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="nightly,users")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args()
    only = set(args.only.split(","))

    def measure(dbs: Databases, args: argparse.Namespace) -> None:
        if "users" in only:
            print(bench_users(dbs, args), flush=True)
        if "nightly" in only:
            print(bench_nightly(dbs, args), flush=True)

    on_each_database(args, measure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
