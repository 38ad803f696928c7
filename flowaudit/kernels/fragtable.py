"""The fragment table of the flow builder: IP fragments → the flow of their datagram (numba).

Responsible for attributing fragments: ``frag_head`` records the flow and side of a
datagram's first fragment (and takes in fragments that arrived before it);
``frag_tail`` counts a later fragment in that flow, or keeps it pending in the table.
The table is open-addressed (``ftab`` int64 columns ``F_*``, ``fu`` uint64 addresses
and hash); ``frag_rehash`` moves live entries into a larger table.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flowaudit.kernels.jit import jit as _jit
from flowaudit.kernels.jit import mix as _mix
from flowaudit.kernels.layout import (
    C_LIVE,
    F_FID,
    F_FIRST,
    F_LAST,
    F_PBY,
    F_PIB,
    F_POOL,
    F_PPK,
    F_PROTO,
    F_SIDE,
    F_STATE,
    F_UID,
    F_VLAN,
    FS_DELETED,
    FS_EMPTY,
    FS_PENDING,
    FS_RESOLVED,
    I_FIRST,
    I_LAST,
    I_UID,
    M_F_TOMB,
    M_F_USED,
    S_BYTES_IN_FLOWS,
    S_FRAG_ATTR,
    S_FRAG_UNATTR,
    S_FRAG_UNATTR_BYTES,
    S_FRAG_UNATTR_IP_BYTES,
    S_IN_FLOWS,
    U_BY0,
    U_IB0,
    U_PK0,
)


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


@_jit
def attribute(pl: Any, pu: Any, p: int, side: int, pk: int, by: int, ib: int, t0: int,
               t1: int) -> None:  # fmt: skip
    pu[p, U_PK0 + side] += np.uint64(pk)
    pu[p, U_BY0 + side] += np.uint64(by)
    pu[p, U_IB0 + side] += np.uint64(ib)
    if t0 < pl[p, I_FIRST]:
        pl[p, I_FIRST] = t0
    if t1 > pl[p, I_LAST]:
        pl[p, I_LAST] = t1


@_jit
def frag_tail(pl: Any, pu: Any, pi: Any, ftab: Any, fu: Any, meta: Any, stats: Any,
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
                attribute(pl, pu, q, ftab[r, F_SIDE], 1, wl, il, now, now)
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
def frag_head(pl: Any, pu: Any, ftab: Any, fu: Any, meta: Any, stats: Any, p: int, side: int,
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
            attribute(pl, pu, p, side, pk, by, ftab[s, F_PIB], ftab[s, F_FIRST], ftab[s, F_LAST])
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
