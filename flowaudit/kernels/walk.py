"""Numba kernels of the fast pcap/pcapng reader: the record walks.

Everything here runs over a numpy ``uint8`` view of one chunk of the (decompressed or
memory-mapped) capture. The walks find records and write, per record, the offset of
its frame data, caplen, original length, timestamp (int64 ns) and link type into
reusable scratch arrays; they stop at the first record that does not fit in the chunk
(the caller carries it over to the next chunk). The classic pcap walk decodes each
record's headers as it goes (``_decode.decode_one``, while the bytes are in cache);
after a pcapng walk, ``_decode.decode`` reads the headers of the records it found.
Status codes live in ``flowaudit.kernels.layout``. The kernels are compiled ahead of time by
``flowaudit.kernels.build`` (numba JIT is the fallback).
"""

from __future__ import annotations

import numpy as np

from flowaudit.kernels.decode import decode
from flowaudit.kernels.jit import jit_any as njit
from flowaudit.kernels.layout import (
    BAD_IFACE,
    CORRUPT,
    FULL,
    MAX_RECORD,
    NEED_DATA,
    PY_BLOCK,
)
from flowaudit.kernels.unpack import _u16, _u32

DECODE_RUN = 64  # records walked, then decoded while in cache
PREFETCH = 4096  # bytes ahead of a walk loaded so they are in cache when it gets there


@njit
def _ahead(buf, pf, pos, end, touched):  # type: ignore[no-untyped-def]
    """Load one byte of each cache line from ``pf`` to ``PREFETCH`` bytes past ``pos``;
    return the new ``pf`` and the loads' sum (stored by the caller, so they are kept).

    Each record's header says where the next one starts: the walks are a chain of dependent
    loads, each a cache miss when the capture comes from memory. These loads depend on
    nothing, so their lines arrive in parallel before the walk reaches them (2M-frame
    capture: the reader's CPU time a third lower)."""
    lim = min(pos + PREFETCH, end)
    while pf < lim:
        touched += buf[pf]
        pf += 64
    return pf, touched


@njit
def _walk_pcap_upto(  # type: ignore[no-untyped-def]
    buf, pos, end, big, nsec, link, rec_off, rec_cap, rec_len, rec_ts, rec_link, n, cap_max, state
):
    """Walk classic pcap records in ``buf[pos:end]``, appending from ``n`` up to ``cap_max``.

    Returns (pos, n, status). ``state[0]`` counts out-of-range sub-second fields.
    """
    frac_lim = 1000000000 if nsec else 1000000
    mul = 1 if nsec else 1000
    pf, touched = pos, np.int64(0)
    while True:
        pf, touched = _ahead(buf, pf, pos, end, touched)
        state[2] = touched
        if n >= cap_max:
            return pos, n, FULL
        if end - pos < 16:
            return pos, n, NEED_DATA
        sec = np.int64(_u32(buf, pos, big))
        frac = np.int64(_u32(buf, pos + 4, big))
        caplen = np.int64(_u32(buf, pos + 8, big))
        wire = _u32(buf, pos + 12, big)
        if caplen > MAX_RECORD:
            return pos, n, CORRUPT
        if end - pos - 16 < caplen:
            return pos, n, NEED_DATA
        if frac >= frac_lim:
            state[0] += 1
        rec_off[n] = pos + 16
        rec_cap[n] = caplen
        rec_len[n] = wire
        rec_ts[n] = sec * 1000000000 + frac * mul
        rec_link[n] = link
        n += 1
        pos += 16 + caplen


@njit
def walk_pcap(  # type: ignore[no-untyped-def]
    buf,
    pos,
    end,
    big,
    nsec,
    link,
    rec_off,
    rec_cap,
    rec_len,
    rec_ts,
    rec_link,
    n,
    state,
    vlan,
    kind,
    ipver,
    src_hi,
    src_lo,
    dst_hi,
    dst_lo,
    proto,
    sport,
    dport,
    flags,
    ip_len,
    frag,
    frag_id,
):
    """Walk classic pcap records in ``buf[pos:end]`` from index ``n`` and decode them.

    Records are walked and decoded ``DECODE_RUN`` at a time, so their headers are still
    in cache when ``decode`` reads them. Returns (pos, n, status) like the plain walk.
    """
    cap_max = rec_off.shape[0]
    while True:
        n0 = n
        pos, n, status = _walk_pcap_upto(
            buf,
            pos,
            end,
            big,
            nsec,
            link,
            rec_off,
            rec_cap,
            rec_len,
            rec_ts,
            rec_link,
            n,
            min(n + DECODE_RUN, cap_max),
            state,
        )
        decode(
            buf,
            rec_off,
            rec_cap,
            rec_link,
            n0,
            n,
            vlan,
            kind,
            ipver,
            src_hi,
            src_lo,
            dst_hi,
            dst_lo,
            proto,
            sport,
            dport,
            flags,
            ip_len,
            frag,
            frag_id,
        )
        if status != FULL or n >= cap_max:
            return pos, n, status


@njit
def _tsconv(ts: np.uint64, kind: int, mul: int, shift: int, off_ns: int) -> np.int64:
    if kind == 0:  # decimal resolution: ts * 10**(9-r) or ts // 10**(r-9)
        if mul >= 0:
            return np.int64(ts) * mul + off_ns
        return np.int64(ts // np.uint64(-mul)) + off_ns
    # power-of-two resolution 2**-shift s
    sh = np.uint64(shift)
    whole = ts >> sh
    frac = ts - (whole << sh)
    if shift > 34:  # keep frac * 1e9 below 2**64
        d = np.uint64(shift - 34)
        frac = frac >> d
        sh = np.uint64(34)
    return np.int64(whole) * 1000000000 + np.int64((frac * np.uint64(1000000000)) >> sh) + off_ns


@njit
def walk_pcapng(  # type: ignore[no-untyped-def]
    buf,
    pos,
    end,
    big,
    if_link,
    if_kind,
    if_mul,
    if_shift,
    if_off,
    n_if,
    rec_off,
    rec_cap,
    rec_len,
    rec_ts,
    rec_link,
    n,
    state,
):
    """Walk pcapng blocks of one section in ``buf[pos:end]``, appending packets from ``n``.

    EPB, SPB and OPB become records; SHB and IDB stop the walk (status PY_BLOCK) so
    Python can parse them; all other blocks are skipped by their length.
    ``state[1]`` holds the last timestamp (SPBs carry none). Returns (pos, n, status).
    """
    cap_max = rec_off.shape[0]
    pf, touched = pos, np.int64(0)
    while True:
        pf, touched = _ahead(buf, pf, pos, end, touched)
        state[2] = touched
        if n >= cap_max:
            return pos, n, FULL
        if end - pos < 8:
            return pos, n, NEED_DATA
        btype = _u32(buf, pos, big)
        if btype == 0x0A0D0D0A or btype == 1:
            return pos, n, PY_BLOCK
        blen = np.int64(_u32(buf, pos + 4, big))
        if blen < 12 or blen > MAX_RECORD or (blen & 3) != 0:
            return pos, n, CORRUPT
        if end - pos < blen:
            return pos, n, NEED_DATA
        if btype == 6 or btype == 2:  # EPB / obsolete OPB
            if blen < 32:
                return pos, n, CORRUPT
            if btype == 6:
                iface = np.int64(_u32(buf, pos + 8, big))
            else:
                iface = np.int64(_u16(buf, pos + 8, big))
            if iface >= n_if:
                return pos, n, BAD_IFACE
            ts = (np.uint64(_u32(buf, pos + 12, big)) << np.uint64(32)) | np.uint64(
                _u32(buf, pos + 16, big)
            )
            caplen = np.int64(_u32(buf, pos + 20, big))
            if caplen > blen - 32:
                return pos, n, CORRUPT
            t = _tsconv(ts, if_kind[iface], if_mul[iface], if_shift[iface], if_off[iface])
            state[1] = t
            rec_off[n] = pos + 28
            rec_cap[n] = caplen
            rec_len[n] = _u32(buf, pos + 24, big)
            rec_ts[n] = t
            rec_link[n] = if_link[iface]
            n += 1
        elif btype == 3:  # SPB: interface 0, no timestamp
            if blen < 16:
                return pos, n, CORRUPT
            if n_if < 1:
                return pos, n, BAD_IFACE
            wire = np.int64(_u32(buf, pos + 8, big))
            caplen = min(wire, blen - 16)
            rec_off[n] = pos + 12
            rec_cap[n] = caplen
            rec_len[n] = wire
            rec_ts[n] = state[1]
            rec_link[n] = if_link[0]
            n += 1
        pos += blen
