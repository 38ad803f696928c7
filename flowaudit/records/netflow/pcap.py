"""UDP payloads out of a pcap/pcapng capture, for the NetFlow/IPFIX reader.

Export captures are small (one datagram carries tens of records), so this is a plain
Python record walk with ``struct``; the fast packet reader is not involved. It yields
``(exporter address text, UDP payload, byte offset of the record)`` for every complete,
unfragmented UDP datagram over IPv4 or IPv6, behind the link types of
``linklayer.ip_offset`` (Ethernet with tags or PPPoE, Linux SLL/SLL2, BSD loopback, raw
IP). Everything else (other protocols, fragments, frames cut short by the snap length) is counted in
the ``counts`` dict the caller passes and skipped. gzip is opened transparently.
"""

from __future__ import annotations

import ipaddress
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from flowaudit.errors import CaptureError
from flowaudit.packets.detect import PCAP_MAGICS, PCAPNG_MAGIC, open_stream
from flowaudit.packets.linklayer import ip_offset

IPV6_EXT = (0, 43, 60)  # hop-by-hop, routing, destination options
#: libpcap's rule: a pcap record longer than max(snaplen, 262144) bytes is corrupt
MAX_SNAPLEN = 262144
#: a pcapng block longer than this is corrupt (libpcap's largest block, 16 MiB)
MAX_BLOCK = 16 << 20
READ_SIZE = 1 << 20


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def udp_datagram(
    link: int, frame: bytes, counts: dict[str, int], names: dict[bytes, str] | None = None
) -> tuple[str, bytes] | None:
    """(source address, UDP payload) of one frame, or None (counted in ``counts``);
    ``names`` caches the address texts (an export capture has a handful of exporters)."""
    ip = ip_offset(link, frame)
    if ip is None:
        _bump(counts, "non_ip_frames")
        return None
    ver, p = ip
    if ver == 4:
        if len(frame) < p + 20:
            _bump(counts, "truncated_frames")
            return None
        ihl = (frame[p] & 0x0F) * 4
        if frame[p + 9] != 17:
            _bump(counts, "non_udp_packets")
            return None
        if int.from_bytes(frame[p + 6 : p + 8], "big") & 0x3FFF:
            _bump(counts, "fragmented_datagrams")
            return None
        raw = frame[p + 12 : p + 16]
        src = names.get(raw) if names is not None else None
        if src is None:
            src = str(ipaddress.IPv4Address(raw))
            if names is not None and len(names) < 4096:
                names[raw] = src
        u = p + ihl
    else:
        if len(frame) < p + 40:
            _bump(counts, "truncated_frames")
            return None
        nh, u = frame[p + 6], p + 40
        src = str(ipaddress.IPv6Address(frame[p + 8 : p + 24]))
        while nh in IPV6_EXT and len(frame) >= u + 8:
            nh, u = frame[u], u + (frame[u + 1] + 1) * 8
        if nh == 44:
            _bump(counts, "fragmented_datagrams")
            return None
        if nh != 17:
            _bump(counts, "non_udp_packets")
            return None
    if len(frame) < u + 8:
        _bump(counts, "truncated_frames")
        return None
    ulen = int.from_bytes(frame[u + 4 : u + 6], "big")
    end = u + ulen if ulen >= 8 else len(frame)
    if end > len(frame):
        _bump(counts, "truncated_frames")
        return None
    return src, frame[u + 8 : end]


def _read(f: IO[bytes], n: int, path: Path, offset: int) -> bytes:
    try:
        return f.read(n)
    except (OSError, EOFError, zlib.error) as e:
        raise CaptureError(f"{path}: unreadable at byte {offset}: {e}") from e


def _pcap(
    f: IO[bytes], path: Path, head: bytes, counts: dict[str, int]
) -> Iterator[tuple[str, bytes, int]]:
    big, _ns = PCAP_MAGICS[head[:4]]
    hdr = head + _read(f, 20, path, 4)
    if len(hdr) < 24:
        raise CaptureError(f"{path}: pcap header cut short at byte {len(hdr)}")
    e = ">" if big else "<"
    snaplen, link = struct.unpack(e + "II", hdr[16:24])
    link &= 0x0FFFFFFF
    max_incl = max(snaplen, MAX_SNAPLEN)
    unpack_incl = struct.Struct(e + "I").unpack_from
    addr: dict[bytes, str] = {}  # exporter address text, formatted once per address
    buf, pos, base, eof = b"", 0, 24, False  # buf[0] is at file offset base
    while True:
        # the next record's header, then the whole record (not max_incl octets: a snap
        # length up to 2^32 - 1 would read the whole file ahead)
        have = len(buf) - pos
        incl = unpack_incl(buf, pos + 8)[0] if have >= 16 else -1
        want = 16 + incl if 0 <= incl <= max_incl else 16
        if have < want and not eof:
            # at least READ_SIZE, at most doubling what is held: a corrupt length under a
            # 2^32 - 1 snap length costs what the file holds, not 4 GiB up front
            more = _read(f, max(READ_SIZE, min(want - have, have)), path, base + len(buf))
            eof = not more
            buf, base, pos = buf[pos:] + more, base + pos, 0
            continue
        off = base + pos
        if have == 0:
            return
        if incl < 0:  # fewer than 16 octets left
            counts["cut_short_at"] = off
            return
        if incl > max_incl:  # checked before anything is allocated for it
            counts["corrupt_at"] = off
            return
        if have < want:
            counts["cut_short_at"] = off
            return
        frame = buf[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        d = udp_datagram(link, frame, counts, addr)
        if d is not None:
            yield d[0], d[1], off


def _pcapng(f: IO[bytes], path: Path, counts: dict[str, int]) -> Iterator[tuple[str, bytes, int]]:
    # the caller read the section header magic at byte 0 (iter_udp_payloads)
    off, e = 0, "<"
    links: list[int] = []
    while True:
        bh = _read(f, 8, path, off)
        if not bh:
            return
        if len(bh) < 8:
            counts["cut_short_at"] = off
            return
        if bh[:4] == PCAPNG_MAGIC:
            bom = _read(f, 4, path, off + 8)
            e = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            btype, blen = struct.unpack(e + "II", bh)
            if blen < 28 or blen % 4 or blen > MAX_BLOCK:
                raise CaptureError(
                    f"{path}: pcapng section header length {blen} invalid at byte {off}"
                )
            body = bom + _read(f, blen - 12, path, off + 12)
            links = []
        else:
            btype, blen = struct.unpack(e + "II", bh)
            if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                counts["corrupt_at"] = off  # checked before anything is allocated for it
                return
            body = _read(f, blen - 8, path, off + 8)
        if len(body) < blen - 8:
            counts["cut_short_at"] = off
            return
        if btype == 1:  # interface description
            links.append(struct.unpack(e + "H", body[0:2])[0])
        elif btype in (6, 2):  # enhanced / obsolete packet block
            iface, caplen = struct.unpack(e + "I", body[0:4])[0], 0
            if btype == 2:
                iface = struct.unpack(e + "H", body[0:2])[0]
            caplen = struct.unpack(e + "I", body[12:16])[0]
            link = links[iface] if iface < len(links) else -1
            d = udp_datagram(link, body[20 : 20 + caplen], counts)
            if d is not None:
                yield d[0], d[1], off
        elif btype == 3:  # simple packet block
            link = links[0] if links else -1
            orig = struct.unpack(e + "I", body[0:4])[0]
            d = udp_datagram(link, body[4 : 4 + min(orig, blen - 16)], counts)
            if d is not None:
                yield d[0], d[1], off
        off += blen


def iter_udp_payloads(path: str | Path, counts: dict[str, int]) -> Iterator[tuple[str, bytes, int]]:
    """(source address, UDP payload, byte offset of the packet record) of a capture."""
    p = Path(path)
    with open_stream(p) as f:
        head = _read(f, 4, p, 0)
        if head[:4] in PCAP_MAGICS:
            yield from _pcap(f, p, head, counts)
        elif head[:4] == PCAPNG_MAGIC:
            f2 = _Prefixed(head, f)
            yield from _pcapng(f2, p, counts)  # type: ignore[arg-type]
        else:
            raise CaptureError(f"{p}: not a pcap or pcapng file at byte 0")


class _Prefixed:
    """A reader that first returns ``head`` then the rest of ``f``."""

    def __init__(self, head: bytes, f: IO[bytes]) -> None:
        self._head, self._f = head, f

    def read(self, n: int) -> bytes:
        if self._head:
            out, self._head = self._head[:n], self._head[n:]
            if len(out) < n:
                out += self._f.read(n - len(out))
            return out
        return self._f.read(n)


__all__ = ["iter_udp_payloads", "udp_datagram"]
