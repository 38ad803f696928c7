"""Writing reports to files: temp file + rename, never a half-written report."""

from __future__ import annotations

import os

from flowaudit._util.files import write_text_atomic
from flowaudit.errors import OutputError


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    try:
        write_text_atomic(path, text)
    except OSError as e:
        raise OutputError(f"{path}: cannot write report: {e.strerror}") from e
