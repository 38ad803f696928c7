"""Numba kernel of the fast reader: link, IP and L4 headers of each record → packet columns.

Responsible for ``decode`` only: given the record offsets the walks in ``_kernels.py``
found, read the link header (Ethernet with 802.1Q/802.1ad/QinQ tags, 802.1ah PBB, VNTag, Cisco
FabricPath, MPLS, PPPoE,
Linux cooked v1/v2, raw IP, BSD loopback), the IPv4/IPv6 header (IPv6 extension
headers, fragments) and the TCP/UDP/SCTP/ICMP ports and flags into the ``PacketBatch``
columns (see ``packets.py``).
"""

from __future__ import annotations

import numpy as np

from flowaudit.kernels.jit import jit_any as njit
from flowaudit.kernels.layout import (
    FRAG_FIRST,
    FRAG_HAS_L4,
    FRAG_IS_FRAGMENT,
    KIND_IP,
    KIND_MALFORMED,
    KIND_NON_IP,
    KIND_TRUNCATED,
    KIND_UNSUPPORTED,
)
from flowaudit.kernels.unpack import _be64, _u16, _u32

# layer-2 results
_V4 = 0
_V6 = 1
_NONIP = 2
_TRUNC = 3
_UNSUP = 4
_MALF = 5

V4_MAPPED = np.uint64(0xFFFF00000000)


@njit
def _l2(buf, p, end, link):  # type: ignore[no-untyped-def]
    """Link header → (result, l3 offset, outer VLAN id or -1, last ethertype or -1)."""
    vid = -1
    et = -1
    if link == 1:  # Ethernet
        if end - p < 14:
            return _TRUNC, p, vid, et
        et = _u16(buf, p + 12, True)
        q = p + 14
        if et == 0x8903:  # Cisco FabricPath: a 16-byte outer header, then the frame
            if end - p < 30:
                return _TRUNC, p, vid, et
            et = _u16(buf, p + 28, True)
            q = p + 30
    elif link == 113:  # Linux cooked v1
        if end - p < 16:
            return _TRUNC, p, vid, et
        et = _u16(buf, p + 14, True)
        q = p + 16
    elif link == 276:  # Linux cooked v2
        if end - p < 20:
            return _TRUNC, p, vid, et
        et = _u16(buf, p, True)
        q = p + 20
    elif link == 0 or link == 108:  # BSD loopback: AF_ value, host / network order
        if end - p < 4:
            return _TRUNC, p, vid, et
        if link == 108 or (buf[p] == 0 and buf[p + 1] == 0):
            fam = _u32(buf, p, True)
        else:
            fam = _u32(buf, p, False)
        q = p + 4
        if fam == 2:
            return _V4, q, vid, et
        if fam == 10 or fam == 23 or fam == 24 or fam == 28 or fam == 30:
            return _V6, q, vid, et
        return _NONIP, q, vid, et
    elif link == 101 or link == 228 or link == 229 or link == 12 or link == 14:
        if end - p < 1:
            return _TRUNC, p, vid, et
        v = buf[p] >> 4
        if v == 4:
            return _V4, p, vid, et
        if v == 6:
            return _V6, p, vid, et
        return _MALF, p, vid, et
    else:
        return _UNSUP, p, vid, et
    # 802.1Q / 802.1ad / legacy QinQ tags (outermost id kept), 802.1ah PBB (I-TAG, then
    # the customer's MAC addresses and ethertype) and Cisco VNTag, in any nesting
    while True:
        if et == 0x8100 or et == 0x88A8 or et == 0x9100 or et == 0x9200:
            if end - q < 4:
                return _TRUNC, q, vid, et
            if vid < 0:
                vid = _u16(buf, q, True) & 0xFFF
            et = _u16(buf, q + 2, True)
            q += 4
        elif et == 0x88E7:  # PBB: I-TAG (4) + C-DA (6) + C-SA (6) + ethertype (2)
            if end - q < 18:
                return _TRUNC, q, vid, et
            et = _u16(buf, q + 16, True)
            q += 18
        elif et == 0x8926:  # VNTag: tag (4) + ethertype (2)
            if end - q < 6:
                return _TRUNC, q, vid, et
            et = _u16(buf, q + 4, True)
            q += 6
        else:
            break
    if et == 0x8847 or et == 0x8848:  # MPLS: skip the label stack, IP by version nibble
        while True:
            if end - q < 4:
                return _TRUNC, q, vid, et
            bos = buf[q + 2] & 1
            q += 4
            if bos:
                break
        if end - q < 1:
            return _TRUNC, q, vid, et
        v = buf[q] >> 4
        if v == 4:
            return _V4, q, vid, et
        if v == 6:
            return _V6, q, vid, et
        return _NONIP, q, vid, et
    if et == 0x8864:  # PPPoE session: 6-byte header + PPP protocol
        if end - q < 8:
            return _TRUNC, q, vid, et
        ppp = _u16(buf, q + 6, True)
        q += 8
        if ppp == 0x21:
            return _V4, q, vid, et
        if ppp == 0x57:
            return _V6, q, vid, et
        return _NONIP, q, vid, et
    if et == 0x0800:
        return _V4, q, vid, et
    if et == 0x86DD:
        return _V6, q, vid, et
    return _NONIP, q, vid, et


@njit
def decode(  # type: ignore[no-untyped-def]
    buf,
    rec_off,
    rec_cap,
    rec_link,
    lo,
    hi,
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
    """Decode link/IP/L4 headers of records lo..hi-1 into the output columns."""
    for i in range(lo, hi):
        p = rec_off[i]
        end = p + rec_cap[i]
        vlan[i] = -1
        ipver[i] = 0
        src_hi[i] = 0
        src_lo[i] = 0
        dst_hi[i] = 0
        dst_lo[i] = 0
        proto[i] = 0
        sport[i] = 0
        dport[i] = 0
        flags[i] = 0
        ip_len[i] = 0
        frag[i] = 0
        frag_id[i] = 0
        res, q, vid, et = _l2(buf, p, end, rec_link[i])
        vlan[i] = vid
        if res == _TRUNC:
            kind[i] = KIND_TRUNCATED
            continue
        if res == _UNSUP:
            kind[i] = KIND_UNSUPPORTED
            continue
        if res == _NONIP:
            kind[i] = KIND_NON_IP
            sport[i] = et if et >= 0 else 0  # the ethertype, for the ingest summary
            continue
        if res == _MALF:
            kind[i] = KIND_MALFORMED
            continue
        fr = 0
        nonfirst = False
        if res == _V4:
            ipver[i] = 4
            if end - q < 20:
                kind[i] = KIND_TRUNCATED
                continue
            vh = buf[q]
            ihl = np.int64(vh & 15) * 4
            if (vh >> 4) != 4 or ihl < 20:
                kind[i] = KIND_MALFORMED
                continue
            tot = np.int64(_u16(buf, q + 2, True))
            ip_len[i] = tot
            frag_id[i] = _u16(buf, q + 4, True)
            ff = _u16(buf, q + 6, True)
            off = ff & 0x1FFF
            pr = buf[q + 9]
            proto[i] = pr
            src_lo[i] = V4_MAPPED | np.uint64(_u32(buf, q + 12, True))
            dst_lo[i] = V4_MAPPED | np.uint64(_u32(buf, q + 16, True))
            if off != 0 or (ff & 0x2000) != 0:
                fr = FRAG_IS_FRAGMENT
                if off == 0:
                    fr |= FRAG_FIRST
                else:
                    nonfirst = True
            frag[i] = fr
            if end - q < ihl:
                kind[i] = KIND_TRUNCATED
                continue
            l4 = q + ihl
            ip_end = q + tot if tot >= ihl else end
        else:
            ipver[i] = 6
            if end - q < 40:
                kind[i] = KIND_TRUNCATED
                continue
            if (buf[q] >> 4) != 6:
                kind[i] = KIND_MALFORMED
                continue
            plen = np.int64(_u16(buf, q + 4, True))
            ip_len[i] = 40 + plen
            src_hi[i] = _be64(buf, q + 8)
            src_lo[i] = _be64(buf, q + 16)
            dst_hi[i] = _be64(buf, q + 24)
            dst_lo[i] = _be64(buf, q + 32)
            ip_end = q + 40 + plen if plen > 0 else end
            nh = buf[q + 6]
            l4 = q + 40
            cut = False
            steps = 0
            while (nh == 0 or nh == 43 or nh == 60 or nh == 44 or nh == 51) and steps < 32:
                steps += 1
                if nh == 44:
                    if end - l4 < 8:
                        cut = True
                        break
                    fo = _u16(buf, l4 + 2, True)
                    frag_id[i] = _u32(buf, l4 + 4, True)
                    if (fo >> 3) != 0 or (fo & 1) != 0:
                        fr = FRAG_IS_FRAGMENT
                        if (fo >> 3) == 0:
                            fr |= FRAG_FIRST
                        else:
                            nonfirst = True
                    nh = buf[l4]
                    l4 += 8
                    if nonfirst:
                        break
                    continue
                if end - l4 < 2:
                    cut = True
                    break
                if nh == 51:
                    hl = (np.int64(buf[l4 + 1]) + 2) * 4
                else:
                    hl = (np.int64(buf[l4 + 1]) + 1) * 8
                if end - l4 < hl:
                    cut = True
                    break
                nh = buf[l4]
                l4 += hl
            proto[i] = nh
            frag[i] = fr
            if cut:
                kind[i] = KIND_TRUNCATED
                continue
            pr = nh
        kind[i] = KIND_IP
        if nonfirst:
            continue
        if pr == 6:
            need = 20
        elif pr == 17 or pr == 1 or pr == 58:
            need = 8
        elif pr == 132:  # SCTP common header: ports, verification tag, checksum
            need = 12
        else:
            continue
        if end - l4 < need:
            if ip_end - l4 < need and fr != 0:
                continue  # a first fragment too small to hold the L4 header
            kind[i] = KIND_TRUNCATED
            continue
        if ip_end - l4 < need:
            if fr == 0:
                kind[i] = KIND_MALFORMED
            continue
        if pr == 6 or pr == 17 or pr == 132:
            sport[i] = _u16(buf, l4, True)
            dport[i] = _u16(buf, l4 + 2, True)
            if pr == 6:
                flags[i] = buf[l4 + 13]
        else:
            sport[i] = buf[l4]
            dport[i] = buf[l4 + 1]
        frag[i] = fr | FRAG_HAS_L4
