"""The fast pcap/pcapng reader: a capture file → ``PacketBatch`` stream, in chunks.

``iter_packets(path)`` reads classic pcap (µs/ns, both byte orders) and pcapng (all
sections and interfaces, per-interface link type and timestamp resolution/offset),
through gzip when the file is gzip-compressed. A regular file is memory-mapped a window
of ``chunk_bytes`` at a time (``_buffer.py``: no copy of the capture's bytes); gzip and
other streams are read with ``readinto`` into one reusable buffer; a record cut by the
window's end is carried to the next window, so peak memory depends on the chunk size,
not the file size. The record walk and the header decode are compiled kernels
(``_kernels.py``, ``_decode.py``, loaded by ``flowaudit.kernels.build``); this module drives
them, parses the rare pcapng SHB/IDB blocks, and turns problems into warnings in
``ReadStats.warnings`` (truncated file, corrupt record, bad timestamps, link types the
reader does not decode) or, when nothing can be read at all, ``CaptureError``.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, cast

import numpy as np
import numpy.typing as npt

from flowaudit.errors import CaptureError
from flowaudit.kernels import layout as K
from flowaudit.kernels.build import kernels
from flowaudit.packets.batch import PacketBatch, ReadStats
from flowaudit.packets.buffer import MappedWindow, StreamBuffer, open_window
from flowaudit.packets.detect import GZIP_MAGIC, PCAP_MAGICS, PCAPNG_MAGIC
from flowaudit.packets.pcapng import Ifaces, read_idb, read_shb

SUPPORTED_LINKTYPES = frozenset({0, 1, 12, 14, 101, 108, 113, 228, 229, 276})
LINKTYPE_NAMES = {
    0: "NULL",
    1: "ETHERNET",
    9: "PPP",
    50: "PPP_HDLC",
    101: "RAW",
    105: "IEEE802_11",
    108: "LOOP",
    113: "LINUX_SLL",
    127: "IEEE802_11_RADIOTAP",
    160: "USER13",
    226: "IPNET",
    228: "IPV4",
    229: "IPV6",
    239: "NFLOG",
    258: "PKTAP",
    271: "VSOCK",
    274: "ETHERNET_MPACKET",
    276: "LINUX_SLL2",
}
# records per batch (scratch arrays are sized by this): small enough that the flow builder
# starts early and its work on the last batch, which nothing overlaps, is short
DEFAULT_BATCH = 1 << 16
WINDOW = 1 << 20  # walk+decode this many bytes at a time, while they are still in cache

_OUT_FIELDS = (
    ("vlan", np.int32),
    ("kind", np.uint8),
    ("ip_version", np.uint8),
    ("src_hi", np.uint64),
    ("src_lo", np.uint64),
    ("dst_hi", np.uint64),
    ("dst_lo", np.uint64),
    ("protocol", np.uint8),
    ("sport", np.uint16),
    ("dport", np.uint16),
    ("tcp_flags", np.uint8),
    ("ip_len", np.uint32),
    ("frag", np.uint8),
    ("frag_id", np.uint32),
)


# the inner records kernels/tunnel.find_inner writes (its argument order)
_INNER_REC = (
    ("row", np.int64),
    ("off", np.int64),
    ("cap", np.int64),
    ("len", np.int64),
    ("link", np.int32),
    ("tun", np.uint8),
    ("id", np.int64),
)


def _grown(
    old: dict[str, npt.NDArray[np.generic]],
    fields: tuple[tuple[str, type], ...],
    cap: int,
    keep: int,
) -> dict[str, npt.NDArray[np.generic]]:
    new: dict[str, npt.NDArray[np.generic]] = {k: np.empty(cap, dt) for k, dt in fields}
    for k, a in old.items():
        new[k][:keep] = a[:keep]
    return new


def _linktype_name(link: int) -> str:
    return f"{link} ({LINKTYPE_NAMES[link]})" if link in LINKTYPE_NAMES else str(link)


class _Walker:
    """Drives the kernels over one capture and builds the batches."""

    def __init__(
        self,
        name: str,
        buf: MappedWindow | StreamBuffer,
        stats: ReadStats,
        max_batch: int,
        positions: bool = False,
        tunnel_ports: npt.NDArray[np.uint8] | None = None,
    ) -> None:
        self.name, self.b, self.stats, self.positions = name, buf, stats, positions
        self.k = kernels()
        self.rec_off = np.empty(max_batch, np.int64)
        self.rec_pos = np.empty(max_batch, np.int64)  # stream offsets (rec_off moves with buf)
        self.rec_cap = np.empty(max_batch, np.int64)
        self.rec_link = np.empty(max_batch, np.int32)
        self._scratch(max_batch)
        # [bad sub-second fields, last timestamp, scratch of the walks' loads ahead]
        self.state = np.zeros(3, np.int64)
        self.packets = 0  # records decoded so far
        self.multi_link = False  # several link types possible: look at every record's
        self.warned_links: set[int] = set()
        # tunnels: ports (1 VXLAN, 2 Geneve by UDP destination port; GRE always), and the
        # inner records of the scratch rows so far (grown on demand)
        self.ports = tunnel_ports
        self.m = 0
        self.in_rec: dict[str, npt.NDArray[np.generic]] = {}
        self.in_out: dict[str, npt.NDArray[np.generic]] = {}
        self._inner_alloc(1024 if tunnel_ports is not None else 0)

    def _scratch(self, cap: int) -> None:
        """New arrays for the rows a batch hands over (the last batch keeps the old ones)."""
        self.rec_len = np.empty(cap, np.uint32)
        self.rec_ts = np.empty(cap, np.int64)
        self.out = {k: np.empty(cap, dt) for k, dt in _OUT_FIELDS}

    def _inner_alloc(self, cap: int) -> None:
        """(Re)allocate the inner records' arrays at ``cap`` rows, keeping the first ``m``."""
        self.in_rec = _grown(self.in_rec, _INNER_REC, cap, self.m)
        self.in_out = _grown(self.in_out, _OUT_FIELDS, cap, self.m)

    def opened(self, lo: int, hi: int) -> None:
        """Find and decode the inner frames of tunnelled records lo..hi-1 (kernels/tunnel)."""
        if self.ports is None or hi <= lo:
            return
        m0 = self.m
        o, r = self.out, self.in_rec
        i = lo
        while True:
            i, self.m = self.k.find_inner(
                self.b.buf, self.rec_off, self.rec_cap, self.rec_link, i, hi, o["kind"],
                o["protocol"], o["dport"], o["frag"], self.ports, *r.values(), self.m,
            )  # fmt: skip
            if i >= hi:
                break
            self._inner_alloc(2 * len(r["row"]))
            r = self.in_rec
        if self.m > m0:
            self.k.decode(self.b.buf, r["off"], r["cap"], r["link"], m0, self.m,
                          *self.in_out.values())  # fmt: skip

    def inner_batch(self) -> PacketBatch | None:
        """The inner packets found so far, as a batch with INNER_FIELDS; resets them."""
        m = self.m
        if not m:
            return None
        self.m = 0
        r, o = self.in_rec, self.out
        row = r["row"][:m]
        arrays: dict[str, npt.NDArray[np.generic]] = {
            "ts_ns": self.rec_ts[row],
            "wire_len": r["len"][:m].astype(np.uint32),
        }
        for k, v in self.in_out.items():
            arrays[k] = v[:m]
        arrays["tunnel"] = r["tun"][:m]
        arrays["tunnel_id"] = r["id"][:m]
        for k in ("vlan", "ip_version", "src_hi", "src_lo", "dst_hi", "dst_lo", "protocol"):
            arrays["outer_" + k] = o[k][row]
        arrays["outer_sport"] = o["sport"][row]
        arrays["outer_dport"] = o["dport"][row]
        self._inner_alloc(len(r["row"]))  # the batch keeps the arrays it was handed
        return PacketBatch(arrays)

    def limit(self, wide: bool) -> int:
        b = self.b
        return b.end if wide or b.end - b.start <= WINDOW else b.start + WINDOW

    def walked(self, lo: int, hi: int) -> None:
        """Keep the stream offsets of the rows the last walk added (before the buffer moves)."""
        if self.positions and hi > lo:
            np.add(self.rec_off[lo:hi], self.b.base, out=self.rec_pos[lo:hi])

    def decoded(self, lo: int, hi: int) -> None:
        """Decode the records the last walk added (scratch rows lo..hi-1)."""
        self.walked(lo, hi)
        if hi > lo:
            self.k.decode(self.b.buf, self.rec_off, self.rec_cap, self.rec_link, lo, hi,
                     *self.out.values())  # fmt: skip
            self.opened(lo, hi)
            self.packets += hi - lo

    def warn_stop(self, what: str, detail: str, pos: int) -> None:
        """Record why reading stopped early: ``FILE: WHAT at byte N: DETAIL (K packets read)``."""
        extra = f" [{self.b.error}]" if self.b.error else ""
        self.stats.warnings.append(
            f"{self.name}: {what} at byte {self.b.offset(pos)}: {detail}{extra}"
            f" ({self.packets} packets read)"
        )

    def emit(self, n: int) -> PacketBatch:
        """Hand the first ``n`` decoded scratch rows over as a new batch (the scratch arrays
        go with it, new ones take their place: no copy); update the stats."""
        inner = self.inner_batch()  # reads the outer rows first
        arrays: dict[str, npt.NDArray[np.generic]] = {
            "ts_ns": self.rec_ts[:n],
            "wire_len": self.rec_len[:n],
        }
        for k, v in self.out.items():
            arrays[k] = v[:n]
        self._scratch(len(self.rec_ts))
        out = arrays
        st = self.stats
        counts = np.bincount(out["kind"], minlength=5)
        st.frames += n
        st.ip_packets += int(counts[0])
        st.non_ip += int(counts[1])
        if counts[1]:
            st.count_non_ip(out["kind"], out["sport"])
        st.truncated += int(counts[2])
        st.unsupported += int(counts[3])
        st.malformed += int(counts[4])
        links = np.unique(self.rec_link[:n]) if self.multi_link else self.rec_link[:1]
        for link in (int(x) for x in links):
            st.link_types.add(link)
            if link not in SUPPORTED_LINKTYPES and link not in self.warned_links:
                self.warned_links.add(link)
                st.warnings.append(
                    f"{self.name}: link type {_linktype_name(link)} is not decoded by the"
                    " fast reader: its frames are counted as unsupported"
                    " (the tshark engine decodes more link types)"
                )
        batch = {k: arrays[k] for k in PacketBatch.empty().arrays}
        if self.positions:  # see packets.RECORD_FIELDS
            batch["rec_pos"] = self.rec_pos[:n].copy()
            batch["caplen"] = self.rec_cap[:n].copy()
            batch["link"] = self.rec_link[:n].copy()
        return PacketBatch(batch, inner=inner)

    def finish(self, nsec: bool) -> None:
        bad = int(self.state[0])
        if bad:
            unit, lim = ("ns", "1,000,000,000") if nsec else ("µs", "1,000,000")
            self.stats.warnings.append(
                f"{self.name}: {bad} packet(s) with a sub-second timestamp field ({unit})"
                f" ≥ {lim}; kept, normalised by carrying the excess into seconds"
            )


def _pcap(w: _Walker) -> Iterator[PacketBatch]:
    b, name = w.b, w.name
    if not b.ensure(24):
        raise CaptureError(
            f"{name}: truncated pcap file header at byte {b.end}: need 24 bytes, "
            f"file has {b.end - b.start}"
        )
    big, nsec = PCAP_MAGICS[b.bytes_at(0, 4)]
    link = struct.unpack(">I" if big else "<I", b.bytes_at(20, 4))[0] & 0x03FFFFFF
    b.start = 24
    n, wide = 0, False
    while True:
        lim = w.limit(wide)
        pos, n2, status = w.k.walk_pcap(
            b.buf, b.start, lim, big, nsec, link, w.rec_off, w.rec_cap, w.rec_len,
            w.rec_ts, w.rec_link, n, w.state, *w.out.values(),
        )  # fmt: skip
        w.walked(n, n2)
        w.opened(n, n2)
        w.packets += n2 - n  # walked and decoded
        w.stats.bytes_read += pos - b.start
        advanced, b.start, n = pos > b.start, pos, n2
        if status == K.FULL:
            yield w.emit(n)
            n = 0
            continue
        if status == K.NEED_DATA and lim < b.end:
            wide = not advanced  # a record longer than the window: walk to the buffer end
            continue
        wide = False
        if status == K.CORRUPT:
            caplen = struct.unpack(">I" if big else "<I", b.bytes_at(pos + 8, 4))[0]
            w.warn_stop("corrupt record", f"caplen {caplen} is impossible", pos)
            break
        # NEED_DATA: the record at pos is incomplete in the buffer
        have = b.end - pos
        need = 16
        if have >= 16:
            need = 16 + struct.unpack(">I" if big else "<I", b.bytes_at(pos + 8, 4))[0]
        if b.ensure(need):
            continue
        have = b.end - b.start
        if have == 0:
            break  # clean end of file
        if have < 16:
            w.warn_stop("truncated", f"record header cut short ({have} of 16 bytes)", b.start)
        else:
            w.warn_stop(
                "truncated",
                f"record of {need - 16} bytes runs past the end of the file"
                f" ({have - 16} bytes left)",
                b.start,
            )
        break
    if n:
        yield w.emit(n)
    w.finish(nsec)


def _pcapng(w: _Walker) -> Iterator[PacketBatch]:
    b = w.b
    ifaces = Ifaces()
    if_links: set[int] = set()  # link types of all interfaces of all sections so far
    big = False
    n, wide = 0, False
    while True:
        lim = w.limit(wide)
        pos, n2, status = w.k.walk_pcapng(
            b.buf, b.start, lim, big, ifaces.link, ifaces.kind, ifaces.mul,
            ifaces.shift, ifaces.off, ifaces.n, w.rec_off, w.rec_cap, w.rec_len,
            w.rec_ts, w.rec_link, n, w.state,
        )  # fmt: skip
        w.decoded(n, n2)
        w.stats.bytes_read += pos - b.start
        advanced, b.start, n = pos > b.start, pos, n2
        if status == K.FULL:
            yield w.emit(n)
            n = 0
            continue
        if status == K.NEED_DATA and lim < b.end:
            wide = not advanced
            continue
        wide = False
        if status == K.PY_BLOCK:
            start = b.start
            try:
                btype = b.bytes_at(pos, 4)
                if btype == PCAPNG_MAGIC:
                    big = read_shb(b)
                    ifaces = Ifaces()
                else:
                    read_idb(b, big, ifaces)
                    if_links.add(int(ifaces.link[ifaces.n - 1]))
                    w.multi_link = len(if_links) > 1
            except EOFError:
                w.warn_stop("truncated", "block runs past the end of the file", b.start)
                break
            except ValueError as e:
                if not w.packets and b.offset(start) == 0:
                    raise CaptureError(f"{w.name}: not a pcapng file at byte 0: {e}") from e
                w.warn_stop("corrupt pcapng block", str(e), b.start)
                break
            w.stats.bytes_read += b.start - start
            continue
        if status == K.CORRUPT:
            btype, blen = struct.unpack(">II" if big else "<II", b.bytes_at(pos, 8))
            w.warn_stop("corrupt pcapng block", f"type 0x{btype:x}, length {blen}", pos)
            break
        if status == K.BAD_IFACE:
            w.warn_stop(
                "corrupt pcapng packet block", f"unknown interface ({ifaces.n} defined)", pos
            )
            break
        # NEED_DATA
        need = 8
        if b.end - pos >= 8:
            need = struct.unpack(">I" if big else "<I", b.bytes_at(pos + 4, 4))[0]
        if b.ensure(max(need, 8)):
            continue
        have = b.end - b.start
        if have == 0:
            break
        if have < 8:
            w.warn_stop("truncated", f"block header cut short ({have} of 8 bytes)", b.start)
        else:
            w.warn_stop(
                "truncated",
                f"block of {need} bytes runs past the end of the file ({have} bytes left)",
                b.start,
            )
        break
    if n:
        yield w.emit(n)
    w.finish(True)


def iter_packets(
    path: str | Path,
    stats: ReadStats | None = None,
    chunk_bytes: int = 32 << 20,
    *,
    max_batch: int = DEFAULT_BATCH,
    progress: Callable[[int], None] | None = None,
    positions: bool = False,
    tunnel_ports: npt.NDArray[np.uint8] | None = None,
) -> Iterator[PacketBatch]:
    """Yield ``PacketBatch`` objects for every frame of a pcap/pcapng(.gz) file, in order.

    ``positions``: also give each frame's stream position, caplen and link type
    (``packets.RECORD_FIELDS``, for the evidence slicer; ingest does not pay for them).
    ``tunnel_ports`` (``packets.tunnels.port_table``): open VXLAN/Geneve/GRE frames; each
    batch's ``inner`` then holds their inner packets.

    ``stats`` (optional) is updated as batches are produced: counts per kind, bytes of
    capture data consumed, link types seen, and warnings (truncation, corruption, bad
    timestamps, undecoded link types). ``progress``, when given, is called after each
    batch with the number of bytes of the file on disk read so far (compressed bytes
    for gzip), for progress bars. Raises ``CaptureError`` when the file cannot be
    opened, is empty, or is not a pcap/pcapng capture (bad magic, offset 0).
    """
    stats = stats if stats is not None else ReadStats()
    name = str(path)
    try:
        raw: IO[bytes] = open(path, "rb")
    except OSError as e:
        raise CaptureError(f"{name}: cannot open: {e.strerror or e}") from e
    with raw:
        gz = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")) if gz else raw
        mapped = None if gz else open_window(raw, chunk_bytes)
        buf = mapped if mapped is not None else StreamBuffer(stream, chunk_bytes)
        position = mapped.position if mapped is not None else raw.tell
        buf.fill()
        if buf.end == 0:
            if buf.error:
                raise CaptureError(f"{name}: unreadable gzip stream at byte 0: {buf.error}")
            raise CaptureError(f"{name}: empty file at byte 0: not a capture")
        magic = buf.bytes_at(0, 4)
        w = _Walker(name, buf, stats, max_batch, positions, tunnel_ports)
        if magic in PCAP_MAGICS:
            gen = _pcap(w)
        elif magic == PCAPNG_MAGIC:
            gen = _pcapng(w)
        else:
            raise CaptureError(
                f"{name}: not a pcap or pcapng file at byte 0 (magic {magic.hex()})",
                hint="the fast reader reads pcap and pcapng, optionally gzip-compressed",
            )
        try:
            for batch in gen:
                if progress is not None:
                    progress(position())
                yield batch
            if progress is not None:
                progress(raw.tell() if mapped is None else mapped.size)
        finally:
            if mapped is not None:
                mapped.close()


def read_all(path: str | Path, stats: ReadStats | None = None) -> PacketBatch:
    """Read a whole (small) capture into one ``PacketBatch``: for tests and notebooks."""
    batches = list(iter_packets(path, stats=stats))
    if not batches:
        return PacketBatch.empty()
    return PacketBatch(
        {k: np.concatenate([b.arrays[k] for b in batches]) for k in batches[0].arrays}
    )


__all__ = ["LINKTYPE_NAMES", "SUPPORTED_LINKTYPES", "iter_packets", "read_all"]
