"""The packet batch: the contract between capture readers and the flow builder.

A reader (fast pcap/pcapng reader, tshark engine) yields ``PacketBatch`` objects:
parallel numpy arrays, one element per captured frame, in capture order. The flow
builder (``flowaudit.flows``) consumes them. No pyarrow here: this is the hot path.

Field meanings (all arrays have the same length N):

=============  ========  ==============================================================
field          dtype     meaning
=============  ========  ==============================================================
ts_ns          int64     capture timestamp, nanoseconds since the Unix epoch (UTC)
wire_len       uint32    original frame length on the wire (not caplen)
vlan           int32     outermost 802.1Q/802.1ad VLAN id; -1 when untagged
kind           uint8     KIND_* (kernels.layout): what the frame is
ip_version     uint8     4 or 6 for IP frames, else 0
src_hi/src_lo  uint64    source address as IPv4-mapped IPv6, big-endian halves
dst_hi/dst_lo  uint64    destination address, same form
protocol       uint8     IANA protocol (for IPv6: after extension headers)
sport/dport    uint16    TCP/UDP ports; ICMP/ICMPv6: sport = type, dport = code
tcp_flags      uint8     TCP flags byte (FIN=1 SYN=2 RST=4 PSH=8 ACK=16 ...)
ip_len         uint32    IP-layer length (IPv4 total length / IPv6 40 + payload length)
frag           uint8     FRAG_* bits below
frag_id        uint32    IPv4 identification / IPv6 fragment identification
=============  ========  ==============================================================

Optional fields (``RECORD_FIELDS``), set by the fast reader only when asked
(``iter_packets(..., positions=True)``): ``rec_pos`` (int64, the
stream offset of the frame's first byte: the file offset for plain files, the
decompressed offset for ``.gz``), ``caplen`` (int64, captured bytes) and ``link`` (int32,
the frame's link type). The evidence slicer reads frames by them instead of re-walking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

PACKET_FIELDS: dict[str, str] = {
    "ts_ns": "int64",
    "wire_len": "uint32",
    "vlan": "int32",
    "kind": "uint8",
    "ip_version": "uint8",
    "src_hi": "uint64",
    "src_lo": "uint64",
    "dst_hi": "uint64",
    "dst_lo": "uint64",
    "protocol": "uint8",
    "sport": "uint16",
    "dport": "uint16",
    "tcp_flags": "uint8",
    "ip_len": "uint32",
    "frag": "uint8",
    "frag_id": "uint32",
}


RECORD_FIELDS: dict[str, str] = {"rec_pos": "int64", "caplen": "int64", "link": "int32"}


@dataclass
class PacketBatch:
    """Parallel arrays, one element per frame (see module docstring)."""

    arrays: dict[str, npt.NDArray[np.generic]]

    def __len__(self) -> int:
        return len(self.arrays["ts_ns"])

    def __getitem__(self, name: str) -> npt.NDArray[np.generic]:
        return self.arrays[name]

    @classmethod
    def empty(cls, n: int = 0) -> PacketBatch:
        return cls({k: np.zeros(n, dtype=v) for k, v in PACKET_FIELDS.items()})

    def check(self) -> None:
        """Raise ValueError unless every field is present with its dtype and length."""
        n = len(self)
        for k, v in PACKET_FIELDS.items():
            a = self.arrays.get(k)
            if a is None or a.dtype != np.dtype(v) or len(a) != n:
                raise ValueError(f"packet batch field {k!r}: expected {v}[{n}]")


@dataclass
class ReadStats:
    """What a reader saw, for the ingest summary and the manifest."""

    frames: int = 0
    ip_packets: int = 0
    non_ip: int = 0
    truncated: int = 0
    unsupported: int = 0
    malformed: int = 0
    bytes_read: int = 0
    warnings: list[str] = field(default_factory=list)
    link_types: set[int] = field(default_factory=set)
