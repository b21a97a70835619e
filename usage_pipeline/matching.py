"""Matching a feed's account identifiers against the ``accounts`` directory (SPEC §2.4).

Rules, per identifier kind:

- ``account_id``: no matching: the identifier *is* the account id, taken as it is (no
  ``accounts`` directory is needed, see :class:`AccountIds`);
- ``crm_id``: the exact ``accounts.crm_id`` (surrounding blanks trimmed, case kept);
- ``domain``: both sides normalised: lower case, scheme (``https://``), user part
  (``jane@``), ``www.``, port, path, query and trailing dot stripped, so
  ``https://www.Acme.com/path`` matches ``acme.com``;
- ``name``: both sides compared case-insensitively (casefold) with runs of white space
  collapsed to one blank and the ends trimmed.

An identifier that matches several accounts is *ambiguous* and matches none (the reason
says which accounts). The directory is read once per file, bounded by its size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from usage_pipeline.config import IDENTIFIER_KINDS
from usage_pipeline.warehouse.tables import accounts

__all__ = [
    "IDENTIFIER_KINDS",
    "AccountDirectory",
    "AccountIds",
    "Match",
    "load_directory",
    "normalise",
    "normalise_domain",
    "normalise_name",
]

_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*://")
_PATH = re.compile(r"[/?#\\]")
_PORT = re.compile(r":\d*$")
AMBIGUOUS_SHOWN = 5


def normalise_domain(value: str) -> str:
    """``https://www.Acme.com:443/path?x`` -> ``acme.com``."""
    text = value.strip().lower()
    text = _SCHEME.sub("", text)
    text = text.removeprefix("//")
    text = _PATH.split(text, maxsplit=1)[0]
    text = text.rsplit("@", 1)[-1]  # user@host, or an e-mail address
    text = _PORT.sub("", text).rstrip(".")
    return text.removeprefix("www.")


def normalise_name(value: str) -> str:
    """``'  ACME   Corp '`` -> ``'acme corp'``."""
    return " ".join(value.split()).casefold()


def normalise(kind: str, value: str) -> str:
    """The comparison key of ``value`` for identifier ``kind``."""
    if kind == "domain":
        return normalise_domain(value)
    if kind == "name":
        return normalise_name(value)
    if kind in ("account_id", "crm_id"):
        return value.strip()
    raise ValueError(f"unknown identifier kind {kind!r} (known: {', '.join(IDENTIFIER_KINDS)})")


@dataclass(frozen=True)
class Match:
    """The account an identifier matched, or why none did."""

    account_id: str | None
    reason: str | None = None

    @property
    def matched(self) -> bool:
        return self.account_id is not None


@dataclass
class AccountDirectory:
    """The accounts directory indexed by one identifier kind."""

    kind: str
    index: dict[str, tuple[str, ...]] = field(default_factory=dict)
    size: int = 0  # accounts in the directory (with or without this kind of identifier)

    @classmethod
    def from_rows(
        cls, kind: str, rows: Iterable[tuple[str, str | None]], size: int | None = None
    ) -> AccountDirectory:
        """Index ``(account_id, identifier)`` pairs; blank identifiers are skipped."""
        found: dict[str, set[str]] = {}
        count = 0
        for account_id, value in rows:
            count += 1
            if value is None or not str(value).strip():
                continue
            found.setdefault(normalise(kind, str(value)), set()).add(str(account_id))
        index = {key: tuple(sorted(ids)) for key, ids in found.items() if key}
        return cls(kind, index, count if size is None else size)

    def match(self, value: str) -> Match:
        key = normalise(self.kind, value)
        shown = repr(value.strip())
        if key != value.strip():
            shown += f" (normalised: {key!r})"
        ids = self.index.get(key, ()) if key else ()
        if len(ids) == 1:
            return Match(ids[0])
        if not ids:
            return Match(None, f"no account has {self.kind} {shown}")
        listed = ", ".join(ids[:AMBIGUOUS_SHOWN]) + (", …" if len(ids) > AMBIGUOUS_SHOWN else "")
        return Match(
            None, f"{self.kind} {shown} is ambiguous: it matches {len(ids)} accounts ({listed})"
        )

    def match_series(self, values: pd.Series) -> tuple[pd.Series, pd.Series]:
        """(account_id or None, reason or None) for each non-null value; each distinct value
        is matched once."""
        present = values.dropna()
        distinct = {value: self.match(str(value)) for value in pd.unique(present)}
        account = pd.Series(None, index=values.index, dtype=object)
        reason = pd.Series(None, index=values.index, dtype=object)
        account[present.index] = [distinct[v].account_id for v in present]
        reason[present.index] = [distinct[v].reason for v in present]
        return account, reason


@dataclass
class AccountIds:
    """Identifiers of kind ``account_id``: each value is the account id as it is; nothing is
    looked up, so every present value matches (SPEC §2.5)."""

    kind: str = "account_id"
    size: int = 0  # the directory is not read

    def match(self, value: str) -> Match:
        return Match(value)

    def match_series(self, values: pd.Series) -> tuple[pd.Series, pd.Series]:
        account = values.astype(object).where(values.notna(), None)
        return account, pd.Series(None, index=values.index, dtype=object)


def load_directory(conn: sa.Connection | None, kind: str) -> AccountDirectory | AccountIds:
    """What identifiers of ``kind`` are matched with: the ``accounts`` directory indexed by
    ``kind`` (empty without a warehouse), or :class:`AccountIds` for ``account_id``."""
    if kind == "account_id":
        return AccountIds()
    if conn is None:
        return AccountDirectory(kind)
    column = accounts.c[kind]
    size = conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one()
    query = sa.select(accounts.c.account_id, column.label("identifier")).where(column.is_not(None))
    return AccountDirectory.from_rows(kind, conn.execute(query).tuples(), size=int(size))
