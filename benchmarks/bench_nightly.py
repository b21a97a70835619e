"""Benchmark the cost of a night: does it grow with new data only?

Run it from the repository root (nothing else running; check ``uptime`` first)::

    .venv/bin/python benchmarks/bench_nightly.py [--repeat 5] [--files 200] [--rows 1000]
        [--history 2000] [--only night,noop,history] [--skip-sqlite] [--skip-postgres]
        [--postgres-url URL]

Three comparisons, each timed as whole processes, A and B alternating pair by pair so that
a drift of the machine's speed hits both; it prints wall and CPU seconds (min and median)
and the ratio A/B per pair (min and median):

* ``night``: ``usage-pipeline run`` over ``--files`` files of ``--rows`` rows on an installed
  project: its own warehouse and Dagster home (the repository's ``dagster.yaml``: SQLite
  instance), set up by the previous morning's run on an empty inbox (untimed: creating the
  instance and the warehouse's tables happens once, not nightly), against
  ``benchmarks/baseline_night.py`` on the same files (a new connection, one COPY /
  executemany and one commit per file, then one GROUP BY into a keyed daily table).
  Target ratio <= 4.0 (goal 2.0).
* ``noop``: ``usage-pipeline run`` with nothing new (the night above already loaded)
  against ``python -c "import dagster, pandas, sqlalchemy"``. Target ratio <= 2.0.
* ``history``: sensing and ingesting one new file when the inbox already holds
  ``--history`` loaded files, against the same with an inbox holding only the new files.
  Target ratio <= 1.2.

Each runs on SQLite and on PostgreSQL (throwaway databases ``usage_pipeline_bench_*``,
dropped at the end). A missed target is a measurement, not a failure: the exit status is
non-zero only when a command failed.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CLI = str(Path(PYTHON).with_name("usage-pipeline"))
AS_OF = "2026-11-21T06:00:00+00:00"
SET_UP_AS_OF = "2026-11-20T06:00:00+00:00"  # the run before the night: instance, warehouse
NIGHT = "2026-11-20"
HEADER = "account_id,user_id,module,activity,count,timestamp\n"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def write_files(folder: Path, prefix: str, count: int, rows: int, day: str, seed: int) -> None:
    """``count`` user_activity files of ``rows`` rows dated ``day`` (UTC timestamps)."""
    rng = random.Random(seed)
    target = folder / "user_activity"
    target.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        lines = [HEADER]
        for _ in range(rows):
            account = rng.randrange(500)
            lines.append(
                f"A{account},U{account}-{rng.randrange(40)},M{rng.randrange(12)},"
                f"act{rng.randrange(60)},{rng.randrange(1, 50)},"
                f"{day}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z\n"
            )
        (target / f"{prefix}_{index:05d}.csv").write_text("".join(lines), encoding="utf-8")


@dataclass
class Timing:
    wall: float
    cpu: float


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> Timing:
    """Run ``command`` to completion; its wall time and its CPU time (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # 1: ran, something rejected or a check failed
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(wall, cpu)


def summary(name: str, a: list[Timing], b: list[Timing], target: float) -> str:
    ratios = [x.wall / y.wall for x, y in zip(a, b, strict=True)]

    def figures(values: list[float]) -> str:
        return f"min {min(values):7.2f}  median {statistics.median(values):7.2f}"

    verdict = "met" if statistics.median(ratios) <= target else "MISSED"
    return "\n".join(
        [
            f"{name}",
            f"  A wall s   {figures([t.wall for t in a])}   cpu s {figures([t.cpu for t in a])}",
            f"  B wall s   {figures([t.wall for t in b])}   cpu s {figures([t.cpu for t in b])}",
            f"  A/B wall   {figures(ratios)}   target <= {target:g}: {verdict}"
            f" ({len(ratios)} pairs)",
        ]
    )


class Database:
    """Fresh warehouses of one kind: SQLite files, or throwaway PostgreSQL databases."""

    def __init__(self, kind: str, workdir: Path, server: str) -> None:
        self.kind, self.workdir, self.server = kind, workdir, server
        self.created: list[str] = []

    def fresh(self) -> str:
        name = f"usage_pipeline_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        if self.kind == "sqlite":
            return f"sqlite:///{self.workdir / (name + '.db')}"
        self._admin(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        base, _, _ = self.server.rpartition("/")
        return f"{base}/{name}"

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(statement)

    def drop_all(self) -> None:
        for name in self.created:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


class Project:
    """A working folder for ``usage-pipeline``: its own Dagster home (a copy of the
    repository's dagster.yaml, so a SQLite instance under data/dagster/), inbox and
    warehouse."""

    def __init__(self, root: Path, warehouse: str) -> None:
        self.root, self.warehouse = root, warehouse
        self.inbox = root / "data" / "inbox"
        self.inbox.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "dagster.yaml", root / "dagster.yaml")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("USAGE_PIPELINE_")}
        self.env.update(DAGSTER_HOME=str(root), USAGE_PIPELINE_WAREHOUSE_URL=warehouse)

    def run(self, as_of: str = AS_OF) -> Timing:
        return timed([CLI, "run", "--as-of", as_of], self.root, self.env)


def alternate(
    repeat: int, a: Callable[[int], Timing], b: Callable[[int], Timing]
) -> tuple[list[Timing], list[Timing]]:
    results_a, results_b = [], []
    for index in range(repeat):
        results_a.append(a(index))
        results_b.append(b(index))
    return results_a, results_b


@contextmanager
def scratch(workdir: Path, name: str) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix=f"{name}_", dir=workdir))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_night(db: Database, args: argparse.Namespace) -> tuple[str, Project]:
    night = args.workdir / "night_files"
    if not night.exists():
        write_files(night, f"usage_{NIGHT}", args.files, args.rows, NIGHT, seed=1)
    last: list[Project] = []

    def pipeline(index: int) -> Timing:
        root = Path(tempfile.mkdtemp(prefix="night_", dir=args.workdir))
        project = Project(root, db.fresh())
        project.run(as_of=SET_UP_AS_OF)  # installed: the previous morning's run, untimed
        shutil.copytree(night, project.inbox, dirs_exist_ok=True)
        timing = project.run()
        last[:] = [project]
        return timing

    def baseline(index: int) -> Timing:
        command = [PYTHON, str(REPO / "benchmarks" / "baseline_night.py")]
        command += ["--inbox", str(night), "--warehouse", db.fresh()]
        return timed(command, REPO, dict(os.environ))

    a, b = alternate(args.repeat, pipeline, baseline)
    title = f"[{db.kind}] night: {args.files} files x {args.rows} rows, pipeline (A) vs baseline"
    return summary(title, a, b, 4.0), last[0]


def bench_noop(db: Database, loaded: Project, args: argparse.Namespace) -> str:
    floor = [PYTHON, "-c", "import dagster, pandas, sqlalchemy"]
    a, b = alternate(
        args.repeat, lambda i: loaded.run(), lambda i: timed(floor, REPO, dict(os.environ))
    )
    title = f"[{db.kind}] no-op run (A) vs import dagster, pandas, sqlalchemy (B)"
    return summary(title, a, b, 2.0)


def bench_history(db: Database, args: argparse.Namespace) -> str:
    full = Project(Path(tempfile.mkdtemp(prefix="history_", dir=args.workdir)), db.fresh())
    write_files(full.inbox, "old_2024-06-01", args.history, 5, "2024-06-01", seed=2)
    full.run()  # loads the history (in batches) and builds the completed day's snapshot
    alone = Project(Path(tempfile.mkdtemp(prefix="alone_", dir=args.workdir)), db.fresh())
    alone.run()  # the same snapshot, with no history

    def add_and_run(project: Project, index: int) -> Timing:
        write_files(
            project.inbox,
            f"new_2025-01-{index + 1:02d}",
            1,
            args.rows,
            f"2025-01-{index + 1:02d}",
            seed=100 + index,
        )
        return project.run()

    a, b = alternate(args.repeat, lambda i: add_and_run(full, i), lambda i: add_and_run(alone, i))
    title = (
        f"[{db.kind}] one new file: inbox holding {args.history} loaded files (A) vs only"
        " the new files (B)"
    )
    return summary(title, a, b, 1.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--history", type=int, default=2000)
    parser.add_argument("--only", default="night,noop,history")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    only = set(args.only.split(","))
    choices = (("sqlite", args.skip_sqlite), ("postgres", args.skip_postgres))
    kinds = [kind for kind, skip in choices if not skip]
    with tempfile.TemporaryDirectory(prefix="usage_pipeline_bench_") as tmp:
        args.workdir = args.workdir or Path(tmp)
        args.workdir.mkdir(parents=True, exist_ok=True)
        print(f"load average: {os.getloadavg()}; repeat {args.repeat}", flush=True)
        for kind in kinds:
            db = Database(kind, args.workdir, args.postgres_url)
            try:
                if only & {"night", "noop"}:
                    text, loaded = bench_night(db, args)
                    if "night" in only:
                        print(text, flush=True)
                    if "noop" in only:
                        print(bench_noop(db, loaded, args), flush=True)
                if "history" in only:
                    print(bench_history(db, args), flush=True)
            finally:
                db.drop_all()
        print(f"load average: {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
