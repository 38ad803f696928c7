"""Packet batches → bidirectional flows (schema v1): key, initiator, counters, Zeek state.

``FlowBuilder.add(batch)`` walks a ``PacketBatch`` through a persistent flow table (a
numba kernel, ``flowaudit.kernels.flowtable``) and returns the flows that ended as an Arrow
table of ``FLOW_SCHEMA``; ``finish()`` returns the rest. Memory holds only live flows.

Decisions (for reviewers and for ARCHITECTURE.md):

* **Key**: (VLAN, protocol, the two (address, port) endpoints), canonicalised so both
  directions hit one flow. The same 5-tuple on two VLANs is two flows (as Zeek's
  VLAN-aware ``conn_key``). ``vlan_id`` is null for untagged frames.
* **ICMP/ICMPv6** are keyed like Zeek and Community ID: the sender's "port" is the
  message type, the receiver's is the counterpart type for request/reply pairs (echo
  8↔0, ICMPv6 echo 128↔129, router 133↔134, neighbour 135↔136, ...), else the code.
  So an echo request and its reply are one flow, and the output has ``src_port`` =
  the initiator's type and ``dst_port`` = the counterpart type (or the code for
  one-way types such as unreachable), exactly the ``id.orig_p``/``id.resp_p`` Zeek logs
  (e.g. 8/0 for ping, 128/129 for ICMPv6 ping, 3/1 for host unreachable).
* **Initiator** (``direction``): ``syn`` when a TCP SYN without ACK opens the flow (its
  sender) or a SYN-ACK is seen first (its receiver). Otherwise (mid-stream TCP, UDP,
  SCTP) ``service_port`` when one side's port has a higher service level than the other's
  (``flows.ports``: likely server ports > well-known and matrix ports > the rest; that side
  is the responder; port 0 is never a service port), else ``first_packet``.
  ICMP/ICMPv6: the sender of a request type (echo, timestamp, information, router or
  neighbour solicitation, ...) is the initiator, even when its reply was seen first;
  without a request, the first packet's sender. ICMP flows are labelled
  ``first_packet`` (the issue's rule: SYN when seen, else service port, else first
  packet; ICMP has neither). Other protocols: ``first_packet``.
* **state**: Zeek's ``conn_state`` for TCP from Zeek's endpoint state machine (SYN_SENT,
  ESTABLISHED, CLOSED, RESET, ...). Zeek tracks payload size by sequence numbers; the
  packet contract has no TCP header length, so "carried data" is read from an optional
  ``payload_len`` array in the batch when a reader provides one, else estimated as
  ``ip_len - IP header - 20 > 12`` (options of a pure ACK rarely exceed 12 bytes). It
  only matters for REJ-vs-RSTR with two RSTs, RSTOS0-vs-OTH and an early bare ACK.
  Non-TCP: ``S0`` only the initiator sent, ``SF`` both sent, ``SHR`` only the
  responder sent (Zeek's UDP rule; Zeek itself writes ``OTH`` for every ICMP flow).
* **Splitting**: idle timeouts per protocol (Zeek defaults: TCP 300 s, UDP/ICMP/other
  60 s). A TCP flow whose close is complete (Zeek's rule: FIN both ways, a RST, or a
  FIN while the peer never spoke) lingers ``tcp_close_linger_s`` (Zeek's
  ``tcp_close_delay``, 5 s) so the last ACK lands in it; a pure SYN on a closed flow
  starts a new flow at once; any packet after the linger starts a new flow.
* **Fragments**: the first fragment (offset 0, with L4 header) makes or joins a flow;
  later fragments are counted in that flow (packets, bytes, ip bytes of each fragment:
  Zeek instead counts one reassembled packet). Fragments that arrive before their first
  fragment wait in the fragment table; those whose first fragment never comes are
  counted in ``stats.fragments_unattributed`` (+ bytes) and form no flow.
* **Timestamps**: ns truncated to µs. Emission order inside a table: (first_seen, flow_id).
  Expiry runs on packet time: at each lookup, and a sweep every ``sweep_interval_s``.
* **Not replicated from Zeek** (no sequence numbers in the packet contract): a SYN with
  a new ISN on a live flow, SYN/SYN-ACK reversal, the 5 s ``tcp_attempt_delay`` split of
  unanswered SYN retries (ours stay one S0 flow until the idle timeout).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from flowaudit._util import arrow as A
from flowaudit.flows.community_id import community_ids
from flowaudit.flows.ports import service_port_mask
from flowaudit.kernels import layout as ft
from flowaudit.kernels.build import kernels
from flowaudit.kernels.icmp import PORT_PROTOCOLS
from flowaudit.packets.batch import PacketBatch
from flowaudit.schema import FLOW_SCHEMA, TS

STATE_NAMES = ("S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH",
               "SHR", "OTH")  # fmt: skip
DIRECTION_NAMES = ("syn", "first_packet", "service_port")


@dataclass(frozen=True)
class FlowConfig:
    """Timeouts (seconds) and the service-port mask; defaults follow Zeek."""

    tcp_idle_s: float = 300.0
    udp_idle_s: float = 60.0
    icmp_idle_s: float = 60.0
    other_idle_s: float = 60.0
    tcp_close_linger_s: float = 5.0
    fragment_timeout_s: float = 60.0
    service_ports: npt.NDArray[np.uint8] | None = field(default=None, compare=False)
    initial_flows: int = 1 << 12
    sweep_interval_s: float = 5.0

    def cfg_array(self) -> npt.NDArray[np.int64]:
        vals = (self.tcp_idle_s, self.udp_idle_s, self.icmp_idle_s, self.other_idle_s,
                self.tcp_close_linger_s, self.fragment_timeout_s,
                self.sweep_interval_s)  # fmt: skip
        return np.array([round(v * 1e9) for v in vals], dtype=np.int64)

    def mask(self) -> npt.NDArray[np.uint8]:
        """Port levels (``flows.ports.service_port_mask``); a bool mask is taken as level 1."""
        if self.service_ports is None:
            return service_port_mask(())
        m = np.asarray(self.service_ports).astype(np.uint8)
        if m.shape != (65536,):
            raise ValueError("service_ports must be an array of 65536 port levels")
        return m


@dataclass
class FlowStats:
    """What the flow builder saw (packets are frames handed to ``add``)."""

    packets: int = 0
    ip_packets: int = 0
    non_ip: int = 0
    not_decoded: int = 0  # truncated, unsupported, malformed frames
    packets_in_flows: int = 0
    bytes_in_flows: int = 0
    ip_without_ports: int = 0  # TCP/UDP/ICMP/SCTP packets whose L4 header was not read
    fragments_attributed: int = 0
    fragments_unattributed: int = 0
    fragments_unattributed_bytes: int = 0
    fragments_unattributed_ip_bytes: int = 0
    flows_created: int = 0
    flows_emitted: int = 0
    flows_active: int = 0
    split_idle: int = 0
    split_closed: int = 0
    split_reuse: int = 0


_WALK_FIELDS = ("ts_ns", "wire_len", "vlan", "kind", "ip_version", "src_hi", "src_lo",
                "dst_hi", "dst_lo", "protocol", "sport", "dport", "tcp_flags", "ip_len", "frag",
                "frag_id")  # fmt: skip


def _pow2(n: int) -> int:
    return 1 << max(4, (n - 1).bit_length())


class FlowBuilder:
    """Streams packet batches into bidirectional flows (see the module docstring)."""

    def __init__(self, capture_id: str, source_kind: str, config: FlowConfig | None = None) -> None:
        self.capture_id = capture_id
        self.source_kind = source_kind
        self.config = config if config is not None else FlowConfig()
        self._cfg = self.config.cfg_array()
        self._service = self.config.mask()
        self._stats = np.zeros(ft.N_STATS, dtype=np.int64)
        self._emitted = 0
        self._meta = np.zeros(ft.N_META, dtype=np.int64)
        self._meta[ft.M_NEXT_SWEEP] = ft.NO_SWEEP
        self._alloc_pool(_pow2(self.config.initial_flows))
        self._htab = np.full((2 * len(self._pi), 2), -1, dtype=np.int64)
        self._ftab = np.zeros((256, ft.N_F64), dtype=np.int64)
        self._fu = np.zeros((256, ft.N_FU64), dtype=np.uint64)
        self._no_payload = np.zeros(0, dtype=np.uint32)
        self._no_uids = np.zeros(0, dtype=np.int64)
        self._k = kernels()

    # --- table management ----------------------------------------------------------
    def _alloc_pool(self, cap: int) -> None:
        self._pl = np.zeros((cap, ft.N_I64), dtype=np.int64)
        self._pu = np.zeros((cap, ft.N_U64), dtype=np.uint64)
        self._pi = np.zeros((cap, ft.N_I32), dtype=np.int32)
        self._free = np.arange(cap - 1, -1, -1, dtype=np.int32)
        self._ended = np.zeros(cap, dtype=np.int32)
        self._meta[ft.M_FREE_N] = cap

    def _grow_pool(self) -> None:
        old = len(self._pi)
        cap = 2 * old
        for name in ("_pl", "_pu", "_pi"):
            a = getattr(self, name)
            b = np.zeros((cap, a.shape[1]), dtype=a.dtype)
            b[:old] = a
            setattr(self, name, b)
        free = np.empty(cap, dtype=np.int32)
        nfree = int(self._meta[ft.M_FREE_N])
        free[:nfree] = self._free[:nfree]
        free[nfree : nfree + old] = np.arange(cap - 1, old - 1, -1, dtype=np.int32)
        self._free = free
        self._meta[ft.M_FREE_N] = nfree + old
        ended = np.zeros(cap, dtype=np.int32)
        ended[: len(self._ended)] = self._ended
        self._ended = ended

    def _rehash(self) -> None:
        used = int(self._meta[ft.M_H_USED])
        cap = self._htab.shape[0]
        if (used + 2) * 4 > cap:
            cap *= 2
        tab = np.full((cap, 2), -1, dtype=np.int64)
        self._k.rehash(self._pi, self._htab, tab)
        self._htab = tab
        self._meta[ft.M_H_TOMB] = 0

    def _frag_rehash(self) -> None:
        used = int(self._meta[ft.M_F_USED])
        cap = self._ftab.shape[0]
        if (used + 2) * 4 > cap:
            cap *= 2
        tab = np.zeros((cap, ft.N_F64), dtype=np.int64)
        fu = np.zeros((cap, ft.N_FU64), dtype=np.uint64)
        self._meta[ft.M_F_USED] = self._k.frag_rehash(self._ftab, self._fu, tab, fu)
        self._meta[ft.M_F_TOMB] = 0
        self._ftab, self._fu = tab, fu

    def _tables(self) -> tuple[npt.NDArray[np.generic], ...]:
        return (self._cfg, self._stats, self._meta, self._htab, self._pl,
                self._pu, self._pi, self._free, self._ended, self._ftab, self._fu,
                self._service)  # fmt: skip

    # --- public API ----------------------------------------------------------------
    def add(self, batch: PacketBatch) -> pa.Table:
        """Feed one batch; return the flows that ended (closed, idle-expired), maybe none."""
        self._walk(batch)
        return self._drain()

    def _walk(self, batch: PacketBatch, uids: npt.NDArray[np.int64] | None = None) -> None:
        """Walk a batch into the flow table. ``uids`` (int64, one per packet), when given,
        receives the uid of the flow each packet creates (the uid ``_more_columns`` is handed
        at emission); other packets keep their value."""
        batch.check()
        a = batch.arrays
        payload = a.get("payload_len")
        have_payload = payload is not None and len(payload) == len(batch)
        pay = self._no_payload
        if have_payload and payload is not None:
            pay = np.ascontiguousarray(payload, dtype=np.uint32)
        cols = [np.ascontiguousarray(a[k]) for k in _WALK_FIELDS]
        walk = self._k.walk
        i = 0
        n = len(batch)
        uid_out = self._no_uids if uids is None else uids
        while i < n:
            status, i = walk(*cols, pay, have_payload, i, *self._tables(), uid_out)
            if status == ft.NEED_HASH:
                self._rehash()
            elif status == ft.NEED_POOL:
                self._grow_pool()
            elif status == ft.NEED_FRAG:
                self._frag_rehash()

    def finish(self) -> pa.Table:
        """End every remaining flow and return them; the builder is empty afterwards."""
        self._k.sweep(self._pl, self._pi, self._cfg, self._meta, self._htab, self._ended,
                      self._ftab, self._stats, 0, True)  # fmt: skip
        out = self._drain()
        self._htab[:, 0] = -1
        self._meta[ft.M_H_USED] = self._meta[ft.M_H_TOMB] = 0
        self._ftab.fill(0)
        self._meta[ft.M_F_USED] = self._meta[ft.M_F_TOMB] = 0
        self._meta[ft.M_NEXT_SWEEP] = ft.NO_SWEEP
        return out

    @property
    def stats(self) -> FlowStats:
        s = FlowStats(**{k: int(v) for k, v in zip(ft.STAT_NAMES, self._stats, strict=True)})
        s.flows_emitted = self._emitted
        s.flows_active = int(self._meta[ft.M_LIVE])
        return s

    @property
    def active_flows(self) -> int:
        return int(self._meta[ft.M_LIVE])

    # --- ended flows → Arrow -------------------------------------------------------
    def _drain(self) -> pa.Table:
        n = int(self._meta[ft.M_ENDED_N])
        if n == 0:
            return A.empty_table(FLOW_SCHEMA)
        ids = self._ended[:n].copy()
        self._meta[ft.M_ENDED_N] = 0
        table = self._to_table(ids)
        self._pi[ids, ft.C_LIVE] = 0
        nfree = int(self._meta[ft.M_FREE_N])
        self._free[nfree : nfree + n] = ids
        self._meta[ft.M_FREE_N] = nfree + n
        self._emitted += n
        return table

    def _to_table(self, ids: npt.NDArray[np.int32]) -> pa.Table:
        n = len(ids)
        pi, pu, pl = self._pi[ids], self._pu[ids], self._pl[ids]
        o = pi[:, ft.C_ORIG] == 1  # the initiator is canonical side 1

        def pick(side0: npt.NDArray[Any], side1: npt.NDArray[Any], src: bool = True) -> Any:
            return np.where(o, side1, side0) if src else np.where(o, side0, side1)

        src_hi, dst_hi = (
            pick(pu[:, ft.U_AHI], pu[:, ft.U_BHI]),
            pick(pu[:, ft.U_AHI], pu[:, ft.U_BHI], False),
        )
        src_lo, dst_lo = (
            pick(pu[:, ft.U_ALO], pu[:, ft.U_BLO]),
            pick(pu[:, ft.U_ALO], pu[:, ft.U_BLO], False),
        )
        sport, dport = (
            pick(pi[:, ft.C_PA], pi[:, ft.C_PB]),
            pick(pi[:, ft.C_PA], pi[:, ft.C_PB], False),
        )
        proto = pi[:, ft.C_PROTO].astype(np.uint8)
        ipv = pi[:, ft.C_IPV].astype(np.int8)
        fid = community_ids(ipv, src_hi, src_lo, dst_hi, dst_lo, proto, sport, dport)
        # emission order: (first_seen, flow_id); every id is 30 ASCII bytes
        fid_s = np.frombuffer(fid.buffers()[2], dtype="S30", count=n, offset=30 * fid.offset)
        first_us = pl[:, ft.I_FIRST] // 1000
        order = _emission_order(first_us, fid_s)
        both: list[Any] = [x[order] for x in (ids, pi, pu, pl, o, fid_s, first_us)]
        ids, pi, pu, pl, o, fid_s, first_us = both
        tup: list[Any] = [
            x[order] for x in (src_hi, dst_hi, src_lo, dst_lo, sport, dport, proto, ipv)
        ]
        src_hi, dst_hi, src_lo, dst_lo, sport, dport, proto, ipv = tup
        vlan = pi[:, ft.C_VLAN]
        no_ports = ~np.isin(proto, PORT_PROTOCOLS)
        text = A.ip_text(
            np.concatenate([ipv, ipv]),
            np.concatenate([src_hi, dst_hi]),
            np.concatenate([src_lo, dst_lo]),
            address_rows,
        )
        states = self._k.conn_states(self._pi, self._pu, ids)

        def u64(side0: int, side1: int, src: bool) -> pa.Array:
            return A.fixed(pa.uint64(), pick(pu[:, side0], pu[:, side1], src))

        def flags(src: bool) -> pa.Array:
            return A.fixed(pa.uint8(), pick(pi[:, ft.C_FL0], pi[:, ft.C_FL1], src).astype(np.uint8))

        cols: dict[str, pa.Array] = {
            "flow_id": A.strings(fid_s.view(np.uint8), np.full(n, 30, dtype=np.int64)),
            "source_kind": A.constant(self.source_kind, n),
            "capture_id": A.constant(self.capture_id, n),
            "vlan_id": A.fixed(pa.int16(), vlan.astype(np.int16), null=vlan < 0),
            "ip_version": A.fixed(pa.int8(), ipv),
            "src_ip": text.slice(0, n),
            "dst_ip": text.slice(n, n),
            "src_addr": _addr16(src_hi, src_lo),
            "dst_addr": _addr16(dst_hi, dst_lo),
            "protocol": A.fixed(pa.uint8(), proto),
            "src_port": A.fixed(pa.uint16(), sport.astype(np.uint16), null=no_ports),
            "dst_port": A.fixed(pa.uint16(), dport.astype(np.uint16), null=no_ports),
            "first_seen": A.fixed(TS, first_us),
            "last_seen": A.fixed(TS, pl[:, ft.I_LAST] // 1000),
            "src_packets": u64(ft.U_PK0, ft.U_PK1, True),
            "src_bytes": u64(ft.U_BY0, ft.U_BY1, True),
            "dst_packets": u64(ft.U_PK0, ft.U_PK1, False),
            "dst_bytes": u64(ft.U_BY0, ft.U_BY1, False),
            "tcp_flags_src": flags(True),
            "tcp_flags_dst": flags(False),
            "state": A.from_codes(states, STATE_NAMES),
            "direction": A.from_codes(pi[:, ft.C_DIR], DIRECTION_NAMES),
            "sampling": A.fixed(pa.uint32(), np.ones(n, dtype=np.uint32)),
            "src_ip_bytes": u64(ft.U_IB0, ft.U_IB1, True),
            "dst_ip_bytes": u64(ft.U_IB0, ft.U_IB1, False),
        }
        self._more_columns(cols, pl[:, ft.I_UID], vlan, (src_hi, src_lo, dst_hi, dst_lo, sport))
        arrays = [cols[f.name] if f.name in cols else pa.nulls(n, f.type) for f in FLOW_SCHEMA]
        return pa.Table.from_arrays(arrays, schema=FLOW_SCHEMA)

    def _more_columns(
        self,
        cols: dict[str, pa.Array],
        uids: npt.NDArray[np.int64],
        key: npt.NDArray[np.int32],
        initiator: tuple[npt.NDArray[Any], ...],
    ) -> None:
        """Add or replace columns of the flows being emitted, given (in table order) their
        uids, VLAN key slots and (src hi, src lo, dst hi, dst lo, src port): the inner-flow
        builder's hook (``flows/tunnel.py``)."""


def address_rows(
    is4: npt.NDArray[np.bool_],
    v4: npt.NDArray[np.uint64],
    code6: npt.NDArray[np.int64],
    tab6: npt.NDArray[np.uint8],
    len6: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """The row writer of ``_util.arrow.ip_text``, compiled (``kernels.text``)."""
    n = len(is4)
    data = np.empty(max(15, tab6.shape[1]) * n, dtype=np.uint8)
    lens = np.empty(n, dtype=np.int64)
    end = kernels().address_text(
        np.ascontiguousarray(is4, dtype=np.bool_), np.ascontiguousarray(v4, dtype=np.uint64),
        np.ascontiguousarray(code6, dtype=np.int64), np.ascontiguousarray(tab6, dtype=np.uint8),
        np.ascontiguousarray(len6, dtype=np.int64), data, lens,
    )  # fmt: skip
    return data[:end], lens


def _emission_order(
    first_us: npt.NDArray[np.int64], fid_s: npt.NDArray[np.bytes_]
) -> npt.NDArray[np.intp]:
    """The row order by (first_seen, flow_id). Sorting 30-byte strings is slow, so the ids
    are compared by their first 8 characters after "1:" (one integer); only when two rows
    agree on both keys does the whole id decide (rare: the characters are hash bits)."""
    n = len(first_us)
    head = np.ascontiguousarray(fid_s.view(np.uint8).reshape(n, 30)[:, 2:10]).view(">u8")
    head = head.reshape(n)
    order = np.lexsort((head, first_us))
    f, h = first_us[order], head[order]
    if bool(((f[1:] == f[:-1]) & (h[1:] == h[:-1])).any()):
        return np.lexsort((fid_s, first_us))
    return order


def _addr16(hi: npt.NDArray[np.generic], lo: npt.NDArray[np.generic]) -> pa.Array:
    b = np.empty((len(hi), 2), dtype=">u8")
    b[:, 0] = hi
    b[:, 1] = lo
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), len(hi), [None, pa.py_buffer(b.tobytes())]
    )


__all__ = [
    "DIRECTION_NAMES",
    "STATE_NAMES",
    "FlowBuilder",
    "FlowConfig",
    "FlowStats",
    "address_rows",
]
