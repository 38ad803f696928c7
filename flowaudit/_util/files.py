"""Files: atomic text writes (temp file in the same directory, then rename) and the one
content digest of an input file: BLAKE3-256 (hex, what ``b3sum`` prints), the store's
manifest key and every flow's ``capture_id``."""

from __future__ import annotations

import io
import mmap
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flowaudit.errors import CaptureError

DIGEST_NAME = "blake3"  # the content id's algorithm, as manifests and reports name it

HASH_WINDOW = 64 << 20  # bytes of a file mapped at a time while hashing


def not_regular(path: Path) -> bool:
    """Whether ``path`` exists and is not a regular file or a directory: a device such as
    ``/dev/null`` or a FIFO. A write goes straight into it: renaming a temp file onto it
    would replace the device with a file."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` so no reader ever sees a half-written file (raises OSError);
    a device or FIFO (``not_regular``) is written directly."""
    p = Path(path)
    if not_regular(p):
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)
        return
    tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


# blake3's all-core hashing runs on a thread pool that a forked child inherits without its
# threads: the child's first all-core hash would wait forever. After such a fork, one thread.
_pool = {"started": False, "lost": False}


def _forked() -> None:
    _pool["lost"] = _pool["started"]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def _hasher(threads: int) -> Any:
    import blake3

    if threads == 0 and not _pool["lost"]:
        _pool["started"] = True
        return blake3.blake3(max_threads=blake3.blake3.AUTO)
    return blake3.blake3(max_threads=max(1, threads))


def _read_digest(f: io.BufferedReader, threads: int) -> str:
    h = _hasher(threads)
    while chunk := f.read(1 << 20):
        h.update(chunk)
    return str(h.hexdigest())


def file_digest(
    f: io.BufferedReader, cancelled: Callable[[], bool] = lambda: False, *, threads: int = 1
) -> str:
    """BLAKE3-256 (hex) of an open file: mapped window by window, or read (pipes, odd
    filesystems). ``threads``: 1 beside a parser (it needs the other core), 0 for all
    cores (``blake3.AUTO``; a hash alone). "" when ``cancelled`` said stop."""
    st = os.fstat(f.fileno())
    if not stat.S_ISREG(st.st_mode):
        return _read_digest(f, threads)
    size = st.st_size
    h = _hasher(threads)
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
        return _read_digest(f, threads)
    if cancelled():
        return ""
    if os.fstat(f.fileno()).st_size != size:  # the file changed size while it was hashed
        f.seek(0)
        return _read_digest(f, threads)
    return str(h.hexdigest())


def digest_file(path: str | os.PathLike[str], *, threads: int = 0) -> str:
    """The file's content id (BLAKE3-256 hex), the manifest key of an input; CaptureError
    if unreadable."""
    try:
        with open(path, "rb") as f:
            return file_digest(f, threads=threads)
    except OSError as e:
        raise CaptureError(f"{path}: cannot read: {e.strerror}") from e
