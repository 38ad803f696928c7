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

from typing import Any

import numpy as np

from flowaudit.kernels.fragtable import attribute as _attribute
from flowaudit.kernels.fragtable import frag_head as _frag_head
from flowaudit.kernels.fragtable import frag_tail as _frag_tail
from flowaudit.kernels.icmp import (
    ICMP4_PAIR_TABLE,
    ICMP4_REQUESTS,
    ICMP6_PAIR_TABLE,
    ICMP6_REQUESTS,
)
from flowaudit.kernels.jit import jit as _jit
from flowaudit.kernels.jit import mix as _mix
from flowaudit.kernels.layout import (
    ACK,
    C_DATA0,
    C_DIR,
    C_FL0,
    C_IPV,
    C_LIVE,
    C_ORIG,
    C_ORST,
    C_PA,
    C_PB,
    C_PROTO,
    C_RCAND,
    C_SLOT,
    C_VLAN,
    D_FIRST,
    D_SERVICE,
    D_SYN,
    DONE,
    F_LAST,
    F_PBY,
    F_PIB,
    F_PPK,
    F_STATE,
    FIN,
    FRAG_FIRST,
    FRAG_HAS_L4,
    FRAG_IS_FRAGMENT,
    FS_DELETED,
    FS_PENDING,
    FS_RESOLVED,
    G_FRAG,
    G_ICMP,
    G_LINGER,
    G_OTHER,
    G_SWEEP,
    G_TCP,
    G_UDP,
    I_CLOSED,
    I_FIRST,
    I_LAST,
    I_UID,
    KIND_IP,
    KIND_NON_IP,
    M_ENDED_N,
    M_F_TOMB,
    M_F_USED,
    M_FREE_N,
    M_H_TOMB,
    M_H_USED,
    M_LIVE,
    M_NEXT_SWEEP,
    M_UID,
    NEED_FRAG,
    NEED_HASH,
    NEED_POOL,
    NO_SWEEP,
    RST,
    S_BYTES_IN_FLOWS,
    S_FLOWS_CREATED,
    S_FRAG_UNATTR,
    S_FRAG_UNATTR_BYTES,
    S_FRAG_UNATTR_IP_BYTES,
    S_IN_FLOWS,
    S_IP,
    S_NO_PORTS,
    S_NON_IP,
    S_NOT_DECODED,
    S_PACKETS,
    S_SPLIT_IDLE,
    SYN,
    U_AHI,
    U_ALO,
    U_BHI,
    U_BLO,
)
from flowaudit.kernels.tcpstate import close_complete as _close_complete
from flowaudit.kernels.tcpstate import tcp_update as _tcp_update

# ICMP counterpart types (-1: one-way) and request types (their sender is the initiator)
_ICMP4_CP = ICMP4_PAIR_TABLE
_ICMP6_CP = ICMP6_PAIR_TABLE
_ICMP4_REQ = np.zeros(256, dtype=np.bool_)
_ICMP4_REQ[sorted(ICMP4_REQUESTS)] = True
_ICMP6_REQ = np.zeros(256, dtype=np.bool_)
_ICMP6_REQ[sorted(ICMP6_REQUESTS)] = True


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
def walk(ts: Any, wire: Any, vlan: Any, kind: Any, ipv: Any, shi_a: Any, slo_a: Any,
         dhi_a: Any, dlo_a: Any, proto_a: Any, sport: Any, dport: Any, flags: Any,
         iplen: Any, frag: Any, fid_a: Any, payload: Any, have_payload: bool, start: int,
         cfg: Any, stats: Any, meta: Any, htab: Any, pl: Any, pu: Any, pi: Any,
         free: Any, ended: Any, ftab: Any, fu: Any, service: Any,
         uid_out: Any) -> tuple[int, int]:  # fmt: skip
    """Walk packets ``start..`` of one batch into the flow table (see module docstring).

    ``uid_out``, when not empty, receives the uid of the flow a packet creates (other
    packets keep what the caller put there): the inner-flow builder keeps each flow's first
    packet's attributes by it."""
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
                svc_s = service[ps]  # port levels (flows/ports.py): higher = server
                svc_d = service[pd]
                if svc_s > svc_d:
                    orig = 1 - side
                    direction = D_SERVICE
                elif svc_d > svc_s:
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
        if new_flow and uid_out.shape[0] > 0:
            uid_out[i] = pl[p, I_UID]
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
