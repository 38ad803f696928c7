"""Wrap every other frame of a classic pcap in VXLAN (UDP 8472, Cilium's port), for the
tunnel benchmark: the same frames as the input, half of them now carried between two nodes.

    python benchmarks/wrap_vxlan.py benchmarks/out/bench2m.pcap benchmarks/out/bench2m-vxlan.pcap

The outer frame is Ethernet / IPv4 10.25.111.11 → 10.25.111.12 / UDP (source port a hash
of the inner addresses, protocol and ports, as Linux picks it: one outer source port per
inner flow) → 8472 / VXLAN VNI 2. The inner frame is the original one, unchanged.
"""

from __future__ import annotations

import argparse
import struct
import sys
import zlib

OUTER_SRC = bytes([10, 25, 111, 11])
OUTER_DST = bytes([10, 25, 111, 12])
MAC_A = bytes.fromhex("020000006f0b")
MAC_B = bytes.fromhex("020000006f0c")
VNI = 2


def _checksum(hdr: bytes) -> int:
    s = sum(struct.unpack("!10H", hdr))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _flow_bytes(frame: bytes) -> bytes:
    """The inner flow's addresses, protocol and ports (what Linux hashes for the source
    port), or the frame's first bytes when it is not IPv4."""
    et, p = frame[12:14], 14
    while et in (b"\x81\x00", b"\x88\xa8") and len(frame) >= p + 4:
        et, p = frame[p + 2 : p + 4], p + 4
    if et != b"\x08\x00" or len(frame) < p + 20:
        return frame[:64]
    ihl = (frame[p] & 15) * 4
    return frame[p + 9 : p + 10] + frame[p + 12 : p + 20] + frame[p + ihl : p + ihl + 4]


def wrap(frame: bytes) -> bytes:
    sport = 32768 + (zlib.crc32(_flow_bytes(frame)) & 0x3FFF)
    vx = struct.pack("!BBHI", 0x08, 0, 0, VNI << 8)
    udp_len = 8 + len(vx) + len(frame)
    udp = struct.pack("!HHHH", sport, 8472, udp_len, 0)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, 17, 0,
                               OUTER_SRC, OUTER_DST))  # fmt: skip
    struct.pack_into("!H", ip, 10, _checksum(bytes(ip)))
    return MAC_B + MAC_A + b"\x08\x00" + bytes(ip) + udp + vx + frame


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", help="classic pcap, little-endian, Ethernet")
    ap.add_argument("dst")
    a = ap.parse_args(argv)
    with open(a.src, "rb") as f, open(a.dst, "wb") as out:
        head = f.read(24)
        if head[:4] not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            sys.exit(f"{a.src}: not a little-endian classic pcap")
        out.write(head[:16] + struct.pack("<I", 262144) + head[20:])
        i = 0
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                break
            sec, frac, cap, wire = struct.unpack("<IIII", rh)
            frame = f.read(cap)
            if i % 2:
                frame = wrap(frame)
                cap, wire = len(frame), wire + 50
            out.write(struct.pack("<IIII", sec, frac, cap, wire) + frame)
            i += 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
