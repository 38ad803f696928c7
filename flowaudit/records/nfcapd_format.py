"""nfcapd layout-2 files (nfdump 1.7) read directly: file header, data blocks, V3 records.

Responsible for turning the V3 flow records of an nfcapd file into numpy columns, in
chunks of about ``CHUNK_RECORDS`` records, without running ``nfdump`` (whose text output
bounds the nfdump path at ~90k records/s). ``nfcapd.py`` decides which path reads a file.

The format (nfdump 1.7.1 ``nffileV2.h``/``nfxV3.h``; every layout below was checked
field by field against ``nfdump -o fmt:`` on files written by nfcapd 1.7.1 and on the
real export in tests/data, see ``tests/unit/records/test_nfcapd_direct.py``):

* **File header**, 40 bytes little-endian: magic 0xA50C, layout 2, nfdump version,
  creation time, compression (0 none, 1 LZO, 2 BZ2, 3 LZ4, 4 ZSTD), encryption,
  appendix block count, appendix offset, block size, block count.
* **Data block**: records u32, size u32 (bytes after this 12-byte header), type u16
  (3 = V3 records), flags u16; the body compressed with the file's compression.
* **Record**: type u16, size u16 (with this header). Type 11 = V3 flow record: a
  12-byte header (element count u8, engine type/id, flags, exporter SysID u16, NetFlow
  version, pad) and elements of (type u16, length u16 with this header, data).
  Other types (7 exporter, 8 exporter statistics, 15 sampler, 0x8001/0x8002 appendix,
  later additions) are not flows: exporters and samplers come from ``nfdump -E``.
* **Elements used**: 1 generic flow (first/last/received ms u64, in packets/bytes u64,
  src/dst port u16 — ICMP: type·256+code in the destination port —, protocol, TCP
  flags, forwarding status, ToS), 2 IPv4 addresses (u32 ×2), 3 IPv6 addresses (u64
  high, low ×2; a record may carry both, see ``_decode``), 5 counters (flows, out
  packets, out bytes, u64), 6 VLAN (src, dst u32), 12/13 received-from (exporter)
  IPv4/IPv6. All integers little-endian (host order of
  the writer; nfdump has no big-endian files in practice).

Handled here: uncompressed and BZ2 files (the standard library). Everything else —
layout 1 (nfdump 1.6), LZO/LZ4/ZSTD blocks, encryption, blocks of other types —
raises ``Unsupported`` before any record is read, and ``nfcapd.py`` reads the file
through ``nfdump`` instead. Damage found later (a block running past the end of the
file, a record or element length that does not fit) ends the file with a warning and
keeps what was read, as nfdump does.
"""

from __future__ import annotations

import bz2
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

from flowaudit.errors import CaptureError
from flowaudit.records.common import RecordStats

HEADER = struct.Struct("<HHIQBBHIQII")  # layout-2 file header, 40 bytes
BLOCK = struct.Struct("<IIHH")  # data block header, 12 bytes
V3_RECORD = 11
V3_BLOCK = 3
COMPRESSION_NAMES = {0: "none", 1: "LZO", 2: "BZ2", 3: "LZ4", 4: "ZSTD"}
READABLE = (0, 2)  # compressions read here; the others go through nfdump
MAX_BLOCK = 1 << 26  # nfdump writes blocks of at most a few MiB; more is damage
CHUNK_RECORDS = 200_000
PAD = 64  # zero bytes after a chunk, so gathers of absent elements stay in bounds
# element id → its length (with the 4-byte element header) in nfdump 1.7.1
ELEMENTS = {1: 52, 2: 12, 3: 36, 5: 28, 6: 12, 12: 8, 13: 20}

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


class Unsupported(Exception):
    """The file is an nfcapd file this reader does not handle (read it through nfdump)."""


@dataclass
class Header:
    layout: int
    compression: int
    encryption: int
    appendix_offset: int
    blocks: int


def read_header(f: IO[bytes], path: Path) -> Header:
    """The layout-2 header; ``Unsupported`` for what this reader leaves to nfdump."""
    raw = f.read(HEADER.size)
    if len(raw) < 4:
        raise CaptureError(f"{path}: not an nfcapd file: only {len(raw)} bytes at byte 0")
    magic, layout = struct.unpack_from("<HH", raw)
    if layout != 2 or len(raw) < HEADER.size:
        raise Unsupported(f"layout {layout}")
    _, _, _, _, comp, enc, _, _, appendix, _, blocks = HEADER.unpack(raw)
    if comp not in READABLE:
        raise Unsupported(f"{COMPRESSION_NAMES.get(comp, comp)} compression")
    if enc:
        raise Unsupported("encryption")
    return Header(layout, comp, enc, appendix, blocks)


def _blocks(
    f: IO[bytes], path: Path, head: Header, stats: RecordStats, damage: list[str]
) -> Iterator[tuple[int, int, bytes]]:
    """(file offset, record count, uncompressed body) of every V3 data block."""
    off = HEADER.size
    first = True
    while True:
        raw = f.read(BLOCK.size)
        if not raw:
            return
        if len(raw) < BLOCK.size:
            damage.append(f"{path}: byte {off}: data block header cut short; the rest is missing")
            return
        nrec, size, btype, _flags = BLOCK.unpack(raw)
        if size > MAX_BLOCK:
            damage.append(
                f"{path}: byte {off}: corrupt data block (size {size}); the rest of the file "
                "is skipped"
            )
            return
        body = f.read(size)
        if len(body) < size:
            damage.append(
                f"{path}: byte {off}: data block of {size} bytes cut at {len(body)}; "
                "the rest is missing"
            )
            return
        if btype != V3_BLOCK:
            if first:
                raise Unsupported(f"data block type {btype}")
            stats.count("nfcapd_blocks_skipped")
            stats.warn(f"{path}: byte {off}: data block of type {btype} skipped")
        else:
            if head.compression == 2:
                try:
                    body = bz2.decompress(body)
                except (OSError, ValueError) as e:
                    damage.append(
                        f"{path}: byte {off}: BZ2 block does not decompress ({e}); the rest "
                        "of the file is skipped"
                    )
                    return
            yield off, nrec, body
        first = False
        off += BLOCK.size + size


def _walk(body: bytes, nrec: int) -> tuple[npt.NDArray[np.int64], int]:
    """Record offsets in a block body, and the offset where the walk had to stop (-1 when
    every announced record was found). Records of one layout usually follow each other
    (one exporter, one template): a run of equal sizes is checked in one numpy step,
    anything else is stepped through one record at a time."""
    u8 = np.frombuffer(body, np.uint8)
    parts: list[npt.NDArray[np.int64]] = []
    single: list[int] = []
    p, end, got = 0, len(body), 0
    window, slow = 16, 0
    while got < nrec:
        if p + 4 > end:
            break
        size = body[p + 2] | (body[p + 3] << 8)
        if size < 4 or p + size > end:
            break
        k_max = min(nrec - got, (end - p) // size, window)
        if slow or k_max < 4:
            single.append(p)
            p, got, slow = p + size, got + 1, max(slow - 1, 0)
            continue
        if single:
            parts.append(np.asarray(single, np.int64))
            single = []
        starts = p + size * np.arange(k_max, dtype=np.int64)
        sizes = u8[starts + 2].astype(np.int64) | (u8[starts + 3].astype(np.int64) << 8)
        diff = np.flatnonzero(sizes != size)
        k = int(diff[0]) if len(diff) else k_max
        parts.append(starts[:k])
        p, got = p + k * size, got + k
        if k == window:
            window = min(window * 4, 1 << 14)
        elif k < 4:
            window, slow = 16, 32
    if single:
        parts.append(np.asarray(single, np.int64))
    offs = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return offs, (-1 if got == nrec else p)


def _u(buf: U8, off: I64, width: int) -> npt.NDArray[np.uint64]:
    """Little-endian unsigned integers of ``width`` bytes at byte offsets ``off``
    (``buf``'s length a multiple of 4)."""
    words = buf.view("<u4")
    w = off >> 2
    aligned = not (off & 3).any()
    out: npt.NDArray[np.uint64]
    if width == 8 and aligned:
        out = words[w].astype(np.uint64) | (words[w + 1].astype(np.uint64) << np.uint64(32))
    elif width == 4 and aligned:
        out = words[w].astype(np.uint64)
    elif width <= 2 and not ((off & 3) + width > 4).any():
        v = words[w] >> ((off & 3) * 8).astype(np.uint32)
        out = (v & np.uint32((1 << (8 * width)) - 1)).astype(np.uint64)
    else:  # unaligned: byte by byte
        idx = off[:, None] + np.arange(width, dtype=np.int64)
        dt = {1: "<u1", 2: "<u2", 4: "<u4", 8: "<u8"}[width]
        out = buf[idx].view(dt).reshape(len(off)).astype(np.uint64)
    return out


@dataclass
class RawRecords:
    """Columns of the V3 flow records of one chunk (absent elements read as 0)."""

    ipv: npt.NDArray[np.int8]  # 4, 6, or 0 (no address element)
    src_hi: npt.NDArray[np.uint64]
    src_lo: npt.NDArray[np.uint64]
    dst_hi: npt.NDArray[np.uint64]
    dst_lo: npt.NDArray[np.uint64]
    first_ms: npt.NDArray[np.uint64]
    last_ms: npt.NDArray[np.uint64]
    packets: npt.NDArray[np.uint64]
    octets: npt.NDArray[np.uint64]
    out_packets: npt.NDArray[np.uint64]
    out_octets: npt.NDArray[np.uint64]
    src_port: npt.NDArray[np.uint64]
    dst_port: npt.NDArray[np.uint64]
    proto: npt.NDArray[np.uint64]
    flags: npt.NDArray[np.uint64]
    src_vlan: npt.NDArray[np.uint64]
    sysid: npt.NDArray[np.uint64]
    ra_ipv: npt.NDArray[np.int8]  # 4, 6, or 0 (no received-from element)
    ra_hi: npt.NDArray[np.uint64]
    ra_lo: npt.NDArray[np.uint64]

    def __len__(self) -> int:
        return len(self.ipv)


def _decode(buf: U8, offs: I64, path: Path, stats: RecordStats) -> RawRecords:
    """V3 records at ``offs`` (record starts in ``buf``) → columns."""
    n = len(offs)
    size = _u(buf, offs + 2, 2).astype(np.int64)
    nel = buf[offs + 4].astype(np.int64)
    sysid = _u(buf, offs + 8, 2)
    end = offs + size
    pos = offs + 12
    at = {e: np.full(n, -1, np.int64) for e in ELEMENTS}
    bad = np.zeros(n, bool)
    rows = np.arange(n)
    for j in range(int(nel.max()) if n else 0):
        act = rows[(nel > j) & ~bad]
        if len(act) == 0:
            break
        p = pos[act]
        short = p + 4 > end[act]
        et = _u(buf, np.where(short, 0, p), 2).astype(np.int64)
        el = _u(buf, np.where(short, 0, p + 2), 2).astype(np.int64)
        need = np.zeros(len(p), np.int64)
        for e, length in ELEMENTS.items():
            need[et == e] = length
        broken = short | (el < np.maximum(need, 4)) | (p + el > end[act])
        if broken.any():
            bad[act[broken]] = True
            act, p, et, el = act[~broken], p[~broken], et[~broken], el[~broken]
        for e in ELEMENTS:
            m = et == e
            if m.any():
                at[e][act[m]] = p[m] + 4
        pos[act] = p + el
    if bad.any():
        nbad = int(bad.sum())
        stats.skipped += nbad
        stats.count("nfcapd_corrupt_records", nbad)
        stats.warn(
            f"{path}: {nbad} V3 record(s) with an element too short or running past the "
            "record skipped"
        )

    has = {e: at[e] >= 0 for e in ELEMENTS}
    every = {e: bool(h.all()) for e, h in has.items()}
    some = {e: every[e] or bool(h.any()) for e, h in has.items()}

    def field(e: int, delta: int, width: int) -> npt.NDArray[np.uint64]:
        o = at[e]
        if every[e]:  # the usual case: one layout, the element in every record
            return _u(buf, o + delta, width)
        if not some[e]:
            return np.zeros(n, np.uint64)
        v = _u(buf, np.where(has[e], o + delta, 0), width)
        return np.where(has[e], v, np.uint64(0))

    gen = at[1] >= 0
    # nfdump expands the elements in order into one address slot and flags the record
    # IPv6 when it has an IPv6 element: with both, an IPv4 element after the IPv6 one
    # leaves the IPv6 address ::a.b.c.d (Cisco exports seen in pmacct's tests do that)
    v6 = at[3] >= 0
    v4 = (at[2] >= 0) & ~v6
    v4_over_v6 = v6 & (at[2] > at[3])
    ipv = np.where(v4, 4, np.where(v6, 6, 0)).astype(np.int8)
    s4, d4 = field(2, 0, 4), field(2, 4, 4)
    prefix = np.uint64(0xFFFF00000000)
    zero = np.uint64(0)
    src_hi = np.where(v6 & ~v4_over_v6, field(3, 0, 8), zero)
    src_lo = np.where(v4_over_v6, s4, np.where(v6, field(3, 8, 8), prefix | s4))
    dst_hi = np.where(v6 & ~v4_over_v6, field(3, 16, 8), zero)
    dst_lo = np.where(v4_over_v6, d4, np.where(v6, field(3, 24, 8), prefix | d4))
    r6 = at[13] >= 0
    r4 = (at[12] >= 0) & ~r6
    ra_ipv = np.where(r4, 4, np.where(r6, 6, 0)).astype(np.int8)
    keep = ~bad
    out = RawRecords(
        ipv=ipv,
        src_hi=src_hi,
        src_lo=src_lo,
        dst_hi=dst_hi,
        dst_lo=dst_lo,
        first_ms=field(1, 0, 8),
        last_ms=field(1, 8, 8),
        packets=field(1, 24, 8),
        octets=field(1, 32, 8),
        out_packets=field(5, 8, 8),
        out_octets=field(5, 16, 8),
        src_port=field(1, 40, 2),
        dst_port=field(1, 42, 2),
        proto=field(1, 44, 1),
        flags=np.where(gen, field(1, 45, 1), np.uint64(0)),
        src_vlan=field(6, 0, 4),
        sysid=sysid,
        ra_ipv=ra_ipv,
        ra_hi=np.where(r6, field(13, 0, 8), np.uint64(0)),
        ra_lo=np.where(r6, field(13, 8, 8), prefix | field(12, 0, 4)),
    )
    if keep.all():
        return out
    return RawRecords(**{k: v[keep] for k, v in vars(out).items()})


def iter_raw_records(
    path: Path, stats: RecordStats, chunk_records: int = CHUNK_RECORDS
) -> Iterator[RawRecords]:
    """The V3 flow records of a layout-2 nfcapd file, in chunks. Raises ``Unsupported``
    (before yielding anything) when the file must be read through nfdump, and
    CaptureError when damage stops the file before any flow record was read (damage
    after that: a warning each, once the records before it are yielded)."""
    damage: list[str] = []
    yielded = False
    with open(path, "rb") as f:
        head = read_header(f, path)
        parts: list[bytes] = []
        offsets: list[I64] = []
        base = 0
        pending = 0
        for off, nrec, body in _blocks(f, path, head, stats, damage):
            o, stop = _walk(body, nrec)
            if stop >= 0:
                damage.append(
                    f"{path}: byte {off + BLOCK.size + stop}: corrupt record in a data block "
                    f"({len(o)} of {nrec} records read); the rest of the block is skipped"
                )
            if not len(o):
                continue
            typ = np.frombuffer(body, np.uint8)[o].astype(np.int64) | (
                np.frombuffer(body, np.uint8)[o + 1].astype(np.int64) << 8
            )
            flows = o[typ == V3_RECORD]
            other = len(o) - len(flows)
            if other:
                stats.count("nfcapd_other_records", other)
            if len(flows) == 0:
                continue
            parts.append(body + bytes(-len(body) % 8))  # keeps every part 8-byte aligned
            offsets.append(flows + base)
            base += len(parts[-1])
            pending += len(flows)
            if pending >= chunk_records:
                yielded = True
                yield _chunk(parts, offsets, path, stats)
                parts, offsets, base, pending = [], [], 0, 0
        if pending:
            yielded = True
            yield _chunk(parts, offsets, path, stats)
    if damage and not yielded:
        raise CaptureError(damage[0])
    for msg in damage:
        stats.warn(msg)


def _chunk(parts: list[bytes], offsets: list[I64], path: Path, stats: RecordStats) -> RawRecords:
    buf = np.frombuffer(b"".join([*parts, bytes(PAD)]), np.uint8)
    return _decode(buf, np.concatenate(offsets), path, stats)


__all__ = ["CHUNK_RECORDS", "RawRecords", "Unsupported", "iter_raw_records", "read_header"]
