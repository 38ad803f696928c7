"""The tshark engine: any capture tshark reads → PacketBatch, the same intermediate as
the fast reader (``flowaudit.packets.pcap``), so the one flow builder serves both.

Responsibilities: locate tshark (through pyshark, imported lazily: this is the only
pyshark user), run ``tshark -r FILE -T fields`` as a streaming subprocess, turn each
output line into one packet row with the field semantics of ``ingest/packets.py``, and
translate tshark's failures into ``CaptureError``. It is the second engine for link types
the fast reader does not decode (PPP, NFLOG, IPNET, PKTAP, 802.3br, odd pcapng IDBs) and
the cross-check in tests.

Why not pyshark's packet objects: measured on this machine (tshark 4.0.17, 82,582-packet
``zeek-echo-connections.pcap``) pyshark's ``FileCapture`` parses ~210 packets/s by
default, ~2,650/s with ``use_json=True`` and ~1,700/s with ``use_ek=True`` (all with
``keep_packets=False``), while ``tshark -T fields`` streams ~14,000-16,000 packets/s,
which is tshark's own dissection floor. So pyshark only finds the binary
(``get_process_path`` / ``TSharkNotFoundException``) and we read tshark's stdout ourselves.

Decoding rules (mirroring the fast reader):

- IP reassembly is off (``ip.defragment`` / ``ipv6.defragment`` FALSE) and flows are
  built on the OUTER IP header: the first ``ip``/``ipv6`` token of ``frame.protocols``
  names the outer layer, whose fields are the first occurrence of ``ip.*``/``ipv6.*``.
  Tunnels (VXLAN, Geneve, GRE, IP-in-IP) and ICMP-quoted headers are never used for
  the key; ports are read only when the transport header directly follows the outer IP
  layer (after IPv6 extension headers).
- VLAN: the outermost tag before the outer IP layer, whichever of ``vlan``
  (802.1Q) or ``ieee8021ad`` (802.1ad S-tag) comes first in ``frame.protocols``.
- IPv6 protocol: the next-header chain is walked through hop-by-hop, routing,
  destination-options, fragment and AH headers, as the fast reader does.
- ``frag``: FRAG_IS_FRAGMENT when offset > 0 or MF/M is set; FRAG_FIRST on such a
  fragment with offset 0; FRAG_HAS_L4 when ports (ICMP type/code) and, for TCP, the flags
  were read. ``frag_id`` is the IPv4 identification (every IPv4 packet) or the IPv6
  fragment identification (packets with a fragment header).
- kind: no outer IP layer → KIND_TRUNCATED if tshark marks the frame short
  (``_ws.short``), KIND_MALFORMED if malformed, KIND_UNSUPPORTED when tshark could not
  decode the link layer or its payload (the frame ends in ``data``, e.g. DLT_USER, an
  unknown PPP protocol), else KIND_NON_IP (ARP, LLDP, vsock ...). An outer IP layer
  without both addresses, or a TCP/UDP/ICMP header that should be there and is not,
  is KIND_TRUNCATED (short) or KIND_MALFORMED.

Limits: tshark keeps per-frame state, so its memory grows with the capture (use the fast
reader for big files); ``ReadStats.link_types`` is not filled by this engine.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from flowaudit._util import tools
from flowaudit.errors import CaptureError
from flowaudit.kernels.layout import (
    FRAG_FIRST,
    FRAG_HAS_L4,
    FRAG_IS_FRAGMENT,
    KIND_IP,
    KIND_MALFORMED,
    KIND_NON_IP,
    KIND_TRUNCATED,
    KIND_UNSUPPORTED,
    TUN_GENEVE,
    TUN_GRE,
    TUN_VXLAN,
)
from flowaudit.packets.batch import (
    INNER_FIELDS,
    PACKET_FIELDS,
    PacketBatch,
    ReadStats,
)

INSTALL_HINT = "apt-get install tshark"

# tshark -T fields columns, in this order (index constants below)
FIELDS: tuple[str, ...] = tuple(
    """
    frame.time_epoch frame.len frame.protocols vlan.id ieee8021ad.id
    ip.src ip.dst ip.proto ip.len ip.id ip.flags.mf ip.frag_offset
    ipv6.src ipv6.dst ipv6.nxt ipv6.plen ipv6.hopopts.nxt ipv6.routing.nxt ipv6.dstopts.nxt
    ipv6.fraghdr.nxt ah.next_header ipv6.fraghdr.offset ipv6.fraghdr.more ipv6.fraghdr.ident
    tcp.srcport tcp.dstport tcp.flags udp.srcport udp.dstport
    icmp.type icmp.code icmpv6.type icmpv6.code _ws.short _ws.malformed
    sctp.srcport sctp.dstport eth.type vlan.etype sll.etype ieee8021ah.etype vntag.etype
    vxlan.vni geneve.vni geneve.option.length gre.key gre.flags_and_version ip.hdr_len
    ipv6.hopopts.len ipv6.routing.len ipv6.dstopts.len vxlan.flags vxlan.reserved8
    """.split()
)
(
    F_TS, F_LEN, F_PROTOS, F_VLAN, F_STAG, F_IP_SRC, F_IP_DST, F_IP_PROTO, F_IP_LEN, F_IP_ID,
    F_IP_MF, F_IP_OFF, F_6_SRC, F_6_DST, F_6_NXT, F_6_PLEN, F_HBH, F_RT, F_DST, F_FRAG_NXT,
    F_AH, F_6_OFF, F_6_MORE, F_6_ID, F_TCP_S, F_TCP_D, F_TCP_FL, F_UDP_S, F_UDP_D,
    F_ICMP_T, F_ICMP_C, F_ICMP6_T, F_ICMP6_C, F_SHORT, F_MALFORMED, F_SCTP_S, F_SCTP_D,
    F_ETH_TYPE, F_VLAN_ETYPE, F_SLL_ETYPE, F_PBB_ETYPE, F_VNTAG_ETYPE,
    F_VXLAN_VNI, F_GENEVE_VNI, F_GENEVE_OPTLEN, F_GRE_KEY, F_GRE_FLAGS, F_IP_HDR,
    F_HBH_LEN, F_RT_LEN, F_DST_LEN, F_VXLAN_FLAGS, F_VXLAN_RES8,
) = range(len(FIELDS))  # fmt: skip

# preferences: no reassembly (outer headers, every packet seen as captured), and the TCP
# analysis tshark does by default switched off (~13 % faster, no effect on our fields)
PREFS: tuple[tuple[str, str], ...] = (
    ("ip.defragment", "FALSE"),
    ("ipv6.defragment", "FALSE"),
    ("tcp.desegment_tcp_streams", "FALSE"),
    ("tcp.analyze_sequence_numbers", "FALSE"),
    ("tcp.calculate_timestamps", "FALSE"),
)

# IPv6 extension-header token in frame.protocols → (next-header number, its nxt field)
_EXT_TOKENS: dict[str, tuple[int, int]] = {
    "ipv6.hopopts": (0, F_HBH),
    "ipv6.routing": (43, F_RT),
    "ipv6.dstopts": (60, F_DST),
    "ipv6.fraghdr": (44, F_FRAG_NXT),
    "ah": (51, F_AH),
}
_L4_TOKEN = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp"}
_V4_PREFIX = 0xFFFF << 32  # ::ffff:a.b.c.d lower half
_ADDR_CACHE_MAX = 65_536


def tshark_path() -> str:
    """Return the tshark executable pyshark finds, or raise CaptureError (usage, exit 2)."""
    from pyshark.tshark.tshark import TSharkNotFoundException, get_process_path

    try:
        return str(get_process_path())
    except TSharkNotFoundException as e:
        raise CaptureError(
            "the tshark engine needs tshark: tshark not found", hint=INSTALL_HINT
        ) from e


def tshark_available() -> bool:
    """True when a tshark binary can be found."""
    try:
        tshark_path()
    except CaptureError:
        return False
    return True


def tshark_command(path: str | os.PathLike[str], decode_as: Sequence[str] = ()) -> list[str]:
    """The tshark command line the engine runs for ``path`` (also useful for debugging)."""
    cmd = [tshark_path(), "-r", os.fspath(path), "-n", "-T", "fields"]
    cmd += ["-E", "header=n", "-E", "separator=/t", "-E", "quote=n"]
    cmd += ["-E", "occurrence=a", "-E", "aggregator=,"]
    for name, value in PREFS:
        cmd += ["-o", f"{name}:{value}"]
    for rule in decode_as:
        cmd += ["-d", rule]
    for f in FIELDS:
        cmd += ["-e", f]
    return cmd


def _first(value: str) -> str:
    i = value.find(",")
    return value if i < 0 else value[:i]


def _nth(value: str, n: int) -> str:
    parts = value.split(",")
    return parts[n] if n < len(parts) else ""


def _int(value: str) -> int:
    """First occurrence of a tshark number (decimal or 0x hex); 0 when absent."""
    v = _first(value)
    if not v:
        return 0
    return int(v, 0) if v.startswith("0x") else int(v)


def _ts_ns(text: str) -> int:
    """``frame.time_epoch`` → int ns since the epoch.

    A record whose sub-second field is out of range (ns ≥ 1e9) is printed by tshark as
    its raw digits: more than 9 digits are a ns count and carry into the seconds (what
    the fast reader does). tshark 4.0 holds ns in a signed int32, so a field ≥ 2**31
    comes out negative (``-S.2147483648``): it is turned back into the unsigned value.
    """
    sec, _, frac = text.partition(".")
    neg = sec.startswith("-")
    s = abs(int(sec)) if sec not in ("", "-") else 0
    if len(frac) <= 9:
        ns = int(frac.ljust(9, "0")) if frac else 0
        return -(s * 1_000_000_000 + ns) if neg else s * 1_000_000_000 + ns
    ns = int(frac)
    if neg:  # secs are fine, the int32 ns field wrapped negative
        ns = (1 << 32) - ns
    return s * 1_000_000_000 + ns


class _Addr:
    """Text address → (hi, lo) IPv4-mapped IPv6 halves, with a bounded cache."""

    def __init__(self) -> None:
        self.cache: dict[str, tuple[int, int]] = {}

    def __call__(self, text: str, v6: bool) -> tuple[int, int]:
        hit = self.cache.get(text)
        if hit is not None:
            return hit
        if v6:
            b = socket.inet_pton(socket.AF_INET6, text)
            out = (int.from_bytes(b[:8], "big"), int.from_bytes(b[8:], "big"))
        else:
            out = (0, _V4_PREFIX | int.from_bytes(socket.inet_aton(text), "big"))
        if len(self.cache) >= _ADDR_CACHE_MAX:
            self.cache.clear()
        self.cache[text] = out
        return out


Row = tuple[int, int, int, int, int, int, int, int, int, int, int, int, int, int, int, int]


def _outer_vlan(tokens: list[str], stop: int, f: list[str]) -> int:
    for tok in tokens[:stop]:
        if tok == "vlan" and f[F_VLAN]:
            return _int(f[F_VLAN])
        if tok == "ieee8021ad" and f[F_STAG]:
            return _int(f[F_STAG])
    return -1


def _no_ip_kind(tokens: list[str], f: list[str]) -> int:
    if f[F_SHORT]:
        return KIND_TRUNCATED
    if f[F_MALFORMED]:
        return KIND_MALFORMED
    if tokens[-1] == "data" and len(tokens) <= 2:
        return KIND_UNSUPPORTED  # the link layer, or what it carries, is not decoded
    return KIND_NON_IP


# the layers that end in an ethertype, and the field that holds it
_ETYPE_FIELDS = {
    "eth": F_ETH_TYPE, "vlan": F_VLAN_ETYPE, "sll": F_SLL_ETYPE,
    "ieee8021ah": F_PBB_ETYPE, "vntag": F_VNTAG_ETYPE,
}  # fmt: skip


def _ethertype(tokens: list[str], f: list[str]) -> int:
    """The innermost ethertype of a non-IP frame (after tags, PBB, VNTag), 0 when none: the
    last layer in ``frame.protocols`` that ends in one, read from its field."""
    for token in reversed(tokens):
        field = _ETYPE_FIELDS.get(token)
        if field is not None:
            try:
                return int(f[field].split(",")[-1], 0) if f[field] else 0
            except ValueError:
                return 0
    return 0


# the protocol token whose layers each field's occurrences follow (tunnel inner layers)
_FIELD_TOKEN: dict[int, str] = {
    **{i: "ip" for i in (F_IP_SRC, F_IP_DST, F_IP_PROTO, F_IP_LEN, F_IP_ID, F_IP_MF, F_IP_OFF)},
    **{i: "ipv6" for i in (F_6_SRC, F_6_DST, F_6_NXT, F_6_PLEN)},
    F_HBH: "ipv6.hopopts", F_RT: "ipv6.routing", F_DST: "ipv6.dstopts",
    F_FRAG_NXT: "ipv6.fraghdr", F_6_OFF: "ipv6.fraghdr", F_6_MORE: "ipv6.fraghdr",
    F_6_ID: "ipv6.fraghdr", F_AH: "ah", F_TCP_S: "tcp", F_TCP_D: "tcp", F_TCP_FL: "tcp",
    F_UDP_S: "udp", F_UDP_D: "udp", F_ICMP_T: "icmp", F_ICMP_C: "icmp", F_ICMP6_T: "icmpv6",
    F_ICMP6_C: "icmpv6", F_SCTP_S: "sctp", F_SCTP_D: "sctp",
}  # fmt: skip
_TUN_TOKENS = {"vxlan": TUN_VXLAN, "geneve": TUN_GENEVE, "gre": TUN_GRE}


def parse_line(line: str, addr: _Addr) -> Row:
    """One tshark output line → one packet row in PACKET_FIELDS order (the outer packet)."""
    return parse_line_inner(line, addr)[0]


def parse_line_inner(line: str, addr: _Addr) -> tuple[Row, tuple[int, ...] | None]:
    """One tshark output line → the outer packet row, and the inner packet's row followed by
    its INNER_FIELDS when the frame is VXLAN/Geneve/GRE (opened as the fast reader does)."""
    f = line.rstrip("\r\n").split("\t")
    if len(f) < len(FIELDS):
        f += [""] * (len(FIELDS) - len(f))
    ts = _ts_ns(f[F_TS])
    wire = _int(f[F_LEN])
    tokens = f[F_PROTOS].split(":")
    outer = next((i for i, t in enumerate(tokens) if t == "ip" or t == "ipv6"), -1)
    vlan = _outer_vlan(tokens, outer if outer >= 0 else len(tokens), f)
    if outer < 0:
        kind = _no_ip_kind(tokens, f)
        et = _ethertype(tokens, f) if kind == KIND_NON_IP else 0  # as the fast reader does
        return (ts, wire, vlan, kind, 0, 0, 0, 0, 0, 0, et, 0, 0, 0, 0, 0), None
    row, pos = _ip_row(f, tokens, outer, addr, ts, wire, vlan, 0)
    return row, _inner(f, tokens, pos, addr, row)


def _inner(
    f: list[str], tokens: list[str], pos: int, addr: _Addr, outer: Row
) -> tuple[int, ...] | None:
    """The inner packet of a tunnelled frame whose outer L4 header ends at token ``pos``."""
    kind, proto, frag, dport = outer[3], outer[9], outer[14], outer[11]
    if kind != KIND_IP or frag & FRAG_IS_FRAGMENT or pos >= len(tokens):
        return None
    tun = _TUN_TOKENS.get(tokens[pos])
    if tun is None or (tun == TUN_GRE) != (proto == 47):
        return None
    if tun == TUN_VXLAN:
        # as the fast reader: flags I (0x08) or G+I (0x88), reserved last byte 0
        if (_int(f[F_VXLAN_FLAGS]) >> 8) not in (0x08, 0x88) or _int(f[F_VXLAN_RES8]):
            return None
        tid = _int(f[F_VXLAN_VNI])
    elif tun == TUN_GENEVE:
        tid = _int(f[F_GENEVE_VNI])
    else:
        tid = _int(f[F_GRE_KEY]) if f[F_GRE_KEY] else -1
    ip_at = pos + 1
    eth = False
    while ip_at < len(tokens) and tokens[ip_at] in ("eth", "ethertype", "vlan"):
        eth = eth or tokens[ip_at] == "eth"
        ip_at += 1
    if ip_at >= len(tokens) or tokens[ip_at] not in ("ip", "ipv6"):
        return None  # ARP or anything else that is not IP inside: no inner flow
    # the inner frame's length: the outer frame less the headers before it
    inner_wire = _inner_length(f, tokens, pos, ip_at, eth, outer)
    row, _ = _ip_row(f, tokens, ip_at, addr, outer[0], inner_wire, -1, 1)
    extra = (tun, tid, outer[2], outer[4], outer[5], outer[6], outer[7], outer[8], proto,
             outer[10], dport)  # fmt: skip
    return (*row, *extra)


def _inner_length(
    f: list[str], tokens: list[str], pos: int, ip_at: int, eth: bool, outer: Row
) -> int:
    """Bytes of the inner frame (Ethernet header included when there is one): the outer IP
    packet's length less the outer IP, transport and tunnel headers."""
    ip_len = outer[13]
    hdr = _int(f[F_IP_HDR]) if outer[4] == 4 else 40 + _ext_len(f)
    tun = tokens[pos]
    if tun == "gre":
        fl = _int(f[F_GRE_FLAGS])
        return ip_len - hdr - 4 - 4 * (bool(fl & 0x8000) + bool(fl & 0x2000) + bool(fl & 0x1000))
    if tun == "vxlan":
        return ip_len - hdr - 8 - 8
    return ip_len - hdr - 8 - 8 - _int(f[F_GENEVE_OPTLEN])  # first: all options' bytes


def _ext_len(f: list[str]) -> int:
    """The outer IPv6 extension headers' length (hop-by-hop, routing, destination options)."""
    total = 0
    for field in (F_HBH_LEN, F_RT_LEN, F_DST_LEN):
        if f[field]:
            total += (_int(f[field]) + 1) * 8
    return total


def _ip_row(
    f: list[str], tokens: list[str], at: int, addr: _Addr, ts: int, wire: int, vlan: int,
    layer: int,
) -> tuple[Row, int]:  # fmt: skip
    """The packet row of the IP layer at token ``at`` (``layer`` 0 outer, 1 inner) and the
    token index after its transport header."""

    def field(i: int) -> str:
        k = tokens[:at].count(_FIELD_TOKEN[i]) if layer else 0
        return _nth(f[i], k) if k else _first(f[i])

    bad = KIND_TRUNCATED if f[F_SHORT] else KIND_MALFORMED
    v6 = tokens[at] == "ipv6"
    src_t, dst_t = (field(F_6_SRC), field(F_6_DST)) if v6 else (field(F_IP_SRC), field(F_IP_DST))
    version = 6 if v6 else 4
    if not src_t or not dst_t:
        return (ts, wire, vlan, bad, version, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), at + 1
    s_hi, s_lo = addr(src_t, v6)
    d_hi, d_lo = addr(dst_t, v6)
    frag = 0
    pos = at + 1
    kind = KIND_IP
    if v6:
        proto = _int(field(F_6_NXT))
        ip_len = 40 + _int(field(F_6_PLEN))
        seen: dict[int, int] = {}
        while pos < len(tokens) and tokens[pos] in _EXT_TOKENS:
            number, ext = _EXT_TOKENS[tokens[pos]]
            k = seen.get(ext, 0)
            seen[ext] = k + 1
            base = tokens[:at].count(tokens[pos]) if layer else 0
            nxt = _nth(f[ext], base + k)
            if proto != number or not nxt:
                kind = bad  # the chain and the tokens disagree (header cut short)
                break
            proto = int(nxt)
            pos += 1
        frag_id = 0
        if "ipv6.fraghdr" in tokens[at + 1 : pos + 1]:
            off, more = _int(field(F_6_OFF)), field(F_6_MORE)
            frag_id = _int(field(F_6_ID))
            if off or more in ("1", "True"):
                frag = FRAG_IS_FRAGMENT | (FRAG_FIRST if off == 0 else 0)
    else:
        proto = _int(field(F_IP_PROTO))
        ip_len = _int(field(F_IP_LEN))
        frag_id = _int(field(F_IP_ID))
        off, mf = _int(field(F_IP_OFF)), field(F_IP_MF)
        if off or mf in ("1", "True"):
            frag = FRAG_IS_FRAGMENT | (FRAG_FIRST if off == 0 else 0)
    sport = dport = flags = 0
    want = _L4_TOKEN.get(proto)
    if want is not None and not (frag & FRAG_IS_FRAGMENT and not frag & FRAG_FIRST):
        got = pos < len(tokens) and tokens[pos] == want
        if proto == 6:
            a, b, c = field(F_TCP_S), field(F_TCP_D), field(F_TCP_FL)
        elif proto == 17:
            a, b, c = field(F_UDP_S), field(F_UDP_D), "0"
        elif proto == 132:
            a, b, c = field(F_SCTP_S), field(F_SCTP_D), "0"
        elif proto == 1:
            a, b, c = field(F_ICMP_T), field(F_ICMP_C), "0"
        else:
            a, b, c = field(F_ICMP6_T), field(F_ICMP6_C), "0"
        if got and a and b and c:
            sport, dport, flags = _int(a), _int(b), _int(c) & 0xFF
            frag |= FRAG_HAS_L4
            pos += 1
        elif not frag & FRAG_IS_FRAGMENT or f[F_SHORT] or f[F_MALFORMED]:
            kind = bad  # an unfragmented packet must carry its transport header
    row = (ts, wire, vlan, kind, version, s_hi, s_lo, d_hi, d_lo, proto, sport, dport,
           flags, ip_len, frag, frag_id)  # fmt: skip
    return row, pos


def _to_batch(rows: list[Row], inner: list[tuple[int, ...]] | None = None) -> PacketBatch:
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in PACKET_FIELDS]
    arrays = {
        name: np.array(col, dtype=dtype)
        for (name, dtype), col in zip(PACKET_FIELDS.items(), cols, strict=True)
    }
    batch = PacketBatch(arrays)
    if inner:
        fields = {**PACKET_FIELDS, **INNER_FIELDS}
        icols = list(zip(*inner, strict=True))
        batch.inner = PacketBatch(
            {n: np.array(c, dtype=t) for (n, t), c in zip(fields.items(), icols, strict=True)}
        )
    return batch


def _count(stats: ReadStats, rows: list[Row]) -> None:
    for r in rows:
        k = r[3]
        if k == KIND_IP:
            stats.ip_packets += 1
        elif k == KIND_NON_IP:
            stats.non_ip += 1
        elif k == KIND_TRUNCATED:
            stats.truncated += 1
        elif k == KIND_UNSUPPORTED:
            stats.unsupported += 1
        else:
            stats.malformed += 1
    stats.frames += len(rows)


def _wanted(inner: tuple[int, ...], vxlan: set[int]) -> bool:
    """VXLAN only on the chosen ports (tshark also opens 4789 by itself), Geneve on 6081
    and GRE: what the fast reader opens."""
    from flowaudit.packets.tunnels import GENEVE_PORTS

    n = len(PACKET_FIELDS)
    tun, dport = inner[n], inner[-1]
    if tun == TUN_VXLAN:
        return dport in vxlan
    if tun == TUN_GENEVE:
        return dport in GENEVE_PORTS
    return True


def _stderr_text(messages: tools.Messages) -> str:
    # tshark's own chatter about running as root is not a capture problem
    return " ".join(ln for ln in messages.lines() if "could be dangerous" not in ln)


def iter_packets_tshark(
    path: str | os.PathLike[str],
    *,
    stats: ReadStats | None = None,
    batch_size: int = 50_000,
    decode_as: Sequence[str] = (),
    vxlan_ports: Sequence[int] | None = None,
) -> Iterator[PacketBatch]:
    """Yield PacketBatch objects (capture order) for every frame tshark reads in ``path``.

    ``decode_as`` takes tshark ``-d`` rules (``"udp.port==8472,vxlan"``); flows stay on the
    outer header whatever is decoded inside. ``vxlan_ports``, when given, opens tunnels as
    the fast reader does (VXLAN on those ports, Geneve, GRE): each batch's ``inner`` holds
    the inner packets. Raises CaptureError when tshark is missing
    (hint: install it) or cannot read the file; a file cut short is kept up to the last
    whole packet with a warning in ``stats.warnings``.
    """
    stats = stats if stats is not None else ReadStats()
    name = os.fspath(path)
    p = Path(name)
    if not p.is_file():
        raise CaptureError(f"{name}: no such capture file (byte offset 0)")
    if p.stat().st_size == 0:
        raise CaptureError(f"{name}: empty file, not a capture (byte offset 0)")
    if vxlan_ports is not None:
        from flowaudit.packets.tunnels import decode_as as tunnel_rules

        decode_as = [*decode_as, *tunnel_rules(vxlan_ports)]
    cmd = tshark_command(name, decode_as)
    batch_size = max(1, batch_size)
    opening = vxlan_ports is not None
    vxlan = set(vxlan_ports or ())
    proc, err = tools.start(cmd, "tshark", env={**os.environ, "LC_ALL": "C"})
    assert proc.stdout is not None
    addr = _Addr()
    rows: list[Row] = []
    inner: list[tuple[int, ...]] = []
    total = 0
    try:
        for raw in proc.stdout:
            row, opened = parse_line_inner(raw.decode("utf-8", "replace"), addr)
            rows.append(row)
            if opened is not None and opening and _wanted(opened, vxlan):
                inner.append(opened)
            if len(rows) >= batch_size:
                _count(stats, rows)
                total += len(rows)
                yield _to_batch(rows, inner)
                rows, inner = [], []
        rc = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    message = _stderr_text(err)
    if rows:
        _count(stats, rows)
        total += len(rows)
        yield _to_batch(rows, inner)
    stats.bytes_read += p.stat().st_size
    if "cut short in the middle of a packet" in message or (rc != 0 and total > 0):
        stats.warnings.append(
            f"{name}: tshark stopped after packet {total}: {message or f'exit status {rc}'}"
            f" ({total} packets read)"
        )
    elif rc != 0:
        raise CaptureError(
            f"{name}: tshark cannot read it (byte offset 0): {message or f'exit status {rc}'}"
        )
