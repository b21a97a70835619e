"""The per-file state of a ``usage_events`` file (``FileContext.lookup``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from usage_pipeline.feeds.usage_events.known_refs import KnownRefs

if TYPE_CHECKING:
    import pandera.pandas as pa


class SeenRefs:
    """The ``event_ref``s of one file so far, with the row each first appeared on.

    Kept as 128-bit keyed hashes (two independent 64-bit SipHashes) in sorted arrays: 24
    bytes a ref instead of the strings, so a file of tens of millions of rows fits in memory;
    a false "repeat" would need a 128-bit collision.
    """

    _KEYS = ("usage-events-ref", "usage-events-2nd")  # SipHash keys: 16 bytes each

    def __init__(self) -> None:
        self._h1 = np.empty(0, dtype=np.uint64)
        self._h2 = np.empty(0, dtype=np.uint64)
        self._rows = np.empty(0, dtype=np.int64)

    def first_rows(self, refs: pd.Series) -> pd.Series:
        """For each present ref (index = row number): the earlier row it repeats, else -1.
        Refs seen for the first time are remembered."""
        refs = refs.dropna()
        values = refs.to_numpy(dtype=object)
        rows = refs.index.to_numpy(dtype=np.int64)
        h1, h2 = (pd.util.hash_array(values, hash_key=key) for key in self._KEYS)
        first = np.full(len(values), -1, dtype=np.int64)
        if len(self._h1) and len(values):
            left = np.searchsorted(self._h1, h1, side="left")
            right = np.searchsorted(self._h1, h1, side="right")
            for i in np.flatnonzero(right > left):  # repeats (or a 64-bit collision)
                span = slice(left[i], right[i])
                match = np.flatnonzero(self._h2[span] == h2[i])
                if len(match):
                    first[i] = self._rows[span][match[0]]
        keyed = pd.DataFrame({"h1": h1, "h2": h2, "row": rows})
        in_chunk = keyed.groupby(["h1", "h2"], sort=False)["row"].transform("min").to_numpy()
        repeat_here = (first == -1) & (in_chunk != rows)
        first[repeat_here] = in_chunk[repeat_here]
        new = first == -1
        merged = [np.concatenate((old, add[new])) for old, add in ((self._h1, h1), (self._h2, h2))]
        order = np.argsort(merged[0], kind="stable")  # two sorted runs: a linear merge
        self._h1, self._h2 = merged[0][order], merged[1][order]
        self._rows = np.concatenate((self._rows, rows[new]))[order]
        return pd.Series(first, index=refs.index)


@dataclass
class FileState:
    """What :meth:`UsageEventsFeed.load_state` fixes for one file, and what its chunks add."""

    now: datetime  # one "now" for every chunk and for apply
    dialect: str
    schema: pa.DataFrameSchema
    kinds: dict[str, str]
    seen: SeenRefs = field(default_factory=SeenRefs)
    period_status: dict[str, str] = field(default_factory=dict)  # YYYY-MM -> billing status
    known: KnownRefs = field(default_factory=lambda: KnownRefs(None))
    final_periods: Counter[str] = field(default_factory=Counter)  # new events per final period
