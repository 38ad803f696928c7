"""Numba kernels of the flow builder: the per-packet walk over a persistent flow table.

Responsible for the hot path only; ``flowaudit.flows`` owns the Python side (growing
the arrays, turning ended flows into Arrow). State lives in numpy arrays:

* a **pool** of flow records (``pool_i64``/``pool_u64``/``pool_i32``, one row per flow,
  columns ``I_*``/``U_*``/``C_*`` below) with a free list;
* an **open-addressing hash table** (``htab``: rows of pool id and cached hash; id -1
  empty, -2 deleted) keyed by (vlan, protocol, the two (address, port) endpoints in
  canonical order: side 0 = the smaller endpoint, side 1 = the other);
* a **fragment table** (``ftab_i64``/``ftab_u64``) mapping (vlan, protocol, src, dst,
  fragment id) to the flow and side of the datagram's first fragment, or holding the
  counters of fragments that arrived before it.

Counters and TCP endpoint states are stored per canonical side; ``C_ORIG`` says which
side is the initiator. The walk returns early (status ``NEED_*``) when a table must
grow; the caller grows it and calls again from the returned packet index. Ended flows
are appended to ``ended`` (pool ids) and stay in the pool until the caller has read
them. Everything is driven by packet timestamps, never by the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np

from flowaudit.community_id import (
    ICMP4_PAIR_TABLE,
    ICMP4_REQUESTS,
    ICMP6_PAIR_TABLE,
    ICMP6_REQUESTS,
)

F = TypeVar("F", bound=Callable[..., Any])


def _jit(fn: F) -> F:
    return cast(F, numba.njit(cache=True, nogil=True)(fn))


# --- pool columns -----------------------------------------------------------------
I_FIRST, I_LAST, I_CLOSED, I_UID = 0, 1, 2, 3
N_I64 = 4
U_AHI, U_ALO, U_BHI, U_BLO = 0, 1, 2, 3
U_PK0, U_PK1, U_BY0, U_BY1, U_IB0, U_IB1 = 4, 5, 6, 7, 8, 9
N_U64 = 10
C_VLAN, C_PROTO, C_PA, C_PB, C_IPV = 0, 1, 2, 3, 4
C_FL0, C_FL1, C_ST0, C_ST1, C_PV0, C_PV1 = 5, 6, 7, 8, 9, 10
C_DATA0, C_DATA1, C_DC0, C_DC1 = 11, 12, 13, 14
C_DIR, C_ORIG, C_RCAND, C_ORST, C_SLOT, C_LIVE = 15, 16, 17, 18, 19, 20
N_I32 = 21

# --- fragment table columns ---------------------------------------------------------
F_STATE, F_VLAN, F_PROTO, F_FID, F_POOL, F_UID, F_SIDE = 0, 1, 2, 3, 4, 5, 6
F_FIRST, F_LAST, F_PPK, F_PBY, F_PIB = 7, 8, 9, 10, 11
N_F64 = 12
N_FU64 = 5  # src hi, src lo, dst hi, dst lo, hash
FS_EMPTY, FS_RESOLVED, FS_PENDING, FS_DELETED = 0, 1, 2, 3

# --- meta (int64 array) -------------------------------------------------------------
M_FREE_N, M_ENDED_N, M_UID, M_NEXT_SWEEP, M_H_USED, M_H_TOMB, M_F_USED, M_F_TOMB = range(8)
M_LIVE = 8
N_META = 9

# --- config (int64 array, nanoseconds) ----------------------------------------------
G_TCP, G_UDP, G_ICMP, G_OTHER, G_LINGER, G_FRAG, G_SWEEP = range(7)
N_CFG = 7

# --- stats (int64 array) ------------------------------------------------------------
S_PACKETS, S_IP, S_NON_IP, S_NOT_DECODED, S_IN_FLOWS, S_BYTES_IN_FLOWS = 0, 1, 2, 3, 4, 5
S_NO_PORTS, S_FRAG_ATTR, S_FRAG_UNATTR, S_FRAG_UNATTR_BYTES, S_FLOWS_CREATED = 6, 7, 8, 9, 10
S_SPLIT_IDLE, S_SPLIT_CLOSED, S_SPLIT_REUSE, S_FRAG_UNATTR_IP_BYTES = 11, 12, 13, 14
N_STATS = 15
#: FlowStats field names, in stats-array order
STAT_NAMES = ("packets", "ip_packets", "non_ip", "not_decoded", "packets_in_flows",
              "bytes_in_flows", "ip_without_ports", "fragments_attributed",
              "fragments_unattributed", "fragments_unattributed_bytes", "flows_created",
              "split_idle", "split_closed", "split_reuse",
              "fragments_unattributed_ip_bytes")  # fmt: skip

# --- walk status --------------------------------------------------------------------
DONE, NEED_HASH, NEED_POOL, NEED_FRAG = 0, 1, 2, 3

# --- TCP endpoint states (Zeek's TCP_ENDPOINT_*) ------------------------------------
T_INACTIVE, T_SYN_SENT, T_SYN_ACK_SENT, T_PARTIAL, T_ESTABLISHED, T_CLOSED, T_RESET = range(7)

# --- direction codes ----------------------------------------------------------------
D_SYN, D_FIRST, D_SERVICE = 0, 1, 2

# --- state codes (order of flows.STATE_NAMES) ---------------------------------------
(
    Z_S0, Z_S1, Z_SF, Z_REJ, Z_S2, Z_S3, Z_RSTO, Z_RSTR, Z_RSTOS0, Z_RSTRH, Z_SH, Z_SHR, Z_OTH
) = range(13)  # fmt: skip

FIN, SYN, RST, ACK = 1, 2, 4, 16
KIND_IP = 0
KIND_NON_IP = 1
FRAG_IS_FRAGMENT, FRAG_FIRST, FRAG_HAS_L4 = 1, 2, 4

# ICMP counterpart types (-1: one-way) and request types (their sender is the initiator)
_ICMP4_CP = ICMP4_PAIR_TABLE
_ICMP6_CP = ICMP6_PAIR_TABLE
_ICMP4_REQ = np.zeros(256, dtype=np.bool_)
_ICMP4_REQ[sorted(ICMP4_REQUESTS)] = True
_ICMP6_REQ = np.zeros(256, dtype=np.bool_)
_ICMP6_REQ[sorted(ICMP6_REQUESTS)] = True

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


@_jit
def _mix(h: np.uint64, v: np.uint64) -> np.uint64:
    z = (h ^ v) + _GOLD
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@_jit
def _timeout(cfg: Any, proto: int) -> int:
    if proto == 6:
        return int(cfg[G_TCP])
    if proto == 17:
        return int(cfg[G_UDP])
    if proto == 1 or proto == 58:
        return int(cfg[G_ICMP])
    return int(cfg[G_OTHER])


@_jit
def _set_state(pi: Any, p: int, side: int, new: int) -> None:
    cur = pi[p, C_ST0 + side]
    if cur != new:
        pi[p, C_PV0 + side] = cur
        pi[p, C_ST0 + side] = new


@_jit
def _tcp_update(pi: Any, p: int, side: int, is_orig: bool, fl: int, has_data: bool) -> bool:
    """Zeek's TCP endpoint state machine for one packet; True when it closes an endpoint."""
    st = pi[p, C_ST0 + side]
    peer = 1 - side
    pst = pi[p, C_ST0 + peer]
    syn, fin, rst, ack = (fl & SYN) != 0, (fl & FIN) != 0, (fl & RST) != 0, (fl & ACK) != 0
    do_close = False
    if st == T_INACTIVE:
        if syn:
            if is_orig:
                _set_state(pi, p, side, T_SYN_ACK_SENT if ack else T_SYN_SENT)
            else:
                if pst == T_SYN_SENT:
                    _set_state(pi, p, peer, T_ESTABLISHED)
                _set_state(pi, p, side, T_ESTABLISHED)
        if fin:
            _set_state(pi, p, side, T_CLOSED)
            do_close = True
        if rst:
            _set_state(pi, p, side, T_RESET)
            do_close = True
        if pi[p, C_ST0 + side] == T_INACTIVE:
            orig_st = pi[p, C_ST0 + pi[p, C_ORIG]]
            if (not is_orig) and (not has_data) and orig_st == T_SYN_SENT:
                pass  # an early ACK of the SYN before the SYN-ACK: not a partial connection
            elif ack and pi[p, C_ST0 + peer] == T_ESTABLISHED:
                _set_state(pi, p, side, T_ESTABLISHED)
            else:
                _set_state(pi, p, side, T_PARTIAL)
    elif st == T_SYN_SENT or st == T_SYN_ACK_SENT:
        if fin:
            _set_state(pi, p, side, T_CLOSED)
            do_close = True
        if rst:
            _set_state(pi, p, side, T_RESET)
            do_close = True
    elif st == T_ESTABLISHED or st == T_PARTIAL:
        if syn and st == T_PARTIAL and pst == T_INACTIVE and not ack:
            _set_state(pi, p, side, T_SYN_SENT)
        if fin and not rst:
            _set_state(pi, p, side, T_CLOSED)
            if pst == T_RESET and pi[p, C_PV0 + peer] == T_CLOSED:
                _set_state(pi, p, peer, T_CLOSED)  # FIN then RST from the peer: normal end
            do_close = True
        if rst:
            _set_state(pi, p, side, T_RESET)
            do_close = True
    elif st == T_CLOSED:
        if rst and pst != T_CLOSED:
            _set_state(pi, p, side, T_RESET)
            if pi[p, C_DC0 + side] == 0:
                do_close = True
    return do_close


@_jit
def _close_complete(pi: Any, p: int, side: int) -> bool:
    """Zeek's ConnectionClosed: mark the endpoint closed; True when the whole flow is."""
    if pi[p, C_DC0 + side] != 0:
        return False
    pi[p, C_DC0 + side] = 1
    peer = 1 - side
    return bool(
        pi[p, C_ST0 + side] == T_RESET
        or pi[p, C_DC0 + peer] != 0
        or pi[p, C_ST0 + peer] == T_INACTIVE
    )


@_jit
def conn_state(pi: Any, p: int) -> int:
    """Zeek's ``Conn::conn_state`` for one pooled flow (TCP endpoint states, else counts)."""
    o = pi[p, C_ORIG]
    r = 1 - o
    if pi[p, C_PROTO] != 6:
        return -1  # decided by the caller from the packet counts
    os_, rs = pi[p, C_ST0 + o], pi[p, C_ST0 + r]
    o_inact = os_ == T_INACTIVE or os_ == T_PARTIAL
    r_inact = rs == T_INACTIVE or rs == T_PARTIAL
    if rs == T_RESET:
        if (
            os_ == T_SYN_SENT
            or os_ == T_SYN_ACK_SENT
            or (os_ == T_RESET and pi[p, C_DATA0 + o] == 0 and pi[p, C_DATA0 + r] == 0)
        ):
            return Z_REJ
        if o_inact:
            return Z_RSTRH
        return Z_RSTR
    if os_ == T_RESET:
        if r_inact:
            if pi[p, C_RCAND] != 0:
                return Z_RSTOS0
            return Z_OTH
        return Z_RSTO
    if rs == T_CLOSED and os_ == T_CLOSED:
        return Z_SF
    if os_ == T_CLOSED:
        return Z_SH if r_inact else Z_S2
    if rs == T_CLOSED:
        return Z_SHR if o_inact else Z_S3
    if os_ == T_SYN_SENT and rs == T_INACTIVE:
        return Z_S0
    if os_ == T_ESTABLISHED and rs == T_ESTABLISHED:
        return Z_S1
    return Z_OTH


@_jit
def conn_states(pi: Any, pu: Any, ids: Any) -> Any:
    out = np.empty(len(ids), dtype=np.int8)
    for j in range(len(ids)):
        p = ids[j]
        z = conn_state(pi, p)
        if z < 0:
            o = pi[p, C_ORIG]
            osent = pu[p, U_PK0 + o] > 0
            rsent = pu[p, U_PK0 + 1 - o] > 0
            if osent:
                z = Z_SF if rsent else Z_S0
            else:
                z = Z_SHR if rsent else Z_OTH
        out[j] = z
    return out


@_jit
def _end_flow(pi: Any, meta: Any, htab: Any, ended: Any, p: int) -> None:
    s = pi[p, C_SLOT]
    htab[s, 0] = -2
    meta[M_H_USED] -= 1
    meta[M_H_TOMB] += 1
    pi[p, C_LIVE] = 2
    ended[meta[M_ENDED_N]] = p
    meta[M_ENDED_N] += 1
    meta[M_LIVE] -= 1


@_jit
def _flow_expired(pl: Any, pi: Any, cfg: Any, p: int, now: int) -> int:
    """0 live, 1 idle-expired, 2 closed and lingered long enough."""
    closed = pl[p, I_CLOSED]
    if closed >= 0 and now - closed > cfg[G_LINGER]:
        return 2
    if now - pl[p, I_LAST] > _timeout(cfg, pi[p, C_PROTO]):
        return 1
    return 0


@_jit
def sweep(pl: Any, pi: Any, cfg: Any, meta: Any, htab: Any, ended: Any, ftab: Any,
          stats: Any, now: int, end_all: bool) -> None:  # fmt: skip
    """End every expired flow (or every live flow when ``end_all``); drop stale fragments."""
    for p in range(pi.shape[0]):
        if pi[p, C_LIVE] == 1 and (end_all or _flow_expired(pl, pi, cfg, p, now) != 0):
            _end_flow(pi, meta, htab, ended, p)
    for s in range(ftab.shape[0]):
        stf = ftab[s, F_STATE]
        if stf == FS_RESOLVED or stf == FS_PENDING:
            if end_all or now - ftab[s, F_LAST] > cfg[G_FRAG]:
                if stf == FS_PENDING:
                    stats[S_FRAG_UNATTR] += ftab[s, F_PPK]
                    stats[S_FRAG_UNATTR_BYTES] += ftab[s, F_PBY]
                    stats[S_FRAG_UNATTR_IP_BYTES] += ftab[s, F_PIB]
                ftab[s, F_STATE] = FS_DELETED
                meta[M_F_USED] -= 1
                meta[M_F_TOMB] += 1


@_jit
def rehash(pi: Any, htab: Any, new_tab: Any) -> None:
    """Insert every live pooled flow into an empty (larger) table."""
    mask = new_tab.shape[0] - 1
    for p in range(pi.shape[0]):
        if pi[p, C_LIVE] == 1:
            hs = htab[pi[p, C_SLOT], 1]
            s = int(np.int64(np.uint64(hs) & np.uint64(mask)))
            while new_tab[s, 0] != -1:
                s = (s + 1) & mask
            new_tab[s, 0] = p
            new_tab[s, 1] = hs
            pi[p, C_SLOT] = s


@_jit
def frag_rehash(ftab: Any, fu: Any, new_tab: Any, new_u: Any) -> int:
    mask = new_tab.shape[0] - 1
    n = 0
    for s in range(ftab.shape[0]):
        stf = ftab[s, F_STATE]
        if stf == FS_RESOLVED or stf == FS_PENDING:
            h = fu[s, 4]
            t = int(np.int64(h & np.uint64(mask)))
            while new_tab[t, F_STATE] != FS_EMPTY:
                t = (t + 1) & mask
            new_tab[t, :] = ftab[s, :]
            new_u[t, :] = fu[s, :]
            n += 1
    return n


@_jit
def _frag_find(ftab: Any, fu: Any, vlan: int, proto: int, fid: int, shi: np.uint64,
               slo: np.uint64, dhi: np.uint64, dlo: np.uint64, h: np.uint64) -> int:  # fmt: skip
    """Slot of the entry (>= 0), or -(insert position) - 1 when absent."""
    mask = ftab.shape[0] - 1
    s = int(np.int64(h & np.uint64(mask)))
    first_free = -1
    while True:
        stf = ftab[s, F_STATE]
        if stf == FS_EMPTY:
            return -(first_free if first_free >= 0 else s) - 1
        if stf == FS_DELETED:
            if first_free < 0:
                first_free = s
        elif (
            fu[s, 4] == h
            and ftab[s, F_VLAN] == vlan
            and ftab[s, F_PROTO] == proto
            and ftab[s, F_FID] == fid
            and fu[s, 0] == shi
            and fu[s, 1] == slo
            and fu[s, 2] == dhi
            and fu[s, 3] == dlo
        ):
            return s
        s = (s + 1) & mask


NO_SWEEP = -(2**63)


@_jit
def _attribute(pl: Any, pu: Any, p: int, side: int, pk: int, by: int, ib: int, t0: int,
               t1: int) -> None:  # fmt: skip
    pu[p, U_PK0 + side] += np.uint64(pk)
    pu[p, U_BY0 + side] += np.uint64(by)
    pu[p, U_IB0 + side] += np.uint64(ib)
    if t0 < pl[p, I_FIRST]:
        pl[p, I_FIRST] = t0
    if t1 > pl[p, I_LAST]:
        pl[p, I_LAST] = t1


@_jit
def _frag_tail(pl: Any, pu: Any, pi: Any, ftab: Any, fu: Any, meta: Any, stats: Any,
               vlan: int, proto: int, fid: int, shi: np.uint64, slo: np.uint64,
               dhi: np.uint64, dlo: np.uint64, now: int, wl: int, il: int) -> None:  # fmt: skip
    """A fragment without its L4 header: count it in its datagram's flow, or keep it pending."""
    h = _mix(
        _mix(_mix(_mix(_mix(np.uint64(fid), np.uint64((vlan + 1) * 256 + proto)), shi), slo), dhi),
        dlo,
    )
    r = _frag_find(ftab, fu, vlan, proto, fid, shi, slo, dhi, dlo, h)
    if r >= 0:
        if ftab[r, F_STATE] == FS_RESOLVED:
            q = ftab[r, F_POOL]
            if pi[q, C_LIVE] == 1 and pl[q, I_UID] == ftab[r, F_UID]:
                _attribute(pl, pu, q, ftab[r, F_SIDE], 1, wl, il, now, now)
                stats[S_IN_FLOWS] += 1
                stats[S_BYTES_IN_FLOWS] += wl
                stats[S_FRAG_ATTR] += 1
            else:  # its flow already ended: counted, but forms no flow
                stats[S_FRAG_UNATTR] += 1
                stats[S_FRAG_UNATTR_BYTES] += wl
                stats[S_FRAG_UNATTR_IP_BYTES] += il
        else:
            ftab[r, F_PPK] += 1
            ftab[r, F_PBY] += wl
            ftab[r, F_PIB] += il
            if now < ftab[r, F_FIRST]:
                ftab[r, F_FIRST] = now
        if now > ftab[r, F_LAST]:
            ftab[r, F_LAST] = now
        return
    s = -r - 1
    if ftab[s, F_STATE] == FS_DELETED:
        meta[M_F_TOMB] -= 1
    meta[M_F_USED] += 1
    ftab[s, :] = 0
    ftab[s, F_STATE] = FS_PENDING
    ftab[s, F_VLAN], ftab[s, F_PROTO], ftab[s, F_FID] = vlan, proto, fid
    ftab[s, F_FIRST], ftab[s, F_LAST] = now, now
    ftab[s, F_PPK], ftab[s, F_PBY], ftab[s, F_PIB] = 1, wl, il
    fu[s, 0], fu[s, 1], fu[s, 2], fu[s, 3], fu[s, 4] = shi, slo, dhi, dlo, h


@_jit
def _frag_head(pl: Any, pu: Any, ftab: Any, fu: Any, meta: Any, stats: Any, p: int, side: int,
               vlan: int, proto: int, fid: int, shi: np.uint64, slo: np.uint64,
               dhi: np.uint64, dlo: np.uint64, now: int) -> None:  # fmt: skip
    """The first fragment of a datagram: remember its flow; take in fragments seen before it."""
    h = _mix(
        _mix(_mix(_mix(_mix(np.uint64(fid), np.uint64((vlan + 1) * 256 + proto)), shi), slo), dhi),
        dlo,
    )
    r = _frag_find(ftab, fu, vlan, proto, fid, shi, slo, dhi, dlo, h)
    if r >= 0:
        s = r
        if ftab[s, F_STATE] == FS_PENDING:
            pk, by = ftab[s, F_PPK], ftab[s, F_PBY]
            _attribute(pl, pu, p, side, pk, by, ftab[s, F_PIB], ftab[s, F_FIRST], ftab[s, F_LAST])
            stats[S_IN_FLOWS] += pk
            stats[S_BYTES_IN_FLOWS] += by
            stats[S_FRAG_ATTR] += pk
    else:
        s = -r - 1
        if ftab[s, F_STATE] == FS_DELETED:
            meta[M_F_TOMB] -= 1
        meta[M_F_USED] += 1
        ftab[s, :] = 0
        ftab[s, F_VLAN], ftab[s, F_PROTO], ftab[s, F_FID] = vlan, proto, fid
        fu[s, 0], fu[s, 1], fu[s, 2], fu[s, 3], fu[s, 4] = shi, slo, dhi, dlo, h
        ftab[s, F_FIRST] = now
    ftab[s, F_STATE] = FS_RESOLVED
    ftab[s, F_POOL], ftab[s, F_UID], ftab[s, F_SIDE] = p, pl[p, I_UID], side
    ftab[s, F_PPK], ftab[s, F_PBY], ftab[s, F_PIB] = 0, 0, 0
    ftab[s, F_LAST] = max(now, ftab[s, F_LAST])


@_jit
def walk(ts: Any, wire: Any, vlan: Any, kind: Any, ipv: Any, shi_a: Any, slo_a: Any,
         dhi_a: Any, dlo_a: Any, proto_a: Any, sport: Any, dport: Any, flags: Any,
         iplen: Any, frag: Any, fid_a: Any, payload: Any, have_payload: bool, start: int,
         cfg: Any, stats: Any, meta: Any, htab: Any, pl: Any, pu: Any, pi: Any,
         free: Any, ended: Any, ftab: Any, fu: Any, service: Any) -> tuple[int, int]:  # fmt: skip
    """Walk packets ``start..`` of one batch into the flow table (see module docstring)."""
    n = len(ts)
    mask = htab.shape[0] - 1
    umask = np.uint64(mask)
    i = start
    while i < n:
        if (meta[M_H_USED] + meta[M_H_TOMB] + 2) * 2 > htab.shape[0]:
            return NEED_HASH, i
        if meta[M_FREE_N] < 1:
            return NEED_POOL, i
        if (meta[M_F_USED] + meta[M_F_TOMB] + 2) * 2 > ftab.shape[0]:
            return NEED_FRAG, i
        now = ts[i]
        if meta[M_NEXT_SWEEP] == NO_SWEEP:
            meta[M_NEXT_SWEEP] = now + cfg[G_SWEEP]
        elif now >= meta[M_NEXT_SWEEP]:
            sweep(pl, pi, cfg, meta, htab, ended, ftab, stats, now, False)
            meta[M_NEXT_SWEEP] = now + cfg[G_SWEEP]
        elif now < meta[M_NEXT_SWEEP] - 2 * cfg[G_SWEEP]:
            meta[M_NEXT_SWEEP] = now + cfg[G_SWEEP]  # the clock went back: keep sweeping
        stats[S_PACKETS] += 1
        k = kind[i]
        if k != KIND_IP:
            if k == KIND_NON_IP:
                stats[S_NON_IP] += 1
            else:
                stats[S_NOT_DECODED] += 1
            i += 1
            continue
        stats[S_IP] += 1
        pr = int(proto_a[i])
        fr = int(frag[i])
        v = int(vlan[i])
        wl = int(wire[i])
        il = int(iplen[i])
        ported = pr == 6 or pr == 17 or pr == 1 or pr == 58 or pr == 132
        has_l4 = (fr & FRAG_HAS_L4) != 0
        is_frag = (fr & FRAG_IS_FRAGMENT) != 0
        shi, slo, dhi, dlo = shi_a[i], slo_a[i], dhi_a[i], dlo_a[i]
        if is_frag and ((fr & FRAG_FIRST) == 0 or (ported and not has_l4)):
            _frag_tail(pl, pu, pi, ftab, fu, meta, stats, v, pr, int(fid_a[i]), shi, slo, dhi,
                       dlo, now, wl, il)  # fmt: skip
            i += 1
            continue
        if ported and not has_l4:
            stats[S_NO_PORTS] += 1
            i += 1
            continue
        icmp_t = -1
        ps = 0
        pd = 0
        if ported:
            ps = int(sport[i])
            pd = int(dport[i])
            if pr == 1 or pr == 58:
                icmp_t = ps & 255
                cp = _ICMP4_CP[icmp_t] if pr == 1 else _ICMP6_CP[icmp_t]
                if cp >= 0:
                    pd = int(cp)
        if shi < dhi or (shi == dhi and (slo < dlo or (slo == dlo and ps <= pd))):
            side = 0
            ah, al, bh, bl, pa, pb = shi, slo, dhi, dlo, ps, pd
        else:
            side = 1
            ah, al, bh, bl, pa, pb = dhi, dlo, shi, slo, pd, ps
        h = _mix(_mix(_mix(_mix(_mix(np.uint64((v + 1) * 256 + pr), ah), al), bh), bl),
                 np.uint64(pa * 65536 + pb))  # fmt: skip
        hs = np.int64(h)
        s = int(np.int64(h & umask))
        first_free = -1
        p = -1
        while True:
            e = htab[s, 0]
            if e == -1:
                break
            if e == -2:
                if first_free < 0:
                    first_free = s
            elif (
                htab[s, 1] == hs
                and pu[e, U_ALO] == al
                and pu[e, U_BLO] == bl
                and pu[e, U_AHI] == ah
                and pu[e, U_BHI] == bh
                and pi[e, C_VLAN] == v
                and pi[e, C_PROTO] == pr
                and pi[e, C_PA] == pa
                and pi[e, C_PB] == pb
            ):
                p = e
                break
            s = (s + 1) & mask
        fl = int(flags[i]) if pr == 6 else 0
        if p >= 0:
            ex = _flow_expired(pl, pi, cfg, p, now)
            if ex == 0 and pr == 6 and pl[p, I_CLOSED] >= 0 and (fl & (SYN | ACK)) == SYN:
                ex = 3
            if ex != 0:
                stats[S_SPLIT_IDLE + ex - 1] += 1
                _end_flow(pi, meta, htab, ended, p)
                first_free = s
                p = -1
        new_flow = p < 0
        if new_flow:
            ins = first_free if first_free >= 0 else s
            meta[M_FREE_N] -= 1
            p = free[meta[M_FREE_N]]
            if htab[ins, 0] == -2:
                meta[M_H_TOMB] -= 1
            meta[M_H_USED] += 1
            meta[M_LIVE] += 1
            htab[ins, 0] = p
            htab[ins, 1] = hs
            pl[p, I_FIRST] = now
            pl[p, I_LAST] = now
            pl[p, I_CLOSED] = -1
            pl[p, I_UID] = meta[M_UID]
            meta[M_UID] += 1
            pu[p, :] = 0
            pu[p, U_AHI], pu[p, U_ALO], pu[p, U_BHI], pu[p, U_BLO] = ah, al, bh, bl
            pi[p, :] = 0
            pi[p, C_VLAN], pi[p, C_PROTO], pi[p, C_PA], pi[p, C_PB] = v, pr, pa, pb
            pi[p, C_IPV] = ipv[i]
            pi[p, C_SLOT] = ins
            pi[p, C_LIVE] = 1
            orig = side
            direction = D_FIRST
            if pr == 6 and (fl & SYN) != 0:
                direction = D_SYN
                if (fl & ACK) != 0:
                    orig = 1 - side
                elif (fl & (FIN | RST)) == 0:
                    pi[p, C_RCAND] = 1
            elif pr == 1 or pr == 58:
                if _ICMP4_REQ[icmp_t] if pr == 1 else _ICMP6_REQ[icmp_t]:
                    pi[p, C_RCAND] = 1  # for ICMP: the initiator was decided by a request
            elif pr == 6 or pr == 17 or pr == 132:
                svc_s = service[ps]
                svc_d = service[pd]
                if svc_s and not svc_d:
                    orig = 1 - side
                    direction = D_SERVICE
                elif svc_d and not svc_s:
                    direction = D_SERVICE
            pi[p, C_ORIG] = orig
            pi[p, C_DIR] = direction
            stats[S_FLOWS_CREATED] += 1
        is_orig = side == pi[p, C_ORIG]
        if (
            icmp_t >= 0
            and not is_orig
            and pi[p, C_RCAND] == 0
            and (_ICMP4_REQ[icmp_t] if pr == 1 else _ICMP6_REQ[icmp_t])
        ):
            pi[p, C_ORIG] = side  # a request decides, even after its reply was seen first
            pi[p, C_RCAND] = 1
            is_orig = True
        _attribute(pl, pu, p, side, 1, wl, il, now, now)
        stats[S_IN_FLOWS] += 1
        stats[S_BYTES_IN_FLOWS] += wl
        if pr == 6:
            pi[p, C_FL0 + side] |= fl
            if have_payload:
                hd = payload[i] > 0
            else:
                hd = il - (20 if ipv[i] == 4 else 40) - 20 > 12
            if hd:
                pi[p, C_DATA0 + side] = 1
            if is_orig and pi[p, C_ORST] == 0:
                nbits = (fl & SYN) // SYN + (fl & FIN) // FIN + (fl & RST) // RST
                if (
                    nbits > 1
                    or (fl & FIN) != 0
                    or ((fl & SYN) != 0 and (fl & ACK) != 0)
                    or (nbits == 0 and (fl & ACK) != 0 and not hd)
                ):
                    pi[p, C_RCAND] = 0
                if (fl & RST) != 0:
                    pi[p, C_ORST] = 1
            if _tcp_update(pi, p, side, is_orig, fl, hd):
                if _close_complete(pi, p, side) and pl[p, I_CLOSED] < 0:
                    pl[p, I_CLOSED] = now
        if is_frag:
            _frag_head(pl, pu, ftab, fu, meta, stats, p, side, v, pr, int(fid_a[i]), shi, slo,
                       dhi, dlo, now)  # fmt: skip
        i += 1
    return DONE, n
