"""Writing reports to files: temp file + rename, never a half-written report."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from flowaudit.errors import OutputError


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{p}: cannot write report: {e.strerror}") from e
