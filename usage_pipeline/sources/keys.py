"""Inbox keys as text: an escaped form every key can be stored and passed around in, and the
rules that make a key unsafe to use (SPEC §1: ``..``, absolute, control characters, bytes
that are not UTF-8).

A local file name is read with Python's ``surrogateescape`` handling, so a byte that is not
UTF-8 arrives as a lone surrogate. :func:`escape_key` turns such a byte, and any control
character, into ``\\xNN`` (other control or surrogate code points into ``\\uNNNN``) and a
backslash into ``\\\\``, like Python's ``backslashreplace``; every other character is kept.
A safe key is its own escaped form, and :func:`unescape_key` gives the original back.
"""

from __future__ import annotations

import re
import unicodedata

_ESCAPE = re.compile(r"\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|(\\))")


def _needs_escape(char: str) -> bool:
    return char == "\\" or unicodedata.category(char) in ("Cc", "Cs")


def _escaped(char: str) -> str:
    code = ord(char)
    if char == "\\":
        return "\\\\"
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, under surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def escape_key(key: str) -> str:
    """The key as storable text (identical to ``key`` for every safe key)."""
    if not any(_needs_escape(c) for c in key):
        return key
    return "".join(_escaped(c) if _needs_escape(c) else c for c in key)


def _unescaped(match: re.Match[str]) -> str:
    byte, code, backslash = match.groups()
    if backslash:
        return "\\"
    if byte is not None:
        value = int(byte, 16)
        return chr(value) if value < 0x80 else chr(0xDC00 + value)
    return chr(int(code, 16))


def unescape_key(text: str) -> str:
    """The original key of an escaped key (a backslash not starting an escape stays)."""
    return _ESCAPE.sub(_unescaped, text) if "\\" in text else text


def leaves_inbox(key: str) -> bool:
    """Whether the key could address something outside the inbox (absolute or ``..``)."""
    return key.startswith("/") or ".." in key.split("/")


def key_problem(key: str) -> str | None:
    """Why an original (unescaped) key cannot be used safely, as a clause, or None."""
    if not key:
        return "its key is empty"
    if any(unicodedata.category(c) == "Cs" for c in key):
        return "its name holds bytes that are not UTF-8 (the key is recorded with them as \\xNN)"
    if any(unicodedata.category(c) == "Cc" for c in key):
        return "its name holds a control character (the key is recorded with it as \\xNN)"
    if "\\" in key:
        return "its name holds a backslash (the key is recorded with it doubled)"
    if key.startswith("/"):
        return "its key is an absolute path and is refused"
    if any(part in ("..", ".") for part in key.split("/")):
        return "its key has a '..' or '.' segment, which could lead outside the inbox"
    return None
