"""The fast reader's view of a capture's bytes: a sliding window over the file.

Responsible for giving the record walks a numpy ``uint8`` array whose ``buf[start:end]``
are the next unread bytes of the capture, with ``base`` the file offset of ``buf[0]``,
and for moving that window forward (``fill``) or widening it (``ensure``) when a record
does not fit. Two implementations share the interface:

* ``MappedWindow`` maps a window of a regular file (``mmap``, copy-on-write so the
  array is writable yet nothing is ever copied): the kernels read the page cache in
  place and touch only the headers, instead of copying every byte of the capture
  through ``read``. Only the window is mapped, so resident memory stays bounded by
  its size, not the file's.
* ``StreamBuffer`` reads a stream (gzip, pipes) with ``readinto`` into one reusable
  buffer; a record cut by the chunk end is moved to the front before the next read.
"""

from __future__ import annotations

import mmap
import os
import zlib
from typing import IO

import numpy as np
import numpy.typing as npt

PAGE = mmap.ALLOCATIONGRANULARITY


class StreamBuffer:
    """A reusable read buffer over a stream: valid bytes are ``buf[start:end]``."""

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self.stream = stream
        self.buf: npt.NDArray[np.uint8] = np.empty(max(size, 4096), dtype=np.uint8)
        self.start = 0
        self.end = 0
        self.base = 0  # stream offset of buf[0]
        self.eof = False
        self.error: str | None = None  # a gzip/IO error that ended the stream early

    def offset(self, pos: int) -> int:
        return self.base + pos

    def fill(self) -> None:
        """Move the unread bytes to the front and read until the buffer is full or EOF."""
        if self.start:
            rest = self.end - self.start
            self.buf[:rest] = self.buf[self.start : self.end]
            self.base += self.start
            self.start, self.end = 0, rest
        mv = memoryview(self.buf)  # type: ignore[arg-type]
        while self.end < len(self.buf) and not self.eof:
            try:
                got = self.stream.readinto(mv[self.end :])  # type: ignore[attr-defined]
            except (EOFError, OSError, zlib.error) as e:
                self.eof, self.error = True, str(e) or type(e).__name__
                break
            if not got:
                self.eof = True
            else:
                self.end += got

    def ensure(self, nbytes: int) -> bool:
        """Make ``nbytes`` available at ``start`` (growing the buffer); False at EOF."""
        if self.end - self.start >= nbytes:
            return True
        if nbytes > len(self.buf):
            grown = np.empty(nbytes, dtype=np.uint8)
            rest = self.end - self.start
            grown[:rest] = self.buf[self.start : self.end]
            self.buf, self.base = grown, self.base + self.start
            self.start, self.end = 0, rest
        while self.end - self.start < nbytes and not self.eof:
            self.fill()
        return self.end - self.start >= nbytes

    def bytes_at(self, pos: int, n: int) -> bytes:
        return self.buf[pos : pos + n].tobytes()


class MappedWindow:
    """A window of ``window`` bytes of a regular file, mapped in place (same interface)."""

    def __init__(self, fd: int, size: int, window: int) -> None:
        self.fd = fd
        self.size = size
        self.window = max(PAGE, -(-window // PAGE) * PAGE)
        self.buf: npt.NDArray[np.uint8] = np.empty(0, dtype=np.uint8)
        self._map: mmap.mmap | None = None
        self.start = 0
        self.end = 0
        self.base = 0  # file offset of buf[0]
        self.eof = size == 0
        self.error: str | None = None

    def offset(self, pos: int) -> int:
        return self.base + pos

    def _map_at(self, offset: int, length: int) -> None:
        """Map from ``offset`` (rounded down to a page): a window, or ``length`` if larger."""
        lo = offset - offset % PAGE
        hi = min(self.size, max(lo + self.window, offset + length))
        self.buf = np.empty(0, dtype=np.uint8)  # drop the old view before its map goes
        self._map = None
        if hi > lo:
            m = mmap.mmap(self.fd, hi - lo, access=mmap.ACCESS_COPY, offset=lo)
            if hasattr(m, "madvise"):
                m.madvise(mmap.MADV_SEQUENTIAL)
            self._map = m
            self.buf = np.frombuffer(m, dtype=np.uint8)
        self.start, self.end, self.base = offset - lo, hi - lo, lo
        self.eof = hi >= self.size

    def fill(self) -> None:
        """Slide the window so that it starts at the first unread byte."""
        if not self.eof or self._map is None:
            self._map_at(self.base + self.start, 0)

    def ensure(self, nbytes: int) -> bool:
        """Make ``nbytes`` available at ``start`` (widening the window); False at EOF."""
        if self.end - self.start >= nbytes:
            return True
        if not self.eof:
            self._map_at(self.base + self.start, nbytes)
        return self.end - self.start >= nbytes

    def bytes_at(self, pos: int, n: int) -> bytes:
        return self.buf[pos : pos + n].tobytes()

    def position(self) -> int:
        return self.base + self.start

    def close(self) -> None:
        self.buf = np.empty(0, dtype=np.uint8)
        self._map = None


def open_window(raw: IO[bytes], chunk_bytes: int) -> MappedWindow | None:
    """A ``MappedWindow`` over ``raw`` when it is a non-empty regular file, else None."""
    try:
        fd = raw.fileno()
        st = os.fstat(fd)
    except (OSError, ValueError):
        return None
    import stat

    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return None
    return MappedWindow(fd, st.st_size, chunk_bytes)


__all__ = ["MappedWindow", "StreamBuffer", "open_window"]
