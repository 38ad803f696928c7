"""Numba kernel of the fast reader: find the inner frame of VXLAN, Geneve and GRE packets.

Responsible for ``find_inner`` only: after ``decode`` has read the outer headers of records
lo..hi-1, it looks at each unfragmented IP packet that is UDP to a tunnel port (the
``ports`` table: 1 VXLAN, 2 Geneve) or GRE (protocol 47, version 0, no routing), checks the
tunnel header and appends one inner record: the scratch row of its outer packet, the offset
captured and declared length of the inner frame, the link type ``decode`` reads it with (Ethernet,
or raw IP for Geneve/GRE carrying IP directly), the tunnel (``TUN_*``) and its id (VNI or
GRE key; -1 when a GRE header has no key). ``decode`` then reads the inner headers from
those records exactly as it reads outer ones. Tunnels inside tunnels are not followed.
"""

from __future__ import annotations

import numpy as np

from flowaudit.kernels.decode import _l2
from flowaudit.kernels.jit import jit_any as njit
from flowaudit.kernels.layout import (
    FRAG_HAS_L4,
    FRAG_IS_FRAGMENT,
    KIND_IP,
    TUN_GENEVE,
    TUN_GRE,
    TUN_VXLAN,
)
from flowaudit.kernels.unpack import _u16, _u32

_ETH = 1  # link types decode reads the inner frame with
_RAW = 101


@njit
def _l4_offset(buf, p, end, link):  # type: ignore[no-untyped-def]
    """Offset of the transport header and the end of the IP packet it declares, or (-1, -1)."""
    res, q, vid, et = _l2(buf, p, end, link)
    if res == 0:  # IPv4
        if end - q < 20:
            return -1, -1
        ihl = np.int64(buf[q] & 15) * 4
        tot = np.int64(_u16(buf, q + 2, True))
        ip_end = q + tot if tot >= ihl else end
        return q + ihl, ip_end
    if res == 1:  # IPv6: hop-by-hop, routing and destination options may come first
        if end - q < 40:
            return -1, -1
        plen = np.int64(_u16(buf, q + 4, True))
        ip_end = q + 40 + plen if plen > 0 else end
        nh = buf[q + 6]
        l4 = q + 40
        steps = 0
        while (nh == 0 or nh == 43 or nh == 60) and steps < 8:
            if end - l4 < 2:
                return -1, -1
            nh = buf[l4]
            l4 += (np.int64(buf[l4 + 1]) + 1) * 8
            steps += 1
        return l4, ip_end
    return -1, -1


@njit
def find_inner(  # type: ignore[no-untyped-def]
    buf,
    rec_off,
    rec_cap,
    rec_link,
    lo,
    hi,
    kind,
    proto,
    dport,
    frag,
    ports,
    in_row,
    in_off,
    in_cap,
    in_len,
    in_link,
    in_tun,
    in_id,
    m,
):
    """Append the inner records of records lo..hi-1 from index ``m``; return (next i, m).

    Stops early (next i < hi) when the inner arrays are full: grow them and call again.
    """
    cap_max = in_row.shape[0]
    for i in range(lo, hi):
        if kind[i] != KIND_IP or (frag[i] & FRAG_IS_FRAGMENT) != 0:  # fragments stay shut
            continue
        pr = proto[i]
        t = 0
        if pr == 17:
            if (frag[i] & FRAG_HAS_L4) == 0:
                continue
            t = ports[dport[i]]
            if t == 0:
                continue
        elif pr == 47:
            t = TUN_GRE
        else:
            continue
        if m >= cap_max:
            return i, m
        p = rec_off[i]
        end = p + rec_cap[i]
        l4, ip_len_end = _l4_offset(buf, p, end, rec_link[i])
        if l4 < 0:
            continue
        ip_end = min(ip_len_end, end)
        tid = np.int64(-1)
        link = _ETH
        if t == TUN_VXLAN:
            h = l4 + 8
            # RFC 7348: flags 0x08 (I: the VNI is valid), or 0x88 with a group policy
            # (VXLAN-GBP); the last byte is reserved (0). Other UDP traffic to the port fails
            if ip_end - h < 8 or (buf[h] != 0x08 and buf[h] != 0x88) or buf[h + 7] != 0:
                continue
            tid = np.int64(_u32(buf, h + 4, True) >> 8)
            q = h + 8
        elif t == TUN_GENEVE:
            h = l4 + 8
            if ip_end - h < 8 or (buf[h] >> 6) != 0:  # version 0
                continue
            et = _u16(buf, h + 2, True)
            if et == 0x0800 or et == 0x86DD:
                link = _RAW
            elif et != 0x6558:
                continue
            tid = np.int64(_u32(buf, h + 4, True) >> 8)
            q = h + 8 + np.int64(buf[h] & 0x3F) * 4
        else:  # GRE (RFC 2784/2890): version 0, no source routing
            if ip_end - l4 < 4:
                continue
            fl = _u16(buf, l4, True)
            if (fl & 7) != 0 or (fl & 0x4000) != 0:
                continue
            et = _u16(buf, l4 + 2, True)
            if et == 0x0800 or et == 0x86DD:
                link = _RAW
            elif et != 0x6558:
                continue
            q = l4 + 4
            if fl & 0x8000:  # checksum + reserved
                q += 4
            if fl & 0x2000:  # key
                if ip_end - q < 4:
                    continue
                tid = np.int64(_u32(buf, q, True))
                q += 4
            if fl & 0x1000:  # sequence number
                q += 4
        if q >= ip_end:
            continue
        in_row[m] = i
        in_off[m] = q
        in_cap[m] = ip_end - q
        in_len[m] = ip_len_end - q
        in_link[m] = link
        in_tun[m] = t
        in_id[m] = tid
        m += 1
    return hi, m
