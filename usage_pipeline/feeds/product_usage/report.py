"""The ``check`` report of a ``product_usage`` chunk ("test results", as in Statisfy)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from usage_pipeline.feeds.product_usage.contract import lower
from usage_pipeline.feeds.product_usage.state import PreparedImport
from usage_pipeline.matching import AccountIds

REPORT_ROWS = 50  # report lines per chunk (unmatched rows first)


def report_lines(
    raw: pd.DataFrame,
    prepared: PreparedImport,
    account: pd.Series,
    reason: pd.Series,
    starts: dict[str, np.ndarray],
    errors: pd.DataFrame,
    usable: np.ndarray,
    matched: np.ndarray,
) -> list[str]:
    """Statisfy-style test results: per row, the account matched (or why not) and the
    period the row lands in per product; unmatched rows first when there are many."""
    imp = prepared.imp
    identifier = lower(imp.identifier_column)
    lines = []
    if raw.index[0] == 2:  # the first chunk of the file
        if isinstance(prepared.directory, AccountIds):
            lines.append(
                f"column {identifier} holds the account id itself (kind account_id: no"
                " accounts directory needed)"
            )
        elif prepared.warehouse:
            lines.append(
                f"accounts directory: {_accounts(prepared.directory.size)}; column"
                f" {identifier} is matched by {imp.identifier_kind}"
            )
        else:
            lines.append(
                "accounts directory: no warehouse found, so no account can match"
                f" (column {identifier} is matched by {imp.identifier_kind})"
            )
    positions = np.arange(len(raw))
    first = list(positions[usable & ~matched]) + list(positions[~usable])
    chosen = sorted((first + list(positions[matched]))[:REPORT_ROWS])
    cell_errors = errors.groupby("row_number")["error"].count().to_dict() if len(errors) else {}
    row_errors = errors.groupby("row_number")["error"].first().to_dict() if len(errors) else {}
    products = list(prepared.periods)
    for position in chosen:
        row = int(raw.index[position])
        value = raw[identifier].iat[position]
        lands = ", ".join(f"{p} ({prepared.periods[p]}) {starts[p][position]}" for p in products)
        if matched[position]:
            bad = cell_errors.get(row, 0)
            suffix = f"; {bad} cell{'s' if bad > 1 else ''} rejected" if bad else ""
            lines.append(
                f"row {row}: {identifier} {value!r} matched account"
                f" {account.iat[position]} -> {lands}{suffix}"
            )
        elif usable[position]:
            lines.append(
                f"row {row}: {identifier} {value!r} UNMATCHED ({reason.iat[position]}),"
                f" not loaded; it would land in {lands}"
            )
        else:
            lines.append(f"row {row}: invalid ({row_errors.get(row)}), not loaded")
    return lines


def _accounts(count: int) -> str:
    return f"{count} account{'' if count == 1 else 's'}"
