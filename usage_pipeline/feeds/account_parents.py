"""The account hierarchy rule of an ``accounts`` file (SPEC §2.4): every parent is in the
account directory after the file loads, and no account is its own ancestor.

The directory after the file loads is the stored directory with each account the file lists
taking its last row that is kept (as for the newest file: latest file wins per account). A
row breaking the rule is a row error, so it is not kept, and the rule is applied again to
what then holds, until nothing changes: a row whose parent only an error row listed fails
too, and an account whose last row fails falls back to its previous row in the file (or to
the stored directory). All rows in one cycle fail together, naming the cycle.

Pure functions over plain mappings; the cost is linear in the file's rows and in the
accounts their parent chains pass through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from usage_pipeline.wording import shown

Row = tuple[int, str, str | None]  # (row_number, account_id, parent_account_id)
CYCLE_SHOWN = 5  # accounts of a cycle named before "… (N more)"
UNKNOWN_PARENT = "unknown parent"
CYCLE = "cycle"


def missing_parent(account: str, parent: str) -> str:
    """The error of a row whose parent is not in the directory."""
    return (
        f"account {shown(account)} has parent {shown(parent)}, which is not in the account"
        " directory"
    )


def in_cycle(cycle: list[str]) -> str:
    """The error of the row of ``cycle[0]``; ``cycle`` follows parents from it."""
    names = [shown(a) for a in cycle[:CYCLE_SHOWN]]
    if len(cycle) > CYCLE_SHOWN:
        names.append(f"… ({len(cycle) - CYCLE_SHOWN:,} more)")
    path = " -> ".join([*names, shown(cycle[0])])
    return f"account {shown(cycle[0])} is in a cycle of parents: {path}"


def _cycles(
    starts: list[str], parent: Callable[[str], str | None], listed: Callable[[str], bool]
) -> list[list[str]]:
    """The cycles reached by following parents from ``starts`` (each once, in the order of
    the parent links; every account is walked at most once)."""
    walked: set[str] = set()
    found = []
    for start in starts:
        path: list[str] = []
        position: dict[str, int] = {}
        node: str | None = start
        while node is not None and listed(node) and node not in walked and node not in position:
            position[node] = len(path)
            path.append(node)
            node = parent(node)
        if node is not None and node in position:
            found.append(path[position[node] :])
        walked.update(path)
    return found


def parent_errors(
    directory: Mapping[str, str | None], rows: Iterable[Row]
) -> dict[int, tuple[str, str]]:
    """Row number -> (kind: :data:`UNKNOWN_PARENT` or :data:`CYCLE`, error sentence) for the
    rows of a file (its rows that pass the feed's other rules, in file order) that break the
    hierarchy rule; ``directory`` is the stored directory (account -> parent)."""
    by_account: dict[str, list[tuple[int, str | None]]] = {}
    children: dict[str, set[str]] = {}
    for number, account, parent in rows:
        by_account.setdefault(account, []).append((number, parent))
        if parent is not None:
            children.setdefault(parent, set()).add(account)
    kept = {account: len(listed) - 1 for account, listed in by_account.items()}

    def winner(account: str) -> tuple[int, str | None] | None:
        index = kept.get(account, -1)
        return by_account[account][index] if index >= 0 else None

    def listed(account: str) -> bool:
        return kept.get(account, -1) >= 0 or account in directory

    def parent_of(account: str) -> str | None:
        row = winner(account)
        return row[1] if row is not None else directory.get(account)

    errors: dict[int, tuple[str, str]] = {}
    check = sorted(by_account)
    while check:
        found: dict[str, tuple[str, str]] = {}
        for account in check:
            row = winner(account)
            if row is not None and row[1] is not None and not listed(row[1]):
                found[account] = (UNKNOWN_PARENT, missing_parent(account, row[1]))
        for cycle in _cycles(check, parent_of, listed):
            for index, account in enumerate(cycle):
                if account not in found and winner(account) is not None:
                    found[account] = (CYCLE, in_cycle(cycle[index:] + cycle[:index]))
        again: set[str] = set()
        for account, error in found.items():
            number = by_account[account][kept[account]][0]
            errors[number] = error
            kept[account] -= 1
            again.add(account)  # its previous row (or stored parent) is checked next
            if not listed(account):
                again |= children.get(account, set())
        check = sorted(again)
    return errors
