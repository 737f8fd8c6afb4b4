"""Server text made safe to keep: JSON's ``\\ud800`` escapes decode to lone surrogates, which
no journal, log file or request body can hold (issue 13)."""

from __future__ import annotations

__all__ = ["clean", "is_text"]


def is_text(value: str) -> bool:
    """Whether ``value`` encodes as UTF-8 (JSON's ``\\ud800`` escapes decode to lone
    surrogates, which no journal, log file or request body can hold)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean(value: str | None) -> str | None:
    """Server text made safe to store and print: lone surrogates become U+FFFD."""
    if value is None or value.isascii() or is_text(value):
        return value
    return "".join(_REPLACEMENT if _SURROGATES[0] <= c <= _SURROGATES[1] else c for c in value)


_SURROGATES = ("\ud800", "\udfff")
_REPLACEMENT = "\ufffd"
