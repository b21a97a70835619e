"""The per-file state of a ``product_usage`` file (``FileContext.lookup``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from usage_pipeline.config import ImportConfig
from usage_pipeline.feeds.product_usage.contract import UNMATCHED_LISTED
from usage_pipeline.matching import AccountDirectory, AccountIds


@dataclass
class UnmatchedTally:
    """Unmatched rows seen while reading one file (for notes and the check)."""

    rows: int = 0
    identifiers: list[str] = field(default_factory=list)

    def add(self, values: list[str]) -> None:
        self.rows += len(values)
        for value in values:
            if len(self.identifiers) >= UNMATCHED_LISTED:
                break
            if value not in self.identifiers:
                self.identifiers.append(value)


@dataclass(frozen=True)
class PreparedImport:
    """What :meth:`ProductUsageFeed.load_state` loads for one file."""

    imp: ImportConfig
    directory: AccountDirectory | AccountIds
    periods: dict[str, str]  # product -> snapshot period
    auto_starts: dict[str, str]  # product -> period_start of a row without a date
    warehouse: bool  # False: dry run without a warehouse (nothing can match)
    unmatched: UnmatchedTally = field(default_factory=UnmatchedTally)
