"""The hand-written baseline for a night of many small ``user_activity`` files: what a DBA
would run without any pipeline. For each file: a new connection, one bulk load, one commit.
Then one ``GROUP BY`` into a daily table keyed like ``user_activity_daily``.

    python benchmarks/baseline_night.py --inbox DIR --warehouse URL

SQLite: ``executemany`` of the rows read with the ``csv`` module. PostgreSQL: ``COPY … FROM
STDIN (FORMAT csv, HEADER true)`` of the file's bytes into an UNLOGGED staging table. The day
is the first ten characters of the UTC timestamp (the benchmark's files are UTC).
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
from pathlib import Path

STAGING = (
    "CREATE {unlogged} TABLE IF NOT EXISTS staging (account_id TEXT, user_id TEXT,"
    " module TEXT, activity TEXT, count BIGINT, ts TEXT)"
)
DAILY = (
    "CREATE TABLE IF NOT EXISTS daily (activity_date TEXT, account_id TEXT, user_id TEXT,"
    " module TEXT, activity TEXT, count BIGINT,"
    " PRIMARY KEY (activity_date, account_id, user_id, module, activity))"
)
ROLLUP = (
    "INSERT INTO daily SELECT substr(ts, 1, 10), account_id, user_id, module, activity,"
    " SUM(count) FROM staging GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"
)


def load_sqlite(path: str, files: list[Path]) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(STAGING.format(unlogged=""))
        conn.execute(DAILY)
    for file in files:
        conn = sqlite3.connect(path)
        with file.open(newline="", encoding="utf-8") as handle:
            rows = csv.reader(handle)
            next(rows)
            conn.executemany("INSERT INTO staging VALUES (?, ?, ?, ?, ?, ?)", rows)
        conn.commit()
        conn.close()
    with sqlite3.connect(path) as conn:
        conn.execute(ROLLUP)


def load_postgres(url: str, files: list[Path]) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(STAGING.format(unlogged="UNLOGGED"))
        conn.execute(DAILY)
    for file in files:
        with psycopg.connect(url) as conn, conn.cursor() as cursor:
            copy = "COPY staging FROM STDIN (FORMAT csv, HEADER true)"
            with cursor.copy(copy) as stream:
                stream.write(file.read_bytes())
    with psycopg.connect(url) as conn:
        conn.execute(ROLLUP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inbox", required=True, type=Path)
    parser.add_argument("--warehouse", required=True, help="sqlite:///FILE or postgresql://…")
    args = parser.parse_args()
    files = sorted(args.inbox.rglob("*.csv"))
    if args.warehouse.startswith("sqlite:///"):
        load_sqlite(args.warehouse.removeprefix("sqlite:///"), files)
    else:
        load_postgres(args.warehouse.replace("postgresql+psycopg://", "postgresql://"), files)


if __name__ == "__main__":
    main()
