"""Where the IP header starts in one frame, by link type: the plain-Python decoders' share.

The fast reader decodes link layers in its compiled kernels; the few Python paths that
look inside single frames (NetFlow export datagrams in ``_nf_pcap``, the payload peek of
``enrich``) use ``ip_offset``. Link types: Ethernet (any stack of 802.1Q/802.1ad tags,
PPPoE session), BSD loopback (NULL, LOOP), raw IP, Linux SLL and SLL2.
"""

from __future__ import annotations

ETH_TAGS = (0x8100, 0x88A8, 0x9100)
PPPOE_SESSION = 0x8864
PPP_IP = {0x0021: 4, 0x0057: 6}
ETHERTYPE_IP = {0x0800: 4, 0x86DD: 6}
RAW_IP = (101, 12, 14, 228, 229)
LOOPBACK = (0, 108)  # NULL (host byte order family), LOOP (network byte order)


def ip_offset(link: int, frame: bytes) -> tuple[int, int] | None:
    """(IP version, offset of the IP header) of a frame of link type ``link``, or None."""
    if link == 1:  # Ethernet
        p, et = 12, 0
        while p + 2 <= len(frame):
            et = int.from_bytes(frame[p : p + 2], "big")
            if et not in ETH_TAGS:
                break
            p += 4
        p += 2
        if et == PPPOE_SESSION and len(frame) >= p + 8:  # PPP protocol after 6 bytes
            v = PPP_IP.get(int.from_bytes(frame[p + 6 : p + 8], "big"))
            return (v, p + 8) if v else None
        v = ETHERTYPE_IP.get(et)
        return (v, p) if v else None
    if link in LOOPBACK:
        if len(frame) < 4:
            return None
        fam = max(int.from_bytes(frame[:4], "little"), int.from_bytes(frame[:4], "big"))
        return (4, 4) if fam == 2 else (6, 4) if fam in (24, 28, 30) else None
    if link in RAW_IP:
        v = frame[0] >> 4 if frame else 0
        return (v, 0) if v in (4, 6) else None
    if link == 113 and len(frame) >= 16:  # Linux SLL
        v = ETHERTYPE_IP.get(int.from_bytes(frame[14:16], "big"))
        return (v, 16) if v else None
    if link == 276 and len(frame) >= 20:  # Linux SLL2
        v = ETHERTYPE_IP.get(int.from_bytes(frame[0:2], "big"))
        return (v, 20) if v else None
    return None
