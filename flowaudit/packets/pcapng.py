"""pcapng section and interface blocks for the fast reader (parsed in Python: they are rare).

Responsible for the Section Header Block (byte order, length checks) and the Interface
Description Block (link type, ``if_tsresol``, ``if_tsoffset``), kept as arrays the
pcapng walk kernel indexes by interface id (``Ifaces``). Errors are ``EOFError`` (the
block runs past the end of the file) or ``ValueError`` (a corrupt block); the reader
turns them into warnings or a ``CaptureError``.
"""

from __future__ import annotations

import struct

import numpy as np

from flowaudit.kernels.layout import MAX_RECORD
from flowaudit.packets.buffer import MappedWindow, StreamBuffer


class Ifaces:
    """The pcapng interface table of the current section, as arrays for the kernel."""

    def __init__(self) -> None:
        self.n = 0
        self.link = np.zeros(16, np.int32)
        self.kind = np.zeros(16, np.int64)
        self.mul = np.zeros(16, np.int64)
        self.shift = np.zeros(16, np.int64)
        self.off = np.zeros(16, np.int64)

    def add(self, link: int, tsresol: int, tsoffset_s: int) -> None:
        if self.n == len(self.link):
            for name in ("link", "kind", "mul", "shift", "off"):
                arr = getattr(self, name)
                setattr(self, name, np.concatenate([arr, np.zeros_like(arr)]))
        i, r = self.n, tsresol & 0x7F
        self.link[i] = link
        self.off[i] = tsoffset_s * 1_000_000_000
        if tsresol & 0x80:
            self.kind[i], self.shift[i] = 1, r
        else:
            self.kind[i] = 0
            self.mul[i] = 10 ** (9 - r) if r <= 9 else -(10 ** min(r - 9, 18))
        self.n += 1


def read_shb(b: MappedWindow | StreamBuffer) -> bool:
    """Parse the SHB at ``b.start``; return the section's byte order (True = big)."""
    if not b.ensure(12):
        raise EOFError
    bom = b.bytes_at(b.start + 8, 4)
    if bom == b"\x1a\x2b\x3c\x4d":
        big = True
    elif bom == b"\x4d\x3c\x2b\x1a":
        big = False
    else:
        raise ValueError(f"bad section byte-order magic {bom.hex()}")
    blen = struct.unpack(">I" if big else "<I", b.bytes_at(b.start + 4, 4))[0]
    if blen < 28 or blen % 4 or blen > MAX_RECORD:
        raise ValueError(f"bad section header block length {blen}")
    if not b.ensure(blen):
        raise EOFError
    b.start += blen
    return big


def read_idb(b: MappedWindow | StreamBuffer, big: bool, ifaces: Ifaces) -> None:
    e = ">" if big else "<"
    if not b.ensure(8):
        raise EOFError
    blen = struct.unpack(e + "I", b.bytes_at(b.start + 4, 4))[0]
    if blen < 20 or blen % 4 or blen > MAX_RECORD:
        raise ValueError(f"bad interface description block length {blen}")
    if not b.ensure(blen):
        raise EOFError
    body = b.bytes_at(b.start, blen)
    link = struct.unpack(e + "H", body[8:10])[0]
    tsresol, tsoffset = 6, 0
    p = 16
    while p + 4 <= blen - 4:
        code, olen = struct.unpack(e + "HH", body[p : p + 4])
        if code == 0:
            break
        val = body[p + 4 : p + 4 + olen]
        if code == 9 and olen >= 1:
            tsresol = val[0]
        elif code == 14 and olen >= 8:
            tsoffset = struct.unpack(e + "q", val[:8])[0]
        p += 4 + ((olen + 3) & ~3)
    ifaces.add(link, tsresol, tsoffset)
    b.start += blen
