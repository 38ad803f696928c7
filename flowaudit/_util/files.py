"""Files: atomic text writes (temp file in the same directory, then rename) and the one
content digest of an input file (the store's manifest key)."""

from __future__ import annotations

import hashlib
import io
import mmap
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path

from flowaudit.errors import CaptureError

HASH_WINDOW = 64 << 20  # bytes of a file mapped at a time while hashing


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` so no reader ever sees a half-written file (raises OSError)."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def file_digest(f: io.BufferedReader, cancelled: Callable[[], bool] = lambda: False) -> str:
    """sha256 of an open file: mapped window by window, or read (pipes, odd filesystems)."""
    st = os.fstat(f.fileno())
    if not stat.S_ISREG(st.st_mode):
        return hashlib.file_digest(f, "sha256").hexdigest()
    size = st.st_size
    h = hashlib.sha256()
    off = 0
    try:
        while off < size and not cancelled():
            n = min(HASH_WINDOW, size - off)
            with mmap.mmap(f.fileno(), n, access=mmap.ACCESS_READ, offset=off) as m:
                if hasattr(m, "madvise"):
                    m.madvise(mmap.MADV_SEQUENTIAL)
                h.update(m)
            off += n
    except (OSError, ValueError):
        f.seek(0)
        return hashlib.file_digest(f, "sha256").hexdigest()
    if cancelled():
        return ""
    if os.fstat(f.fileno()).st_size != size:  # the file changed size while it was hashed
        f.seek(0)
        return hashlib.file_digest(f, "sha256").hexdigest()
    return h.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The file's digest (hex): the manifest key of an input; CaptureError if unreadable."""
    try:
        with open(path, "rb") as f:
            return file_digest(f)
    except OSError as e:
        raise CaptureError(f"{path}: cannot read: {e.strerror}") from e
