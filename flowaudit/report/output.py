"""Writing reports to files: temp file + rename, never a half-written report."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from flowaudit._util.files import not_regular, write_text_atomic
from flowaudit.errors import OutputError


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    try:
        write_text_atomic(path, text)
    except OSError as e:
        raise OutputError(f"{path}: cannot write report: {e.strerror}") from e


def write_stream_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> None:
    """``write`` the report into a temp file beside ``path``, then rename it into place
    (a report streamed in pieces: its whole text is never in memory). A device or FIFO
    (``-o /dev/null``) is written directly, never replaced by a file."""
    p = Path(path)
    if not_regular(p):
        try:
            with open(p, "wb") as f:
                write(f)
        except OSError as e:
            raise OutputError(f"{path}: cannot write report: {e.strerror}") from e
        return
    tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write report: {e.strerror}") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
