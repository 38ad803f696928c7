"""Community ID v1 of many tuples in one pass: order, pack, SHA-1, base64 (numba).

Responsible for the per-flow hashing of ``flowaudit.flows.community_id.community_ids``,
which prepares the tuples (ICMP type mapping, ports zeroed for protocols without them) and
wraps the output. Every hash input is at most 40 bytes, so SHA-1 is one 64-byte block per
row (FIPS 180-4: the message, 0x80, zeros, the bit length in the last 8 bytes). Arithmetic
is int64 masked to 32 bits (no unsigned/signed mixing for numba to widen to float).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flowaudit.kernels.jit import jit as _jit

_M32 = 0xFFFFFFFF
_B64 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", np.uint8)


@_jit
def _put(blk: Any, pos: int, v: Any, nbytes: int) -> int:
    """Write the low ``nbytes`` of ``v`` big-endian at ``pos``; return the next position."""
    for k in range(nbytes):
        blk[pos + k] = (v >> np.uint64(8 * (nbytes - 1 - k))) & np.uint64(255)
    return pos + nbytes


@_jit
def _round(a: Any, b: Any, c: Any, d: Any, e: Any, fkw: Any) -> tuple[Any, Any, Any, Any, Any]:
    """One SHA-1 round; ``fkw`` = f(b, c, d) + K + W[t]."""
    tmp = ((((a << 5) | (a >> 27)) & _M32) + e + fkw) & _M32
    return tmp, a, ((b << 30) | (b >> 2)) & _M32, c, d


@_jit
def _sha1_block(blk: Any, w: Any, h: Any) -> None:
    """SHA-1 of the one padded block ``blk`` (64 bytes) into ``h`` (5 words); ``w``: scratch."""
    for t in range(16):
        w[t] = (
            (np.int64(blk[4 * t]) << 24)
            | (np.int64(blk[4 * t + 1]) << 16)
            | (np.int64(blk[4 * t + 2]) << 8)
            | np.int64(blk[4 * t + 3])
        )
    for t in range(16, 80):
        x = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]
        w[t] = ((x << 1) | (x >> 31)) & _M32
    a = np.int64(0x67452301)
    b = np.int64(0xEFCDAB89)
    c = np.int64(0x98BADCFE)
    d = np.int64(0x10325476)
    e = np.int64(0xC3D2E1F0)
    for t in range(20):
        f = (b & c) | ((~b) & d & _M32)
        a, b, c, d, e = _round(a, b, c, d, e, f + 0x5A827999 + w[t])
    for t in range(20, 40):
        a, b, c, d, e = _round(a, b, c, d, e, (b ^ c ^ d) + 0x6ED9EBA1 + w[t])
    for t in range(40, 60):
        f = (b & c) | (b & d) | (c & d)
        a, b, c, d, e = _round(a, b, c, d, e, f + 0x8F1BBCDC + w[t])
    for t in range(60, 80):
        a, b, c, d, e = _round(a, b, c, d, e, (b ^ c ^ d) + 0xCA62C1D6 + w[t])
    h[0] = (0x67452301 + a) & _M32
    h[1] = (0xEFCDAB89 + b) & _M32
    h[2] = (0x98BADCFE + c) & _M32
    h[3] = (0x10325476 + d) & _M32
    h[4] = (0xC3D2E1F0 + e) & _M32


@_jit
def community_ids(
    is4: Any,
    shi: Any,
    slo: Any,
    dhi: Any,
    dlo: Any,
    proto: Any,
    sp: Any,
    dp: Any,
    has_ports: Any,
    one_way: Any,
    seed: int,
    out: Any,
) -> None:
    """Row r of ``out`` (n × 30 bytes) = ``1:`` + base64(SHA-1(seed | a | b | proto | 0 |
    a port | b port)), (a, b) the endpoints ordered (smaller address, then port, first)
    unless the row is ``one_way``; IPv4 rows hash the low 4 bytes of the ``lo`` halves."""
    blk = np.zeros(64, np.uint8)
    w = np.zeros(80, np.int64)
    h = np.zeros(5, np.int64)
    dig = np.zeros(21, np.uint8)
    b64 = _B64
    for r in range(len(shi)):
        s_hi, s_lo, d_hi, d_lo = shi[r], slo[r], dhi[r], dlo[r]
        p_s, p_d = sp[r], dp[r]
        greater = (s_hi > d_hi) or (s_hi == d_hi and (s_lo > d_lo or (s_lo == d_lo and p_s > p_d)))
        if greater and not one_way[r]:
            s_hi, s_lo, d_hi, d_lo, p_s, p_d = d_hi, d_lo, s_hi, s_lo, p_d, p_s
        blk[:] = 0
        pos = _put(blk, 0, np.uint64(seed), 2)
        if is4[r]:
            pos = _put(blk, pos, s_lo, 4)
            pos = _put(blk, pos, d_lo, 4)
        else:
            pos = _put(blk, pos, s_hi, 8)
            pos = _put(blk, pos, s_lo, 8)
            pos = _put(blk, pos, d_hi, 8)
            pos = _put(blk, pos, d_lo, 8)
        blk[pos] = proto[r]
        pos += 2  # and a zero byte
        if has_ports[r]:
            pos = _put(blk, pos, np.uint64(p_s), 2)
            pos = _put(blk, pos, np.uint64(p_d), 2)
        blk[pos] = 0x80
        _put(blk, 62, np.uint64(8 * pos), 2)
        _sha1_block(blk, w, h)
        for k in range(5):
            for j in range(4):
                dig[4 * k + j] = (h[k] >> (24 - 8 * j)) & 255
        o = out[r]
        o[0] = 49  # "1"
        o[1] = 58  # ":"
        for g in range(7):  # 21 bytes (the last one a pad) → 28 characters
            v = (np.int64(dig[3 * g]) << 16) | (np.int64(dig[3 * g + 1]) << 8) | dig[3 * g + 2]
            o[2 + 4 * g] = b64[(v >> 18) & 63]
            o[3 + 4 * g] = b64[(v >> 12) & 63]
            o[4 + 4 * g] = b64[(v >> 6) & 63]
            o[5 + 4 * g] = b64[v & 63]
        o[29] = 61  # "=": 20 bytes encode to 27 characters and one pad
