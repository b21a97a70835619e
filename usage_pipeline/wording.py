"""Readable reasons: however hostile the input, a reason stays one sentence of a readable
length (a value shown in it is shortened, a list of names says how many it left out)."""

from __future__ import annotations

from collections.abc import Sequence

VALUE_CHARS = 60  # a cell value or column name quoted in a reason
NAMES_SHOWN = 5  # names listed before "… and N more"
REASON_CHARS = 600  # a whole ledger reason


def shown(value: object, limit: int = VALUE_CHARS) -> str:
    """``repr`` of a value, cut to about ``limit`` characters with an ellipsis."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 2]}…{text[-1]}" if text[-1] in "'\"" else f"{text[:limit]}…"


def name_list(names: Sequence[object], limit: int = NAMES_SHOWN, quoted: bool = True) -> str:
    """``'a', 'b', 'c'`` — or the first ``limit`` and ``… and 4,997 more``."""
    listed = ", ".join(shown(n) if quoted else str(n) for n in names[:limit])
    rest = len(names) - limit
    return f"{listed} … and {rest:,} more" if rest > 0 else listed


def capped(sentence: str | None, limit: int = REASON_CHARS) -> str | None:
    """A sentence cut to ``limit`` characters at a word, ending ``… (N more characters).``"""
    if sentence is None or len(sentence) <= limit:
        return sentence
    cut = sentence[:limit].rsplit(" ", 1)[0]
    return f"{cut} … ({len(sentence) - len(cut):,} more characters)."
