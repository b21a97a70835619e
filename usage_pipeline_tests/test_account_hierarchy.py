"""SPEC §2.4 ``parent_account_id`` and §3 ``account_hierarchy_snapshot`` (issue 12): the rule
on parents (unknown parent, cycle) as row errors, and the snapshot over each subtree
computed by hand. Files go through ``ingest_file`` and the rollups, snapshots through their
builder: no Dagster run (the asset is covered with the others by the missed-nights test).

Snapshot date S = 2026-11-20: 1d = Nov 20, 7d = Nov 14..20, 30d = Oct 22..Nov 20,
previous 30d = Sep 22..Oct 21.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from usage_pipeline import work_queue
from usage_pipeline.config import PipelineConfig
from usage_pipeline.feeds.account_parents import CYCLE, UNKNOWN_PARENT, parent_errors
from usage_pipeline.ingest import ingest_file
from usage_pipeline.outcome import IngestOutcome
from usage_pipeline.rollups import rebuild_rollup_day, rollup_named
from usage_pipeline.snapshots import build_snapshot_day
from usage_pipeline.sources.local import LocalFolderSource
from usage_pipeline.warehouse.engine import get_engine
from usage_pipeline_tests.helpers import drop, rows

DIRECTORY = "account_id,domain,name,parent_account_id"
ACTIVITY = "account_id,user_id,module,activity,count,date"
S = date(2026, 11, 20)
SNAPSHOT = (
    "snapshot_date, account_id, accounts_in_subtree, active_users_1d, active_users_7d,"
    " active_users_30d, activity_1d, activity_7d, activity_30d, activity_change_30d_pct,"
    " top_module_30d, last_activity_date, days_since_last_activity"
)
REJECTED = "row_number, column_name, value, error"


def unknown(account: str, parent: str) -> str:
    return f"account '{account}' has parent '{parent}', which is not in the account directory"


def cycle(*path: str) -> str:
    return f"account '{path[0]}' is in a cycle of parents: " + " -> ".join(f"'{a}'" for a in path)


# --- the rule, as a pure function --------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "file_rows", "expected"),
    [
        # a parent listed further down the file, or by an earlier file, is in the directory
        ({}, [(2, "FR", "EU"), (3, "EU", None)], {}),
        ({"Z": None}, [(2, "C", "Z")], {}),
        # unknown parent; its child fails too, since the failed row is not loaded
        (
            {},
            [(2, "C", "Z"), (3, "D", "C")],
            {2: (UNKNOWN_PARENT, unknown("C", "Z")), 3: (UNKNOWN_PARENT, unknown("D", "C"))},
        ),
        # a failed last row: the account keeps its previous row of the file (its parent R)
        ({"R": None}, [(2, "A", "R"), (3, "A", "Z")], {3: (UNKNOWN_PARENT, unknown("A", "Z"))}),
        # every row of a cycle fails; a cycle through a stored account; an account of its own
        (
            {},
            [(2, "A", "B"), (3, "B", "A")],
            {2: (CYCLE, cycle("A", "B", "A")), 3: (CYCLE, cycle("B", "A", "B"))},
        ),
        ({"P": None, "Q": "P"}, [(2, "P", "Q")], {2: (CYCLE, cycle("P", "Q", "P"))}),
        ({}, [(2, "G", "G")], {2: (CYCLE, cycle("G", "G"))}),
        # leading into a cycle the stored directory already has is not this row's cycle
        ({"X": "Y", "Y": "X"}, [(2, "K", "X")], {}),
    ],
)
def test_parent_rule(stored: dict, file_rows: list, expected: dict) -> None:
    assert parent_errors(stored, file_rows) == expected


def test_a_long_cycle_is_named_in_one_sentence() -> None:
    names = [f"a{n}" for n in range(8)]
    file_rows = [(n + 2, name, names[(n + 1) % 8]) for n, name in enumerate(names)]
    errors = parent_errors({}, file_rows)
    assert len(errors) == 8
    assert errors[2] == (
        CYCLE,
        "account 'a0' is in a cycle of parents: 'a0' -> 'a1' -> 'a2' -> 'a3' -> 'a4'"
        " -> … (3 more) -> 'a0'",
    )


# --- the feed ----------------------------------------------------------------------------


def ingest(
    inbox: Path, url: str, key: str, lines: list[str], header: str = DIRECTORY, ratio=0.05
) -> IngestOutcome:
    """Drop ``key`` and ingest it in this process (no Dagster)."""
    drop(inbox, key, lines, header=header)
    source = LocalFolderSource(inbox)
    config = PipelineConfig(inbox=str(inbox), warehouse=url, max_reject_ratio=ratio)
    return ingest_file(get_engine(url), source, source.stat(key), config)


def test_unknown_parents_and_cycles_are_row_errors(inbox: Path, warehouse_url: str) -> None:
    first = ingest(inbox, warehouse_url, "accounts/a_2026-11-18.csv", ["P,p.io,P,", "Q,q.io,Q,P"])
    second = ingest(
        inbox,
        warehouse_url,
        "accounts/a_2026-11-19.csv",
        [
            "A,a.io,A,B",  # row 2: A -> B -> A
            "B,b.io,B,A",
            "C,c.io,C,Z",  # row 4: Z is nowhere
            "D,d.io,D,C",  # row 5: C is only listed by a failed row
            "E,e.io,E,",
            "F,f.io,F,E",
            "P,p.io,P,Q",  # row 8: Q's parent is P (stored)
            "R,r.io,R,Q",
            "G,g.io,G,F",
            "H,h.io,H,G",
            "I,i.io,I,H",
            "J,j.io,J,",
            "K,k.io,K,J",
        ],
        ratio=0.5,
    )
    third = ingest(
        inbox, warehouse_url, "accounts/a_2026-11-20.csv", ["X,x.io,X,NOPE", "Y,y.io,Y,"]
    )

    assert (first.status, second.status, third.status) == ("loaded", "loaded", "rejected")
    assert (second.rows_loaded, second.rows_rejected) == (8, 5)
    assert second.error == (
        "File accounts/a_2026-11-19.csv: 5 of 13 rows rejected (first: row 2, column"
        f" parent_account_id: {cycle('A', 'B', 'A')})."
    )
    assert third.error == (
        "File accounts/a_2026-11-20.csv is rejected: 1 of 2 rows are invalid, more than the"
        " max_reject_ratio of 0.05 (first: row 2, column parent_account_id:"
        f" {unknown('X', 'NOPE')})."
    )
    assert rows(
        warehouse_url, f"rejected_rows WHERE file_id = {second.file_id}", columns=REJECTED
    ) == [
        (2, "parent_account_id", "B", cycle("A", "B", "A")),
        (3, "parent_account_id", "A", cycle("B", "A", "B")),
        (4, "parent_account_id", "Z", unknown("C", "Z")),
        (5, "parent_account_id", "C", unknown("D", "C")),
        (8, "parent_account_id", "Q", cycle("P", "Q", "P")),
    ]
    assert rows(warehouse_url, "accounts", columns="account_id, parent_account_id") == [
        ("E", None),
        ("F", "E"),
        ("G", "F"),
        ("H", "G"),
        ("I", "H"),
        ("J", None),
        ("K", "J"),
        ("P", None),  # its row of the first file stays
        ("Q", "P"),
        ("R", "Q"),
    ]


# --- the snapshot ------------------------------------------------------------------------

# HQ -> EU -> FR, DE; HQ -> US -> LEGACY -> LEGACY-2; children listed before their parents.
TREE = [
    "FR,fr.io,France,EU",
    "DE,de.io,Germany,EU",
    "EU,eu.io,Europe,HQ",
    "HQ,hq.io,Headquarters,",
    "US,us.io,Americas,HQ",
    "LEGACY,legacy.io,Legacy,US",
    "LEGACY-2,legacy2.io,Legacy Two,LEGACY",
]
USAGE = [
    "FR,u1,Reports,view,5,2026-11-20",
    "DE,u1,Admin,login,2,2026-11-20",  # u1 is active in FR and DE: one user of EU and HQ
    "DE,u2,Reports,view,4,2026-11-15",
    "US,u3,Billing,pay,6,2026-11-01",
    "US,u3,Billing,pay,10,2026-10-10",  # previous 30 days only
    "LEGACY,u6,Admin,login,3,2026-08-01",  # before every window
    "LONE,u5,Reports,view,2,2026-11-19",  # not in the directory
]
HIERARCHY = [
    # date, account, subtree, users 1d/7d/30d, activity 1d/7d/30d, change %, top, last, days
    ("2026-11-20", "DE", 1, 1, 2, 2, 2, 6, 6, None, "Reports", "2026-11-20", 0),
    ("2026-11-20", "EU", 3, 1, 2, 2, 7, 11, 11, None, "Reports", "2026-11-20", 0),
    ("2026-11-20", "FR", 1, 1, 1, 1, 5, 5, 5, None, "Reports", "2026-11-20", 0),
    ("2026-11-20", "HQ", 7, 1, 2, 3, 7, 11, 17, 70.0, "Reports", "2026-11-20", 0),
    ("2026-11-20", "LEGACY", 2, 0, 0, 0, 0, 0, 0, None, None, "2026-08-01", 111),
    ("2026-11-20", "LEGACY-2", 1, 0, 0, 0, 0, 0, 0, None, None, None, None),
    ("2026-11-20", "LONE", 1, 0, 1, 1, 0, 2, 2, None, "Reports", "2026-11-19", 1),
    ("2026-11-20", "US", 3, 0, 0, 1, 0, 0, 6, -40.0, "Billing", "2026-11-01", 19),
]
# After DE moves from EU to US, on the next date (1d = Nov 21, 7d = Nov 15..21, 30d =
# Oct 23..Nov 21, previous 30d = Sep 23..Oct 22).
MOVED = [
    ("2026-11-21", "EU", 2, 0, 1, 1, 0, 5, 5, None, "Reports", "2026-11-20", 1),
    ("2026-11-21", "HQ", 7, 0, 2, 3, 0, 11, 17, 70.0, "Reports", "2026-11-20", 1),
    ("2026-11-21", "US", 4, 0, 2, 3, 0, 6, 12, 20.0, "Billing", "2026-11-20", 1),
]


def load_usage(inbox: Path, url: str) -> None:
    """The USAGE file ingested and rolled up (the activity state included)."""
    outcome = ingest(inbox, url, "user_activity/usage.csv", USAGE, header=ACTIVITY)
    assert outcome.status == "loaded", outcome.error
    with get_engine(url).begin() as conn:
        for name in ("user_activity_daily", "account_activity_daily"):
            for day in outcome.days_touched:
                rebuild_rollup_day(conn, rollup_named(name), day)


def build(url: str, day: date) -> None:
    with get_engine(url).begin() as conn:
        for table in ("account_usage_snapshot", "account_hierarchy_snapshot"):
            build_snapshot_day(conn, table, day)


def test_subtrees_sum_their_accounts_and_a_move_moves_usage(
    inbox: Path, warehouse_url: str
) -> None:
    assert ingest(inbox, warehouse_url, "accounts/tree_2026-11-19.csv", TREE).rows_rejected == 0
    load_usage(inbox, warehouse_url)
    build(warehouse_url, S)

    assert rows(warehouse_url, "account_hierarchy_snapshot", columns=SNAPSHOT) == HIERARCHY
    # An account without children has its account_usage_snapshot figures.
    usage = {r[1]: r[2:] for r in rows(warehouse_url, "account_usage_snapshot")}
    assert len(usage) == len(HIERARCHY)
    assert all(usage[r[1]] == r[3:] for r in HIERARCHY if r[2] == 1)

    moved = ingest(inbox, warehouse_url, "accounts/move_2026-11-20.csv", ["DE,de.io,Germany,US"])
    assert moved.status == "loaded"
    with get_engine(warehouse_url).connect() as conn:  # the latest date is asked to refresh
        pending = work_queue.pending(conn, ["account_hierarchy_snapshot"])
    assert [(p.kind, p.day) for p in pending] == [("account_hierarchy_snapshot", S)]
    build(warehouse_url, date(2026, 11, 21))

    next_day = "account_hierarchy_snapshot WHERE snapshot_date > '2026-11-20'"
    assert [r for r in rows(warehouse_url, next_day, columns=SNAPSHOT) if r[1] in "EU HQ US"] == (
        MOVED
    )
