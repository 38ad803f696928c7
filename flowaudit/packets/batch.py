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
sport/dport    uint16    TCP/UDP/SCTP ports; ICMP/ICMPv6: sport = type, dport = code;
                         non-IP frames: sport = the ethertype (0 when unknown)
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

Tunnels: ``PacketBatch.inner`` holds the inner packets of the batch's VXLAN, Geneve and GRE
frames (one per opened frame, in capture order), a batch of the same fields (``vlan`` is
the inner frame's tag, ``wire_len`` the inner frame's length) plus ``INNER_FIELDS``: the
tunnel and its id, and the outer packet's VLAN, addresses, protocol and ports.
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

#: the extra fields of an inner batch (``PacketBatch.inner``)
INNER_FIELDS: dict[str, str] = {
    "tunnel": "uint8",  # TUN_* (kernels.layout)
    "tunnel_id": "int64",  # VNI / GRE key, -1 when the header carries none
    "outer_vlan": "int32",
    "outer_ip_version": "uint8",
    "outer_src_hi": "uint64",
    "outer_src_lo": "uint64",
    "outer_dst_hi": "uint64",
    "outer_dst_lo": "uint64",
    "outer_protocol": "uint8",
    "outer_sport": "uint16",
    "outer_dport": "uint16",
}


@dataclass
class PacketBatch:
    """Parallel arrays, one element per frame (see module docstring)."""

    arrays: dict[str, npt.NDArray[np.generic]]
    #: the inner packets of this batch's tunnelled frames (module docstring), if any
    inner: PacketBatch | None = None

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


#: names of the ethertypes a LAN carries besides IP (for the ingest summary)
ETHERTYPE_NAMES = {
    0: "802.3/LLC (STP, CDP ...)", 0x0806: "ARP", 0x8035: "RARP", 0x88CC: "LLDP",
    0x888E: "EAPOL", 0x8809: "LACP/slow protocols", 0x8863: "PPPoE discovery",
    0x8864: "PPPoE session (not IP)", 0x8847: "MPLS (not IP)", 0x88F7: "PTP",
    0x8902: "CFM", 0x9000: "loopback", 0x22F3: "TRILL", 0x893A: "IEEE 1905",
    0x88E1: "HomePlug", 0x8100: "802.1Q (cut)", 0x22EA: "SRP", 0x0842: "Wake-on-LAN",
}  # fmt: skip


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
    #: non-IP frames by ethertype (0: none or unknown, e.g. an 802.3/LLC frame)
    non_ip_ethertypes: dict[int, int] = field(default_factory=dict)

    def count_non_ip(self, kind: npt.NDArray[np.generic], sport: npt.NDArray[np.generic]) -> None:
        """Count the non-IP frames of a batch by the ethertype the decoder left in ``sport``."""
        et = sport[kind == 1]  # KIND_NON_IP
        if len(et):
            values, counts = np.unique(et, return_counts=True)
            for v, c in zip(values.tolist(), counts.tolist(), strict=True):
                v = v if v >= 0x0600 else 0  # an 802.3 length field, not an ethertype
                self.non_ip_ethertypes[v] = self.non_ip_ethertypes.get(v, 0) + c

    def non_ip_text(self) -> str:
        """``ARP 20, LLDP 10, 0x88cc 3``: the non-IP frames by ethertype, most first."""
        items = sorted(self.non_ip_ethertypes.items(), key=lambda kv: (-kv[1], kv[0]))
        return ", ".join(f"{ETHERTYPE_NAMES.get(k, f'0x{k:04x}')} {n:,}" for k, n in items)
