"""Test helpers: rewrite classic little-endian Ethernet pcaps record by record; load the
capture generator.

Independent of flowaudit's reader on purpose (a second opinion): parses Ethernet,
802.1Q/802.1ad tags, IPv4/IPv6 and the TCP/UDP ports with ``struct``.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import struct
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

GEN_PATH = Path(__file__).parent.parent / "benchmarks" / "gen_vlan111.py"
Record = tuple[int, int, bytes, int]


def load_generator() -> ModuleType:
    """benchmarks/gen_vlan111.py (a script, not a package module), imported by path."""
    if "gen_vlan111" in sys.modules:
        return sys.modules["gen_vlan111"]
    spec = importlib.util.spec_from_file_location("gen_vlan111", GEN_PATH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_vlan111"] = mod
    spec.loader.exec_module(mod)
    return mod  # ts_sec, ts_frac, frame bytes, original length


def read_pcap(path: Path) -> tuple[bytes, list[Record]]:
    data = path.read_bytes()
    assert data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"), "little-endian pcap only"
    out: list[Record] = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack_from("<IIII", data, off)
        out.append((sec, frac, data[off + 16 : off + 16 + incl], orig))
        off += 16 + incl
    return data[:24], out


def write_pcap(path: Path, header: bytes, records: list[Record]) -> None:
    parts = [header]
    for sec, frac, frame, orig in records:
        parts.append(struct.pack("<IIII", sec, frac, len(frame), orig) + frame)
    path.write_bytes(b"".join(parts))


def key(frame: bytes) -> tuple[int | None, str, str, int, int, int] | None:
    """(outer vlan, src ip, dst ip, protocol, sport, dport) of an IP frame, else None."""
    off, vlan = 12, None
    etype = struct.unpack_from("!H", frame, off)[0]
    while etype in (0x8100, 0x88A8):
        tci = struct.unpack_from("!H", frame, off + 2)[0]
        vlan = tci & 0xFFF if vlan is None else vlan
        off += 4
        etype = struct.unpack_from("!H", frame, off)[0]
    ip = off + 2
    if etype == 0x0800:
        ihl = (frame[ip] & 0x0F) * 4
        proto = frame[ip + 9]
        src = str(ipaddress.IPv4Address(frame[ip + 12 : ip + 16]))
        dst = str(ipaddress.IPv4Address(frame[ip + 16 : ip + 20]))
        l4 = ip + ihl
    elif etype == 0x86DD:
        proto = frame[ip + 6]
        src = str(ipaddress.IPv6Address(frame[ip + 8 : ip + 24]))
        dst = str(ipaddress.IPv6Address(frame[ip + 24 : ip + 40]))
        l4 = ip + 40
    else:
        return None
    sport, dport = struct.unpack_from("!HH", frame, l4) if proto in (6, 17) else (0, 0)
    return vlan, src, dst, proto, sport, dport


def drop(records: list[Record], pred: Callable[[tuple[int | None, str, str, int, int, int]], bool]):
    """The records whose IP key does not satisfy ``pred`` (non-IP frames kept)."""
    return [r for r in records if (k := key(r[2])) is None or not pred(k)]


def tcp_frame(
    vlan: int | None, src: str, dst: str, sport: int, dport: int, flags: int, payload: bytes = b""
) -> bytes:
    """An Ethernet (optionally 802.1Q-tagged) IPv4/TCP frame; checksums left zero."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, 5 << 4, flags, 64240, 0, 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(tcp),
        1,
        0,
        64,
        6,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    eth = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"
    tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
    return eth + tag + b"\x08\x00" + ip + tcp


def udp_frame(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """An Ethernet/802.1Q (VLAN 111)/IPv4/UDP frame; checksums left zero."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    a, b = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, a, b)
    eth = b"\x02\x00\x00\x00\x00\x0b\x02\x00\x00\x00\x00\x0a"
    return eth + struct.pack("!HH", 0x8100, 111) + b"\x08\x00" + ip + udp


def records_at(start: int, frames: list[bytes], step_us: int = 1000) -> Iterator[Record]:
    for i, f in enumerate(frames):
        yield start, i * step_us, f, len(f)
