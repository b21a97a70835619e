"""The one timestamp rule (SPEC §2), used by every timestamp column of every feed.

- Digits only (optionally with a fraction): seconds since 1970-01-01 UTC.
- ISO 8601 with ``Z`` or an offset: that instant.
- ISO 8601 without an offset (a date alone is its midnight): wall-clock time in the
  instance zone. A time inside a spring-forward gap moves forward by the gap (02:30 ->
  03:30); a time inside a fall-back overlap takes its first occurrence (Python's
  ``fold=0``).
- Anything else (including a sign: ``-1``) is not a timestamp: NaT, which the feeds report
  as a row error. Values are kept to the microsecond, as the warehouse stores them.

Each distinct string is parsed once (drops repeat timestamps a lot).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

UTC = timezone.utc
# What a timestamp cell must be, in every feed's "… is not …" row error.
TIMESTAMP_KIND = "an ISO 8601 timestamp or epoch seconds"
_EPOCH = re.compile(r"\d{1,11}(?:\.\d{1,9})?")
_DATE = r"\d{4}-\d{2}-\d{2}|\d{8}"
_TIME = r"\d{2}(?::?\d{2}(?::?\d{2}(?:\.\d{1,9})?)?)?"
_OFFSET = r"[zZ]|[+-]\d{2}(?::?\d{2})?"
_ISO = re.compile(rf"(?:{_DATE})(?:[T ]{_TIME}\s*({_OFFSET})?)?")
# Whole sets of values checked in one pass (one value per line): the common case of a file
# whose timestamps all carry an offset, or none do, parses without a per-value loop.
_ALL_OFFSET = re.compile(rf"(?:(?:{_DATE})[T ]{_TIME}\s*(?:{_OFFSET})\n)*")
# The commonest exports, checked first with simpler (several times faster) patterns.
_ALL_UTC = re.compile(r"(?:\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?Z\n)*")
_ALL_PLAIN = re.compile(r"(?:\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?)?\n)*")
_WALL_AND_OFFSET = re.compile(rf"((?:{_DATE})[T ]{_TIME})\s*({_OFFSET})\n")
_ALL_NAIVE = re.compile(rf"(?:(?:{_DATE})(?:[T ]{_TIME})?\n)*")


def parse_instants(values: pd.Series, tz: ZoneInfo) -> pd.Series:
    """Timestamp cells -> UTC instants (``datetime64[ns, UTC]``; NaT when missing or not a
    timestamp), aligned with ``values``."""
    codes, uniques = pd.factorize(values)
    parsed = _parse_unique(list(uniques), tz)
    result = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    present = codes >= 0
    result[present] = parsed[codes[present]]
    return pd.Series(result, index=values.index).dt.tz_localize(UTC)


def local_days(instants: pd.Series, tz: ZoneInfo) -> pd.Series:
    """The instance-zone day of each instant, as a naive midnight (NaT stays NaT)."""
    return instants.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()


def parse_days(values: pd.Series, tz: ZoneInfo) -> pd.Series:
    """Timestamp cells -> their instance-zone day (naive midnights, NaT when invalid)."""
    return local_days(parse_instants(values, tz), tz)


def _parse_unique(values: list[object], tz: ZoneInfo) -> np.ndarray:
    """Naive-UTC ``datetime64[ns]`` per distinct value."""
    result = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    try:  # the commonest case first: text cells in UTC with nothing to strip
        if _ALL_UTC.fullmatch("\n".join(values) + "\n"):  # type: ignore[arg-type]
            return _wall_clock([text[:-1] for text in values])  # type: ignore[index]
    except TypeError:  # a value that is not text
        pass
    texts = [str(value).strip() for value in values]
    joined = "".join(f"{text}\n" for text in texts)
    if _ALL_UTC.fullmatch(joined):
        return _wall_clock([text[:-1] for text in texts])
    if _ALL_PLAIN.fullmatch(joined) or _ALL_NAIVE.fullmatch(joined):
        return _localise(pd.Series(texts), tz)
    if _ALL_OFFSET.fullmatch(joined):
        if joined.count("Z\n") + joined.count("z\n") == len(texts):  # all UTC
            return _wall_clock([text[:-1].rstrip() for text in texts])
        return _with_offsets(_WALL_AND_OFFSET.findall(joined))
    epoch, offset, naive = [], [], []
    for index, text in enumerate(texts):
        if _EPOCH.fullmatch(text):
            epoch.append((index, text))
            continue
        match = _ISO.fullmatch(text)
        if match is not None:
            (offset if match[1] else naive).append((index, text))
    if epoch:
        positions, texts = zip(*epoch, strict=True)
        seconds = pd.to_numeric(pd.Series(texts), errors="coerce")
        stamps = pd.to_datetime(seconds, unit="s", errors="coerce").dt.floor("us")
        result[list(positions)] = stamps.to_numpy(dtype="datetime64[ns]")
    if offset:
        positions, texts = zip(*offset, strict=True)
        pairs = _WALL_AND_OFFSET.findall("".join(f"{text}\n" for text in texts))
        result[list(positions)] = _with_offsets(pairs)
    if naive:
        positions, texts = zip(*naive, strict=True)
        result[list(positions)] = _localise(pd.Series(texts), tz)
    return result


def _wall_clock(texts: list[str]) -> np.ndarray:
    """ISO 8601 texts without offset -> naive datetime64[ns] (NaT when invalid), to the
    microsecond: numpy's strict parser when every text suits it, else pandas'."""
    try:
        return np.array(texts, dtype="datetime64[us]").astype("datetime64[ns]")
    except ValueError:
        parsed = pd.to_datetime(pd.Series(texts, dtype=object), format="ISO8601", errors="coerce")
        return parsed.dt.floor("us").to_numpy(dtype="datetime64[ns]")


def _offset_minutes(offset: str) -> int:
    if offset in ("Z", "z"):
        return 0
    digits = offset[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0)
    return -minutes if offset[0] == "-" else minutes


def _with_offsets(pairs: list[tuple[str, str]]) -> np.ndarray:
    """(wall-clock text, offset) pairs -> naive-UTC datetime64: parse the wall clock as
    naive (fast) and subtract the offset, instead of pandas' slower aware parser."""
    walls = pd.to_datetime(
        pd.Series([wall for wall, _ in pairs]), format="ISO8601", errors="coerce"
    )
    minutes: dict[str, int] = {}
    shifts = np.array(
        [minutes.setdefault(o, _offset_minutes(o)) for _, o in pairs], dtype="timedelta64[m]"
    )
    return (walls.dt.floor("us").to_numpy(dtype="datetime64[ns]") - shifts).astype("datetime64[ns]")


def _localise(texts: pd.Series, tz: ZoneInfo) -> np.ndarray:
    """Wall-clock strings in ``tz`` -> naive-UTC datetime64; times in a DST gap or overlap
    take Python's ``fold=0`` reading (gap: forward by the gap; overlap: first occurrence)."""
    wall = pd.Series(_wall_clock(list(texts)))
    aware = wall.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    result = aware.dt.tz_convert(UTC).dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    for position in np.flatnonzero(aware.isna().to_numpy() & wall.notna().to_numpy()):
        moment: datetime = wall.iloc[position].to_pydatetime().replace(tzinfo=tz)
        result[position] = np.datetime64(moment.astimezone(UTC).replace(tzinfo=None), "us")
    return result


def storage_text(instants: pd.Series, dialect: str | None) -> np.ndarray:
    """UTC instants as the bulk loader writes them: SQLAlchemy's own SQLite text (naive UTC,
    microseconds) on SQLite, ISO 8601 with ``+00:00`` for PostgreSQL's COPY."""
    if not len(instants):
        return np.array([], dtype=object)
    micros = instants.dt.tz_convert(UTC).dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    text = np.char.replace(np.datetime_as_string(micros, unit="us"), "T", " ")
    if dialect == "postgresql":
        text = np.char.add(text, "+00:00")
    return text.astype(object)


def utc_text(moment: datetime | pd.Timestamp) -> str:
    """An aware instant as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds), for messages."""
    return pd.Timestamp(moment).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
