"""Zeek's TCP endpoint state machine and ``conn_state``, over the flow pool (numba).

Responsible for the TCP side of a flow's state only: per-packet endpoint transitions
(``tcp_update``), Zeek's ConnectionClosed rule (``close_complete``) and the final
``conn_state`` code of ended flows (``conn_states``). Rows are pool ids of
``flowaudit.kernels.flowtable``; columns are the ``C_*``/``U_*`` indices of ``_layout``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flowaudit.kernels.jit import jit as _jit
from flowaudit.kernels.layout import (
    ACK,
    C_DATA0,
    C_DC0,
    C_ORIG,
    C_PROTO,
    C_PV0,
    C_RCAND,
    C_ST0,
    FIN,
    RST,
    SYN,
    T_CLOSED,
    T_ESTABLISHED,
    T_INACTIVE,
    T_PARTIAL,
    T_RESET,
    T_SYN_ACK_SENT,
    T_SYN_SENT,
    U_PK0,
    Z_OTH,
    Z_REJ,
    Z_RSTO,
    Z_RSTOS0,
    Z_RSTR,
    Z_RSTRH,
    Z_S0,
    Z_S1,
    Z_S2,
    Z_S3,
    Z_SF,
    Z_SH,
    Z_SHR,
)


@_jit
def _set_state(pi: Any, p: int, side: int, new: int) -> None:
    cur = pi[p, C_ST0 + side]
    if cur != new:
        pi[p, C_PV0 + side] = cur
        pi[p, C_ST0 + side] = new


@_jit
def tcp_update(pi: Any, p: int, side: int, is_orig: bool, fl: int, has_data: bool) -> bool:
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
def close_complete(pi: Any, p: int, side: int) -> bool:
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
