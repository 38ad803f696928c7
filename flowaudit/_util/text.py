"""Text shown on a terminal: control characters made visible.

A file name, a baseline's name or a record field can hold an escape sequence; shown raw it
would drive the terminal that shows a report or an error. Every control character (C0,
DEL, C1) becomes ``\\xNN``; line breaks of our own messages can be kept.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def visible(s: str, *, keep_newlines: bool = False) -> str:
    """``s`` with its control characters shown as ``\\xNN`` (``\\n`` kept if asked)."""
    pattern = _CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL
    return pattern.sub(lambda m: f"\\x{ord(m.group()):02x}", s)


__all__ = ["visible"]
