"""Community ID v1 (https://github.com/corelight/community-id-spec): the ``flow_id``.

Responsible for one thing: turning flow tuples into ``1:<base64 sha1>`` strings that
equal what Zeek, Suricata and Arkime write for the same flow, so a flow can be joined
with their logs.

The hash input is ``seed (2 bytes) | src addr | dst addr | proto | 0 | sport | dport``
(addresses 4 or 16 bytes, ports 2 bytes each, all network order; protocols without
ports omit the ports). The endpoints are ordered (smaller address first, ports break
ties) so both directions give the same id. For ICMP and ICMPv6, ``sport`` is the
message type and ``dport`` the code, except that request/reply types are mapped to
their counterpart type (echo 8 <-> 0, ICMPv6 neighbour solicitation 135 <-> 136 ...);
types without a counterpart (unreachable, time exceeded ...) are *one-way*: their
tuple is hashed as given, unordered. The mapping is idempotent: applying it to ports
that are already mapped (as the flow builder emits them) gives the same id.

``community_id`` computes one id; ``community_ids`` computes many at once as an Arrow
string array (ICMP mapping vectorised with numpy; ordering, packing, SHA-1 and base64 in
one compiled pass, ``flowaudit.kernels.cid``).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import struct

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from flowaudit.kernels.build import kernels
from flowaudit.kernels.icmp import (
    ICMP4_PAIR_TABLE,
    ICMP4_PAIRS,
    ICMP6_PAIR_TABLE,
    ICMP6_PAIRS,
    PORT_PROTOCOLS,
    PROTO_ICMP,
    PROTO_ICMP6,
)


def icmp_ports(proto: int, itype: int, code: int) -> tuple[int, int, bool]:
    """(sport, dport, one_way) for an ICMP/ICMPv6 message, per the spec's mapping."""
    pairs = ICMP4_PAIRS if proto == PROTO_ICMP else ICMP6_PAIRS
    if itype in pairs:
        return itype, pairs[itype], False
    return itype, code, True


def _addr_bytes(addr: str | bytes | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
    if isinstance(addr, bytes):
        if len(addr) not in (4, 16):
            raise ValueError(f"address must be 4 or 16 bytes, got {len(addr)}")
        return addr
    if isinstance(addr, str):
        addr = ipaddress.ip_address(addr)
    return addr.packed


def _encode(digest: bytes) -> str:
    return "1:" + base64.b64encode(digest).decode("ascii")


def community_id(
    src: str | bytes | ipaddress.IPv4Address | ipaddress.IPv6Address,
    dst: str | bytes | ipaddress.IPv4Address | ipaddress.IPv6Address,
    proto: int,
    sport: int | None = None,
    dport: int | None = None,
    seed: int = 0,
) -> str:
    """Community ID v1 of one tuple. For ICMP/ICMPv6 pass type as ``sport``, code as ``dport``."""
    s, d = _addr_bytes(src), _addr_bytes(dst)
    if len(s) != len(d):
        raise ValueError("source and destination addresses are of different families")
    has_ports = proto in PORT_PROTOCOLS and sport is not None and dport is not None
    sp, dp, one_way = int(sport or 0), int(dport or 0), False
    if has_ports and proto in (PROTO_ICMP, PROTO_ICMP6):
        sp, dp, one_way = icmp_ports(proto, sp, dp)
    if not one_way and (s > d or (s == d and sp > dp)):
        s, d, sp, dp = d, s, dp, sp
    data = struct.pack("!H", seed) + s + d + struct.pack("!BB", proto, 0)
    if has_ports:
        data += struct.pack("!HH", sp, dp)
    return _encode(hashlib.sha1(data).digest())


def community_ids(
    ip_version: npt.NDArray[np.generic],
    src_hi: npt.NDArray[np.generic],
    src_lo: npt.NDArray[np.generic],
    dst_hi: npt.NDArray[np.generic],
    dst_lo: npt.NDArray[np.generic],
    proto: npt.NDArray[np.generic],
    sport: npt.NDArray[np.generic],
    dport: npt.NDArray[np.generic],
    seed: int = 0,
) -> pa.Array:
    """Community IDs of many tuples (addresses as IPv4-mapped IPv6 big-endian halves).

    IPv4 rows (``ip_version == 4``) hash the 4-byte address (the low 32 bits of ``lo``).
    ``sport``/``dport`` are ignored for protocols without ports.
    """
    n = len(src_hi)
    if n == 0:
        return pa.array([], pa.string())
    proto = proto.astype(np.int64)
    sp = sport.astype(np.int64)
    dp = dport.astype(np.int64)
    shi, slo, dhi, dlo = (
        np.ascontiguousarray(a, dtype=np.uint64) for a in (src_hi, src_lo, dst_hi, dst_lo)
    )
    is4 = ip_version.astype(np.int64) == 4
    has_ports = np.isin(proto, PORT_PROTOCOLS)
    one_way = np.zeros(n, dtype=bool)
    icmp4 = proto == PROTO_ICMP
    icmp6 = proto == PROTO_ICMP6
    icmp = icmp4 | icmp6
    if icmp.any():
        t = np.clip(sp, 0, 255)
        cp = np.where(icmp4, ICMP4_PAIR_TABLE[t], ICMP6_PAIR_TABLE[t])
        paired = icmp & (cp >= 0)
        dp = np.where(paired, cp, dp)
        one_way = icmp & (cp < 0)
    sp = np.where(has_ports, sp, 0)
    dp = np.where(has_ports, dp, 0)
    out = np.empty((n, 30), dtype=np.uint8)  # every byte of a row is written
    kernels().community_ids(
        is4, shi, slo, dhi, dlo, proto.astype(np.uint8), sp, dp, has_ports, one_way, seed, out
    )
    data = pa.py_buffer(out)
    offsets = pa.py_buffer(np.arange(0, 30 * (n + 1), 30, dtype=np.int32))
    return pa.StringArray.from_buffers(n, offsets, data)


__all__ = ["community_id", "community_ids", "icmp_ports"]
