"""Copying chosen records of a capture into a new pcap: the record walker and the writers.

Responsible for the byte side of evidence slices. ``iter_records(path)`` streams the
records of a pcap/pcapng file (gzip opened transparently), in the same order and with
the same record rules as the fast reader (``ingest/pcap.py``: EPB, SPB and obsolete OPB
blocks are records; a record cut short by the end of the file ends the walk), yielding
each record's link type and captured bytes, or only its lengths when the caller does
not want the bytes. ``PcapWriter`` writes classic little-endian pcap with nanosecond
timestamps; ``PcapngWriter`` writes pcapng (one IDB per link type, ``if_tsresol`` 9)
for slices whose records span several link types or timestamps a classic pcap cannot
hold. Frame bytes are written unchanged (VLAN tags and all). Memory holds one record.
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from flowaudit.errors import CaptureError
from flowaudit.kernels.layout import MAX_RECORD
from flowaudit.packets.detect import GZIP_MAGIC, PCAP_MAGICS, PCAPNG_MAGIC

SNAPLEN = 262144
PCAP_NS_MAGIC = 0xA1B23C4D
SHB, IDB, OPB, SPB, EPB = 0x0A0D0D0A, 1, 2, 3, 6


@dataclass
class Record:
    """One capture record: its index (capture order), link type, lengths and bytes."""

    index: int
    link: int
    caplen: int
    wire_len: int
    data: bytes | None  # None when the walk was asked to skip the bytes


def _open(path: Path) -> tuple[IO[bytes], IO[bytes], bool]:
    try:
        raw: IO[bytes] = open(path, "rb")
    except OSError as e:
        raise CaptureError(f"{path}: cannot open: {e.strerror or e}") from e
    gz = raw.read(2) == GZIP_MAGIC
    raw.seek(0)
    stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")) if gz else raw
    return raw, stream, gz


def iter_records(
    path: str | Path, want: Callable[[int], bool] = lambda i: True
) -> Iterator[Record]:
    """Yield every record of ``path`` in capture order; bytes only where ``want(index)``."""
    p = Path(path)
    raw, stream, gz = _open(p)
    size = os.fstat(raw.fileno()).st_size
    with raw:

        def skip(n: int) -> bool:
            if gz:
                while n > 0:
                    got = len(stream.read(min(n, 1 << 20)))
                    if got == 0:
                        return False
                    n -= got
                return True
            return stream.seek(n, 1) <= size

        head = stream.read(4)
        if head in PCAP_MAGICS:
            yield from _pcap(p, stream, head, want, skip)
        elif head == PCAPNG_MAGIC:
            yield from _pcapng(p, stream, head, want, skip)
        else:
            raise CaptureError(f"{p}: not a pcap or pcapng file at byte 0 (magic {head.hex()})")


def _pcap(
    p: Path,
    s: IO[bytes],
    head: bytes,
    want: Callable[[int], bool],
    skip: Callable[[int], bool],
) -> Iterator[Record]:
    big, _nsec = PCAP_MAGICS[head]
    rest = s.read(20)
    if len(rest) < 20:
        raise CaptureError(f"{p}: truncated pcap file header at byte {4 + len(rest)}")
    e = ">" if big else "<"
    link = struct.unpack(e + "I", rest[16:20])[0] & 0x03FFFFFF
    hdr = struct.Struct(e + "8xII")
    i = 0
    while True:
        h = s.read(16)
        if len(h) < 16:
            return
        caplen, wire = hdr.unpack(h)
        if caplen > MAX_RECORD:
            return  # the reader stops here too (corrupt record)
        if want(i):
            data = s.read(caplen)
            if len(data) < caplen:
                return
            yield Record(i, link, caplen, wire, data)
        else:
            if not skip(caplen):
                return
            yield Record(i, link, caplen, wire, None)
        i += 1


def _pcapng(
    p: Path,
    s: IO[bytes],
    head: bytes,
    want: Callable[[int], bool],
    skip: Callable[[int], bool],
) -> Iterator[Record]:
    e = "<"
    links: list[int] = []
    i = 0
    pending = head
    while True:
        h = pending + s.read(8 - len(pending))
        pending = b""
        if len(h) < 8:
            return
        if h[:4] == PCAPNG_MAGIC:
            bom = s.read(4)
            if len(bom) < 4:
                return
            e = ">" if bom == b"\x1a\x2b\x3c\x4d" else "<"
            blen = struct.unpack(e + "I", h[4:8])[0]
            if blen < 28 or not skip(blen - 12):
                return
            links = []
            continue
        btype, blen = struct.unpack(e + "II", h)
        if blen < 12 or blen > MAX_RECORD or blen & 3:
            return
        if btype == IDB:
            body = s.read(blen - 8)
            if len(body) < blen - 8:
                return
            links.append(struct.unpack(e + "H", body[:2])[0])
            continue
        if btype in (EPB, OPB, SPB):
            body = s.read(blen - 8)
            if len(body) < blen - 8:
                return
            if btype == SPB:
                wire = struct.unpack(e + "I", body[:4])[0]
                caplen, off, iface = min(wire, blen - 16), 4, 0
            else:
                iface = struct.unpack(
                    e + ("I" if btype == EPB else "H"), body[: 4 if btype == EPB else 2]
                )[0]
                caplen, wire = struct.unpack(e + "II", body[12:20])
                off = 20
            if iface >= len(links):
                return
            data = body[off : off + caplen] if want(i) else None
            yield Record(i, links[iface], caplen, wire, data)
            i += 1
            continue
        if not skip(blen - 8):
            return


def count_records(path: str | Path) -> int:
    """How many records ``path`` holds (what the reader calls frames)."""
    n = 0
    for _ in iter_records(path, lambda i: False):
        n += 1
    return n


class PcapWriter:
    """Classic pcap, little-endian, nanosecond timestamps, one link type."""

    format = "pcap"

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.link: int | None = None  # the header is written with the first record

    def _header(self, link: int) -> None:
        self.link = link
        self.out.write(struct.pack("<IHHiIII", PCAP_NS_MAGIC, 2, 4, 0, 0, SNAPLEN, link))

    def fits(self, link: int, ts_ns: int) -> bool:
        same = self.link is None or link == self.link
        return same and 0 <= ts_ns < (1 << 32) * 1_000_000_000

    def finish(self) -> None:
        if self.link is None:
            self._header(1)  # no record: an empty Ethernet capture

    def write(self, link: int, ts_ns: int, wire_len: int, data: bytes) -> None:
        if self.link is None:
            self._header(link)
        sec, ns = divmod(ts_ns, 1_000_000_000)
        self.out.write(struct.pack("<IIII", sec, ns, len(data), wire_len))
        self.out.write(data)


class PcapngWriter:
    """pcapng, little-endian: one IDB per link type (``if_tsresol`` = 9, ns), EPB records."""

    format = "pcapng"

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.ifaces: dict[int, int] = {}
        out.write(struct.pack("<IIIHHqI", SHB, 28, 0x1A2B3C4D, 1, 0, -1, 28))

    def fits(self, link: int, ts_ns: int) -> bool:
        return True

    def finish(self) -> None:
        pass

    def write(self, link: int, ts_ns: int, wire_len: int, data: bytes) -> None:
        iface = self.ifaces.get(link)
        if iface is None:
            iface = self.ifaces[link] = len(self.ifaces)
            # IDB: link, reserved, snaplen, option if_tsresol=9, opt_endofopt
            self.out.write(struct.pack("<IIHHIHHBxxxHHI", IDB, 32, link, 0, 0, 9, 1, 9, 0, 0, 32))
        pad = (-len(data)) & 3
        blen = 32 + len(data) + pad
        ts = ts_ns & 0xFFFFFFFFFFFFFFFF
        self.out.write(
            struct.pack(
                "<IIIIIII", EPB, blen, iface, ts >> 32, ts & 0xFFFFFFFF, len(data), wire_len
            )
        )
        self.out.write(data + b"\0" * pad + struct.pack("<I", blen))


@dataclass(frozen=True)
class SlicePart:
    """The records to copy from one capture: indices (ascending), times and wire lengths
    as the reader decoded them (the walk checks the lengths agree)."""

    path: Path
    index: Sequence[int]
    ts_ns: Sequence[int]
    wire_len: Sequence[int]
    # the frames' stream positions, caplens and link types when the reader gave them
    # (packets.RECORD_FIELDS): then the frames are read in place, without a walk
    pos: Sequence[int] = ()
    caplen: Sequence[int] = ()
    link: Sequence[int] = ()


def _located(part: SlicePart) -> Iterator[Record]:
    """The part's records read at their positions (ascending; gzip seeks forward)."""
    raw, stream, _ = _open(part.path)
    try:
        for k, i in enumerate(part.index):
            stream.seek(part.pos[k])
            data = stream.read(part.caplen[k])
            if len(data) != part.caplen[k]:
                raise CaptureError(
                    f"{part.path}: record {i} at byte {part.pos[k]} is cut short "
                    "(file shorter than when it was read?)"
                )
            yield Record(i, part.link[k], part.caplen[k], part.wire_len[k], data)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise CaptureError(f"{part.path}: cannot read a selected record: {e}") from e
    finally:
        raw.close()


@dataclass(frozen=True)
class SliceInfo:
    """What ``write_slice`` wrote."""

    format: str  # "pcap" or "pcapng"
    link_types: tuple[int, ...]
    packets: int


class _NeedPcapng(Exception):
    pass


def write_slice(out: IO[bytes], parts: Sequence[SlicePart]) -> SliceInfo:
    """Copy the chosen records of each part, in order, into ``out`` (a seekable file).

    Classic pcap (the records' link type, ns timestamps) when all records share one link
    type and fit pcap's 32-bit seconds, else pcapng. Frame bytes are copied unchanged.
    """
    try:
        return _copy(out, parts, PcapWriter(out))
    except _NeedPcapng:
        out.seek(0)
        out.truncate()
        return _copy(out, parts, PcapngWriter(out))


def _copy(out: IO[bytes], parts: Sequence[SlicePart], w: PcapWriter | PcapngWriter) -> SliceInfo:
    links: set[int] = set()
    n = 0
    for part in parts:
        if not part.index:
            continue
        wanted = {i: k for k, i in enumerate(part.index)}
        last = part.index[-1]
        got = 0
        located = len(part.pos) == len(part.index)
        records = _located(part) if located else iter_records(part.path, wanted.__contains__)
        for rec in records:
            k = wanted.get(rec.index)
            if k is not None and rec.data is not None:
                if rec.wire_len != part.wire_len[k]:
                    raise CaptureError(
                        f"{part.path}: record {rec.index} has wire length {rec.wire_len}, "
                        f"the reader decoded {part.wire_len[k]}: the file changed while reading?"
                    )
                if not w.fits(rec.link, part.ts_ns[k]):
                    raise _NeedPcapng
                w.write(rec.link, part.ts_ns[k], rec.wire_len, rec.data)
                links.add(rec.link)
                got += 1
            if rec.index >= last:
                break
        if got != len(part.index):
            raise CaptureError(
                f"{part.path}: {len(part.index) - got} selected record(s) not found "
                f"(file shorter than when it was read?)"
            )
        n += got
    w.finish()
    return SliceInfo(w.format, tuple(sorted(links)), n)


__all__ = [
    "PcapWriter",
    "PcapngWriter",
    "Record",
    "SliceInfo",
    "SlicePart",
    "count_records",
    "iter_records",
    "write_slice",
]
