"""Benchmark the nightly snapshots with an account hierarchy against the same without one.

Run it from the repository root (nothing else running; check ``uptime`` first)::

    .venv/bin/python benchmarks/bench_hierarchy.py [--repeat 3] [--skip-sqlite]
        [--skip-postgres] [--postgres-url URL]

One night's snapshots — every snapshot table (``account_usage_snapshot``,
``user_usage_snapshot``, ``account_hierarchy_snapshot``, ``account_top_users``) built for
the date, each in its own transaction, as the snapshot job does — on a warehouse whose
10,000 accounts form a hierarchy 6 levels deep (A: each account but the root has the parent
``(n - 1) / 7``, so most accounts sit 5 levels down) against the same warehouse without
parents (B). Target ratio <= 1.5. The hierarchy snapshot's own seconds are printed too.

The 60-day window is generated in SQL (30,000 rows a day over 50,000 users and the 10,000
accounts, 12 modules; month and activity state built from it), then each measurement runs
the pipeline's own builders in a fresh process (PostgreSQL: after VACUUM ANALYZE and a
CHECKPOINT). A and B alternate pair by pair; min and median are printed, with the ratio per
pair. Throwaway PostgreSQL databases ``usage_pipeline_bench_*`` are dropped at the end.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench_history import (
    DEFAULT_POSTGRES_URL,
    LAST_DAY,
    REPO,
    Databases,
    _day_expr,
    _numbers,
    on_each_database,
    report,
    settle,
)

ACCOUNTS = 10_000
BRANCHING = 7  # 1 + 7 + 49 + 343 + 2,401 + 7,199 accounts: 6 levels
USERS = 50_000
ROWS_PER_DAY = 30_000
DAYS = 60  # the snapshot's window: 30 days and the 30 before

NIGHT = """
import sys, time
from datetime import date
from usage_pipeline import snapshots
from usage_pipeline.warehouse.engine import get_engine
engine = get_engine(sys.argv[1])
day = date.fromisoformat(sys.argv[2])
seconds = {}
for table in snapshots.SNAPSHOT_BUILDERS:
    start = time.perf_counter()
    with engine.begin() as conn:
        snapshots.build_snapshot_day(conn, table, day)
    seconds[table] = time.perf_counter() - start
print(sum(seconds.values()), seconds["account_hierarchy_snapshot"])
"""


def populate(url: str, parents: bool) -> None:
    """The 60-day window ending on LAST_DAY and the directory, with or without parents."""
    from usage_pipeline.activity_state import ACCOUNT_STATE, USER_STATE, backfill_state
    from usage_pipeline.warehouse.engine import get_engine

    engine = get_engine(url)
    with engine.begin() as conn:
        rows, day_numbers = _numbers(conn, ROWS_PER_DAY), _numbers(conn, DAYS)
        day = _day_expr(conn, "d.n")
        mod = "%%" if conn.dialect.name == "postgresql" else "%"  # psycopg placeholders
        user = f"((r.n + d.n * 7) {mod} {USERS})"  # distinct within a day
        conn.exec_driver_sql(
            "INSERT INTO user_activity_daily"
            " (activity_date, account_id, user_id, module, activity, count)"
            f" SELECT {day}, 'a' || ({user} {mod} {ACCOUNTS}), 'u' || {user},"
            f" 'm' || (r.n {mod} 12), 'view', 1 + (r.n {mod} 50)"
            f" FROM {day_numbers} AS d CROSS JOIN {rows} AS r"
        )
        conn.exec_driver_sql(
            "INSERT INTO account_activity_daily SELECT activity_date, account_id, module,"
            " activity, 'user_activity', SUM(count), COUNT(*) FROM user_activity_daily"
            " GROUP BY activity_date, account_id, module, activity"
        )
        for spec in (USER_STATE, ACCOUNT_STATE):
            backfill_state(conn, spec)
        parent = (
            f"CASE WHEN a.n = 0 THEN NULL ELSE 'a' || ((a.n - 1) / {BRANCHING}) END"
            if parents
            else "NULL"
        )
        conn.exec_driver_sql(
            "INSERT INTO accounts (account_id, parent_account_id)"
            f" SELECT 'a' || a.n, {parent} FROM {_numbers(conn, ACCOUNTS)} AS a"
        )
    engine.dispose()


def night(url: str) -> tuple[float, float]:
    """(all snapshots, the hierarchy snapshot) seconds of one night, in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", NIGHT, url, LAST_DAY.isoformat()],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    total, hierarchy = done.stdout.split()[:2]
    return float(total), float(hierarchy)


def check_tree(url: str) -> None:
    """The root's subtree is every account: the hierarchy was really built."""
    import sqlalchemy as sa

    from usage_pipeline.warehouse.engine import get_engine

    engine = get_engine(url)
    with engine.connect() as conn:
        size = conn.execute(
            sa.text(
                "SELECT accounts_in_subtree FROM account_hierarchy_snapshot"
                " WHERE account_id = 'a0' AND snapshot_date = :s"
            ),
            {"s": LAST_DAY},
        ).scalar_one()
    engine.dispose()
    assert size == ACCOUNTS, size


def bench(dbs: Databases, repeat: int) -> str:
    start = time.perf_counter()
    tree_url, flat_url = dbs.fresh(), dbs.fresh()
    populate(tree_url, parents=True)
    populate(flat_url, parents=False)
    settle(tree_url)
    settle(flat_url)
    print(f"  [{dbs.kind}] window generated in {time.perf_counter() - start:.0f} s", flush=True)
    a, b = [], []
    for _ in range(repeat):
        a.append(night(tree_url))
        b.append(night(flat_url))
    check_tree(tree_url)
    title = f"[{dbs.kind}] nightly snapshots, 10,000 accounts: 6-level hierarchy (A) vs none (B)"
    own = [f"{x[1]:.2f}/{y[1]:.2f}" for x, y in zip(a, b, strict=True)]
    return (
        report(title, [x[0] for x in a], [x[0] for x in b], 1.5)
        + f"\n  account_hierarchy_snapshot alone, A/B s per pair: {', '.join(own)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    on_each_database(
        parser.parse_args(),
        lambda dbs, args: print(bench(dbs, args.repeat), flush=True),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
