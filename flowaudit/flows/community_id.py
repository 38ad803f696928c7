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
string array (packing and base64 are vectorised with numpy; only SHA-1 runs per flow).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import struct
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

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
    shi, slo, dhi, dlo = (np.asarray(a, dtype=np.uint64) for a in (src_hi, src_lo, dst_hi, dst_lo))
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
    # order the endpoints: (addr, port) of src must not exceed dst's (hi, lo compare =
    # byte compare; for IPv4 the mapped prefix is equal so the 4 address bytes decide)
    greater = (shi > dhi) | ((shi == dhi) & (slo > dlo)) | ((shi == dhi) & (slo == dlo) & (sp > dp))
    swap = greater & ~one_way
    a_hi, b_hi = np.where(swap, dhi, shi), np.where(swap, shi, dhi)
    a_lo, b_lo = np.where(swap, dlo, slo), np.where(swap, slo, dlo)
    a_p, b_p = np.where(swap, dp, sp), np.where(swap, sp, dp)

    # one fixed-width row per tuple (IPv6 layout); IPv4 rows are sliced out of it
    rows = np.zeros((n, 40), dtype=np.uint8)
    rows[:, 0:2] = np.frombuffer(struct.pack("!H", seed), dtype=np.uint8)
    be = np.dtype(">u8")
    rows[:, 2:10] = a_hi.astype(be).view(np.uint8).reshape(n, 8)
    rows[:, 10:18] = a_lo.astype(be).view(np.uint8).reshape(n, 8)
    rows[:, 18:26] = b_hi.astype(be).view(np.uint8).reshape(n, 8)
    rows[:, 26:34] = b_lo.astype(be).view(np.uint8).reshape(n, 8)
    rows[:, 34] = proto.astype(np.uint8)
    rows[:, 36:38] = a_p.astype(">u2").view(np.uint8).reshape(n, 2)
    rows[:, 38:40] = b_p.astype(">u2").view(np.uint8).reshape(n, 2)
    v4 = np.zeros((n, 16), dtype=np.uint8)
    v4[:, 0:2] = rows[:, 0:2]
    v4[:, 2:6] = rows[:, 14:18]
    v4[:, 6:10] = rows[:, 30:34]
    v4[:, 10:16] = rows[:, 34:40]
    digests = np.zeros((n, 21), dtype=np.uint8)  # 20 bytes of SHA-1 + 1 pad byte
    for group, width in ((is4 & has_ports, 16), (is4 & ~has_ports, 12),
                         (~is4 & has_ports, 40), (~is4 & ~has_ports, 36)):  # fmt: skip
        idx = np.flatnonzero(group)
        if len(idx):
            src = v4 if width <= 16 else rows
            digests[idx, :20] = sha1_rows(np.ascontiguousarray(src[idx, :width]))
    return _base64_ids(digests)


#: from this many rows on, DuckDB's vectorised sha1 is used (3x a hashlib loop at 500k rows)
BULK_SHA1_ROWS = 50_000
_HASH_CON: list[Any] = []


def sha1_rows(rows: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """SHA-1 of each row of a C-contiguous 2-D uint8 array → (n, 20) digests."""
    n, width = rows.shape
    buf = rows.tobytes()
    if n < BULK_SHA1_ROWS:
        sha1 = hashlib.sha1
        dig = b"".join([sha1(buf[k : k + width]).digest() for k in range(0, len(buf), width)])
        return np.frombuffer(dig, dtype=np.uint8).reshape(n, 20)
    if not _HASH_CON:  # a private connection, used only as a vectorised SHA-1
        import duckdb

        _HASH_CON.append(duckdb.connect(":memory:"))
    con = _HASH_CON[0]
    arr = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(buf)])
    con.register("sha1_rows_", pa.Table.from_arrays([arr], names=["b"]))
    try:
        out = con.sql("SELECT unhex(sha1(b)) AS d FROM sha1_rows_").to_arrow_table()
    finally:
        con.unregister("sha1_rows_")
    col = out.column("d").combine_chunks()
    values = np.frombuffer(col.buffers()[2], dtype=np.uint8)  # every digest is 20 bytes
    return values[col.offset * 20 : (col.offset + n) * 20].reshape(n, 20).copy()


_B64 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", np.uint8)


def _base64_ids(digests: npt.NDArray[np.uint8]) -> pa.Array:
    """``"1:" + base64(digest)`` for rows of 20-byte digests (padded to 21), vectorised."""
    n = len(digests)
    g = digests.reshape(n, 7, 3).astype(np.uint32)
    v = (g[:, :, 0] << 16) | (g[:, :, 1] << 8) | g[:, :, 2]
    six = np.stack([(v >> 18) & 63, (v >> 12) & 63, (v >> 6) & 63, v & 63], axis=2)
    out = np.zeros((n, 30), dtype=np.uint8)  # not empty(): no byte left to chance
    out[:, 0], out[:, 1] = ord("1"), ord(":")
    out[:, 2:] = _B64[six.reshape(n, 28)]
    out[:, 29] = ord("=")  # 20 bytes encode to 27 characters and one pad
    data = pa.py_buffer(out.tobytes())
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * 30).tobytes())
    return pa.StringArray.from_buffers(n, offsets, data)


__all__ = ["community_id", "community_ids", "icmp_ports"]
