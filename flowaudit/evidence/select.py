"""Which frames of a capture belong to given flows or findings (the evidence selection).

Responsible for mapping packets back to flow records, mirroring the flow builder's
rules (``flowaudit.flows``): a packet belongs to a flow when VLAN, protocol, the two
(address, port) endpoints match in either direction (ICMP/ICMPv6 "ports" are the type
and the counterpart type or code, as the builder keys them; protocols without ports
use 0) and its time (µs, truncated like the builder) is within the flow's
[first_seen, last_seen]. Packets whose L4 header the builder could not read are never
selected. Non-first IP fragments belong to the flow of their datagram's first fragment
(same VLAN, protocol, addresses and fragment id) when within that flow's window, also
when they arrive before it. Two kinds of key:

* ``FlowKey``: one exact flow (evidence slices);
* ``ServiceKey``: a finding's (VLAN, initiator, responder, protocol, responder port):
  packets either way with the responder on that port, within the finding's window
  (enrichment of a whole audit result).

``select_packets`` consumes ``PacketBatch`` objects (capture order) and keeps only the
selected frames' indices, times and lengths: memory grows with the selection, not with
the capture. A vectorised hash pre-filter leaves Python only the candidate packets.
Optional caps (packets per connection, connections per key tag) bound enrichment work.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from flowaudit.kernels.icmp import ICMP4_PAIR_TABLE, ICMP6_PAIR_TABLE
from flowaudit.kernels.layout import (
    FRAG_FIRST,
    FRAG_HAS_L4,
    FRAG_IS_FRAGMENT,
    KIND_IP,
)
from flowaudit.packets.batch import PacketBatch

if TYPE_CHECKING:
    from flowaudit.evidence.slicer import SlicePart

U64 = npt.NDArray[np.uint64]
PORTED = (6, 17, 1, 58, 132)
_C1, _C2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_CP4 = np.asarray(ICMP4_PAIR_TABLE, dtype=np.int64)
_CP6 = np.asarray(ICMP6_PAIR_TABLE, dtype=np.int64)


def addr_halves(addr: bytes) -> tuple[int, int]:
    """A 16-byte (IPv4-mapped) address → the reader's (hi, lo) halves."""
    return int.from_bytes(addr[:8], "big"), int.from_bytes(addr[8:16], "big")


@dataclass(frozen=True)
class FlowKey:
    """One flow: endpoints (a = initiator), its window in µs, and a caller's tag."""

    vlan: int  # -1 untagged
    protocol: int
    a: tuple[int, int]
    a_port: int
    b: tuple[int, int]
    b_port: int
    first_us: int
    last_us: int
    tag: int


@dataclass(frozen=True)
class ServiceKey:
    """A finding: initiator ``src`` → responder ``dst`` on ``port``, window in µs."""

    vlan: int
    protocol: int
    src: tuple[int, int]
    dst: tuple[int, int]
    port: int
    first_us: int
    last_us: int
    tag: int


@dataclass
class Selection:
    """The selected frames of one capture, in capture order."""

    index: list[int] = field(default_factory=list)
    ts_ns: list[int] = field(default_factory=list)
    wire_len: list[int] = field(default_factory=list)
    tag: list[int] = field(default_factory=list)
    # where each frame is (packets.RECORD_FIELDS), when the reader says: else empty
    pos: list[int] = field(default_factory=list)
    caplen: list[int] = field(default_factory=list)
    link: list[int] = field(default_factory=list)
    frames: int = 0  # frames read in total

    def add(
        self, i: int, ts_ns: int, wire: int, tag: int, rec: tuple[int, int, int] | None
    ) -> None:
        self.index.append(i)
        self.ts_ns.append(ts_ns)
        self.wire_len.append(wire)
        self.tag.append(tag)
        if rec is not None:
            self.pos.append(rec[0])
            self.caplen.append(rec[1])
            self.link.append(rec[2])

    @property
    def located(self) -> bool:
        """Every selected frame has its stream position."""
        return len(self.pos) == len(self.index)

    def split(self, group: Callable[[int], int]) -> dict[int, Selection]:
        """The frames grouped by ``group(tag)``, each group in capture order."""
        out: dict[int, Selection] = {}
        for k in range(len(self.index)):
            rec = (self.pos[k], self.caplen[k], self.link[k]) if self.located else None
            sub = out.setdefault(group(self.tag[k]), Selection())
            sub.add(self.index[k], self.ts_ns[k], self.wire_len[k], self.tag[k], rec)
        return out

    def slice_part(self, path: Path) -> SlicePart:
        """These frames of ``path``, for ``ingest.slicer.write_slice``."""
        from flowaudit.evidence.slicer import SlicePart

        return SlicePart(
            path, self.index, self.ts_ns, self.wire_len, self.pos, self.caplen, self.link
        )

    def sort(self) -> None:
        order = sorted(range(len(self.index)), key=self.index.__getitem__)
        names = ["index", "ts_ns", "wire_len", "tag"]
        names += ["pos", "caplen", "link"] if self.located else []
        for name in names:
            col = getattr(self, name)
            setattr(self, name, [col[i] for i in order])


def _mix(x: U64) -> U64:
    x = (x ^ (x >> np.uint64(30))) * _C1
    x = (x ^ (x >> np.uint64(27))) * _C2
    return x ^ (x >> np.uint64(31))


def _u64(values: Iterable[int]) -> U64:
    return np.fromiter(values, dtype=np.uint64)


def _end(hi: U64, lo: U64, port: U64) -> U64:
    return _mix(_mix(_mix(hi) + lo) + port)


def _vp(vlan: npt.NDArray[np.int64], proto: npt.NDArray[np.int64]) -> U64:
    return _mix(((vlan + 1) * 256 + proto).astype(np.uint64))


def _flow_hash(vp: U64, a: U64, b: U64) -> U64:
    return vp ^ (a + b)  # symmetric in the endpoints


def _svc_hash(vp: U64, s: U64, d: U64, port: U64) -> U64:
    return _mix(vp + _mix(s * np.uint64(3) + _mix(d + port)))


def _key_arrays(
    vlan: Iterable[int], proto: Iterable[int]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    return np.fromiter(vlan, np.int64), np.fromiter(proto, np.int64)


class _Index:
    """The keys, hashed for the vectorised pre-filter and mapped for the exact check."""

    def __init__(self, flows: Iterable[FlowKey], services: Iterable[ServiceKey]) -> None:
        self.flows: dict[tuple[int, ...], list[FlowKey]] = defaultdict(list)
        self.services: dict[tuple[int, ...], list[ServiceKey]] = defaultdict(list)
        fl, sv = list(flows), list(services)
        for f in fl:
            ea, eb = (*f.a, f.a_port), (*f.b, f.b_port)
            self.flows[(f.vlan, f.protocol, *min(ea, eb), *max(ea, eb))].append(f)
        for s in sv:
            self.services[(s.vlan, s.protocol, *s.src, *s.dst, s.port)].append(s)
        v, p = _key_arrays([f.vlan for f in fl], [f.protocol for f in fl])
        vp = _vp(v, p)
        a = _end(_u64(f.a[0] for f in fl), _u64(f.a[1] for f in fl), _u64(f.a_port for f in fl))
        b = _end(_u64(f.b[0] for f in fl), _u64(f.b[1] for f in fl), _u64(f.b_port for f in fl))
        self.flow_h = np.unique(_flow_hash(vp, a, b))
        zero = _u64(0 for _ in fl)
        a0 = _end(_u64(f.a[0] for f in fl), _u64(f.a[1] for f in fl), zero)
        b0 = _end(_u64(f.b[0] for f in fl), _u64(f.b[1] for f in fl), zero)
        pair_f = _flow_hash(vp, a0, b0)
        v, p = _key_arrays([s.vlan for s in sv], [s.protocol for s in sv])
        vp = _vp(v, p)
        zero = _u64(0 for _ in sv)
        s_e = _end(_u64(s.src[0] for s in sv), _u64(s.src[1] for s in sv), zero)
        d_e = _end(_u64(s.dst[0] for s in sv), _u64(s.dst[1] for s in sv), zero)
        self.svc_h = np.unique(_svc_hash(vp, s_e, d_e, _u64(s.port for s in sv)))
        self.pair_h = np.unique(np.concatenate([pair_f, _flow_hash(vp, s_e, d_e)]))


@dataclass
class _Caps:
    per_conn: int | None
    conns_per_tag: int | None
    count: dict[tuple[int, ...], int] = field(default_factory=lambda: defaultdict(int))
    conns: dict[int, set[tuple[int, ...]]] = field(default_factory=lambda: defaultdict(set))

    def admit(self, conn: tuple[int, ...], tag: int) -> bool:
        if self.per_conn is None and self.conns_per_tag is None:
            return True
        seen = self.conns[tag]
        if conn not in seen:
            if self.conns_per_tag is not None and len(seen) >= self.conns_per_tag:
                return False
            seen.add(conn)
        self.count[conn] += 1
        return self.per_conn is None or self.count[conn] <= self.per_conn


def packet_batches(path: Path, engine: str = "auto") -> Iterator[PacketBatch]:
    """The PacketBatch stream selection reads: tshark's with ``engine="tshark"``, else the
    fast reader's (both one element per frame, in capture order)."""
    if engine == "tshark":
        from flowaudit.packets.tshark import iter_packets_tshark

        return iter_packets_tshark(path)
    from flowaudit.packets.pcap import iter_packets

    return iter_packets(path, positions=True)


def select_packets(
    batches: Iterable[PacketBatch],
    flows: Iterable[FlowKey] = (),
    services: Iterable[ServiceKey] = (),
    *,
    per_conn: int | None = None,
    conns_per_tag: int | None = None,
) -> Selection:
    """The frames of ``batches`` that belong to ``flows`` or ``services`` (module doc)."""
    idx = _Index(flows, services)
    caps = _Caps(per_conn, conns_per_tag)
    sel = Selection()
    heads: dict[tuple[int, ...], list[tuple[int, int, int]]] = defaultdict(list)
    tails: list[tuple[int, tuple[int, ...], int, int, tuple[int, int, int] | None]] = []
    base = 0
    for b in batches:
        _batch(b, base, idx, caps, sel, heads, tails)
        base += len(b)
    for i, key, ts_ns, wire, rec in tails:
        us = ts_ns // 1000
        for first, last, tag in heads.get(key, ()):
            if first <= us <= last:
                sel.add(i, ts_ns, wire, tag, rec)
                break
    sel.frames = base
    sel.sort()
    return sel


def _batch(
    b: PacketBatch,
    base: int,
    idx: _Index,
    caps: _Caps,
    sel: Selection,
    heads: dict[tuple[int, ...], list[tuple[int, int, int]]],
    tails: list[tuple[int, tuple[int, ...], int, int, tuple[int, int, int] | None]],
) -> None:
    proto = b["protocol"].astype(np.int64)
    fr = b["frag"].astype(np.int64)
    ip = b["kind"] == KIND_IP
    ported = np.isin(proto, PORTED)
    has_l4 = (fr & FRAG_HAS_L4) != 0
    is_frag = (fr & FRAG_IS_FRAGMENT) != 0
    tail = ip & is_frag & (((fr & FRAG_FIRST) == 0) | (ported & ~has_l4))
    normal = ip & ~tail & ~(ported & ~has_l4)
    ps = np.where(ported, b["sport"], 0).astype(np.int64)
    pd = np.where(ported, b["dport"], 0).astype(np.int64)
    icmp_t = ps & 255
    cp = np.where(proto == 1, _CP4[icmp_t], np.where(proto == 58, _CP6[icmp_t], -1))
    icmp = (proto == 1) | (proto == 58)
    ps = np.where(icmp, icmp_t, ps)
    pd = np.where(icmp & (cp >= 0), cp, pd)
    vlan = b["vlan"].astype(np.int64)
    shi, slo = b["src_hi"].astype(np.uint64), b["src_lo"].astype(np.uint64)
    dhi, dlo = b["dst_hi"].astype(np.uint64), b["dst_lo"].astype(np.uint64)
    vp = _vp(vlan, proto)
    ups, upd = ps.astype(np.uint64), pd.astype(np.uint64)
    cand = np.zeros(len(b), dtype=bool)
    if len(idx.flow_h):
        cand |= np.isin(_flow_hash(vp, _end(shi, slo, ups), _end(dhi, dlo, upd)), idx.flow_h)
    zero = np.zeros(len(b), dtype=np.uint64)
    s_e, d_e = _end(shi, slo, zero), _end(dhi, dlo, zero)
    if len(idx.svc_h):
        cand |= np.isin(_svc_hash(vp, s_e, d_e, upd), idx.svc_h)
        cand |= np.isin(_svc_hash(vp, d_e, s_e, ups), idx.svc_h)
    cand &= normal
    ts = b["ts_ns"]
    wire = b["wire_len"]
    fid = b["frag_id"]
    located = "rec_pos" in b.arrays

    def rec(i: int) -> tuple[int, int, int] | None:
        if not located:
            return None
        return int(b["rec_pos"][i]), int(b["caplen"][i]), int(b["link"][i])

    for i in np.flatnonzero(cand).tolist():
        v, pr = int(vlan[i]), int(proto[i])
        s, d = (int(shi[i]), int(slo[i])), (int(dhi[i]), int(dlo[i]))
        a_end, b_end = (*s, int(ps[i])), (*d, int(pd[i]))
        conn = (v, pr, *min(a_end, b_end), *max(a_end, b_end))
        us = int(ts[i]) // 1000
        tag = -1
        window = (0, 0)
        for f in idx.flows.get(conn, ()):
            if f.first_us <= us <= f.last_us:
                tag, window = f.tag, (f.first_us, f.last_us)
                break
        if tag < 0:
            for key in ((v, pr, *s, *d, int(pd[i])), (v, pr, *d, *s, int(ps[i]))):
                for sk in idx.services.get(key, ()):
                    if sk.first_us <= us <= sk.last_us:
                        tag, window = sk.tag, (sk.first_us, sk.last_us)
                        break
                if tag >= 0:
                    break
        if tag < 0 or not caps.admit(conn, tag):
            continue
        sel.add(base + i, int(ts[i]), int(wire[i]), tag, rec(i))
        if is_frag[i]:
            heads[(v, pr, *s, *d, int(fid[i]))].append((*window, tag))
    if not len(idx.pair_h):
        return
    t_idx = np.flatnonzero(tail & np.isin(_flow_hash(vp, s_e, d_e), idx.pair_h))
    for i in t_idx.tolist():
        key = (int(vlan[i]), int(proto[i]), int(shi[i]), int(slo[i]), int(dhi[i]), int(dlo[i]),
               int(fid[i]))  # fmt: skip
        tails.append((base + i, key, int(ts[i]), int(wire[i]), rec(i)))


__all__ = [
    "FlowKey",
    "Selection",
    "ServiceKey",
    "addr_halves",
    "packet_batches",
    "select_packets",
]
