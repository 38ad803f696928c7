"""Frame level of the VLAN 111 generator: hosts, the numba frame kernel, the payload pool.

A *packet matrix* (int64, one row per frame, columns ``TS`` … ``FLEN``) says what each frame is;
``write_frames`` turns it into pcap records (record header, Ethernet, 802.1Q, ARP or IPv4/IPv6,
TCP/UDP/ICMP/ICMPv6 with valid checksums) in one pass; a row with a VNI is wrapped in VXLAN on
the way (outer Ethernet/802.1Q/IPv4/UDP 8472/VXLAN, then the frame). Host ``i`` is row ``i`` of
``H_IP4``/``H_IP6``/``H_MAC``/``H_TTL``; payload bytes come from ``POOL`` (random bytes, then
real DNS, mDNS, MLDv2 and ND bodies at the offsets in ``TMPL``).
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
ARP, TCP4, UDP4, ICMP4, UDP6, ICMP6, MLD6, VRRP4 = range(8)
PROTO = {TCP4: 6, UDP4: 17, ICMP4: 1, UDP6: 17, ICMP6: 58, MLD6: 58, VRRP4: 112}
IPV6_LAYOUTS = (UDP6, ICMP6, MLD6)
FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16

# ---------------------------------------------------------------- hosts ----------------
_GW_MAC = "00:1c:73:00:00:01"  # the VLAN 111 gateway: off-subnet hosts appear behind it
_HOSTS: list[tuple[str, str, str, int]] = [  # name, address, L2 address on VLAN 111, ttl
    ("pma", "10.25.232.155", "52:54:00:e8:9b:01", 64),  # appliance, Palette VIP
    ("pma_ssh", "10.25.232.252", "52:54:00:e8:9b:01", 64),  # appliance SSH address
    ("n4", "10.25.233.4", "3c:ec:ef:10:e9:04", 64),
    ("n5", "10.25.233.5", "3c:ec:ef:10:e9:05", 64),
    ("n6", "10.25.233.6", "3c:ec:ef:10:e9:06", 64),
    ("adm0", "10.25.100.10", _GW_MAC, 127),  # admin workstations: site-supplied
    ("adm1", "10.25.100.11", _GW_MAC, 127),
    ("unk77", "10.25.233.77", "00:0c:29:4d:77:77", 64),  # unknown host
    ("srv20", "10.25.233.20", "00:50:56:a1:20:20", 64),  # host outside the matrix
    ("gw", "10.25.233.1", _GW_MAC, 255),
    ("dns8", "8.8.8.8", _GW_MAC, 117),
    ("dns1", "1.1.1.1", _GW_MAC, 57),
    ("dark99", "10.25.233.99", "00:00:00:00:00:00", 64),  # never answers ARP
]


MAX_INTERNET = 2000
_DAY_HOSTS: list[tuple[str, str, str, int]] = [
    ("gw2", "10.25.233.2", "00:1c:73:00:00:02", 255),  # the VRRP gateway pair
    ("gw3", "10.25.233.3", "00:1c:73:00:00:03", 255),
    ("vrrp", "224.0.0.18", "01:00:5e:00:00:12", 255),
    ("dhcp0", "0.0.0.0", "3c:ec:ef:10:e9:07", 64),  # a DHCP client before its lease
    ("bcast", "255.255.255.255", "ff:ff:ff:ff:ff:ff", 64),
    ("dns_site", "10.25.1.53", _GW_MAC, 62),  # the site's DNS and NTP servers (routed)
    ("ntp_site", "10.25.1.123", _GW_MAC, 62),
    ("allnodes", "ff02::1", "33:33:00:00:00:01", 255),
]

# day-on-the-lan's Cilium pods: Cilium's default cluster pool gives each node a /24 of
# 10.0.0.0/8 (n4 10.0.0.0/24, n5 10.0.1.0/24, n6 10.0.2.0/24); their traffic between nodes
# rides the VXLAN overlay (udp/8472, VNI ``VXLAN_VNI``). name, address, node, eth0 MAC
VXLAN_PORT, VXLAN_VNI = 8472, 2
PODS: list[tuple[str, str, str, str]] = [
    ("coredns-a", "10.0.0.148", "n4", "0e:4c:1d:00:00:94"),
    ("frontend-a", "10.0.0.23", "n4", "0e:4c:1d:00:00:17"),
    ("api-a", "10.0.0.87", "n4", "0e:4c:1d:00:00:57"),
    ("postgres-0", "10.0.1.52", "n5", "0e:4c:1d:00:01:34"),
    ("frontend-b", "10.0.1.199", "n5", "0e:4c:1d:00:01:c7"),
    ("worker-b", "10.0.1.31", "n5", "0e:4c:1d:00:01:1f"),
    ("coredns-b", "10.0.2.61", "n6", "0e:4c:1d:00:02:3d"),
    ("api-b", "10.0.2.230", "n6", "0e:4c:1d:00:02:e6"),
    ("worker-c", "10.0.2.14", "n6", "0e:4c:1d:00:02:0e"),
]
POD_NODE = {name: node for name, _, node, _ in PODS}


def internet_address(i: int) -> str:
    """The i-th internet address the nodes pull images from (deterministic, global)."""
    return f"35.{201 + i // 60000}.{i // 250 % 240}.{i % 250 + 1}"


def _eui64(m: bytes) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(
        b"\xfe\x80" + bytes(6) + bytes([m[0] ^ 2, *m[1:3], 0xFF, 0xFE, *m[3:]])
    )


def _host_table() -> tuple[dict[str, int], list[str], I64, Any, Any, I64]:
    names: list[str] = []
    ips: list[str] = []
    macs: list[bytes] = []
    ttls: list[int] = []

    def add(name: str, ip: str, mac: bytes, ttl: int) -> None:
        names.append(name)
        ips.append(ip)
        macs.append(mac)
        ttls.append(ttl)

    for n, ip, mac, ttl in _HOSTS:
        add(n, ip, bytes.fromhex(mac.replace(":", "")), ttl)
    for n in ("pma", "n4", "n5", "n6"):  # link-local (EUI-64) twins and solicited-node groups
        m = macs[names.index(n)]
        ll = ipaddress.IPv6Address(
            b"\xfe\x80" + bytes(6) + bytes([m[0] ^ 2, *m[1:3], 0xFF, 0xFE, *m[3:]])
        )
        add(n + "_ll", str(ll), m, 255)
        snm = ipaddress.IPv6Address(
            ipaddress.IPv6Address("ff02::1:ff00:0").packed[:13] + ll.packed[13:]
        )
        add(n + "_snm", str(snm), b"\x33\x33" + snm.packed[12:], 255)
    for n, ip in (("mld", "ff02::16"), ("mdns", "ff02::fb")):
        add(n, ip, b"\x33\x33" + ipaddress.IPv6Address(ip).packed[12:], 255)
    # day-on-the-lan hosts, appended last: a host's index is part of the frames' bytes
    gw = bytes.fromhex(_GW_MAC.replace(":", ""))
    for n, ip, mac, ttl in _DAY_HOSTS:
        add(n, ip, bytes.fromhex(mac.replace(":", "")), ttl)
    add("gw_ll", str(_eui64(gw)), gw, 255)
    for i in range(MAX_INTERNET):  # internet addresses behind the gateway
        add(f"inet{i}", internet_address(i), gw, 50 + i % 10)
    for n, ip, _, mac in PODS:  # after the internet addresses: the indices above stay
        add(n, ip, bytes.fromhex(mac.replace(":", "")), 64)
    v6 = [":" in i for i in ips]
    ip4 = np.array(
        [0 if v else int(ipaddress.ip_address(i)) for i, v in zip(ips, v6, strict=True)], np.int64
    )
    ip6 = np.array(
        [
            list(ipaddress.ip_address(i).packed) if v else [0] * 16
            for i, v in zip(ips, v6, strict=True)
        ],
        np.uint8,
    )
    mac_a = np.array([list(m) for m in macs], np.uint8)
    return {n: i for i, n in enumerate(names)}, ips, ip4, ip6, mac_a, np.array(ttls, np.int64)


H, IPS, H_IP4, H_IP6, H_MAC, H_TTL = _host_table()
NODES, ADMINS = ("n4", "n5", "n6"), ("adm0", "adm1")

# --------------------------------------------------------- frame kernel ------------------
# packet matrix columns; OSRC..VNI: the outer node pair, outer UDP source port and VNI of a
# frame carried in VXLAN (VNI -1: a plain frame, the other three unused)
TS, LAY, VLAN, SRC, DST, SP, DP, FL, SEQ, ACKN, PLEN, POFF, IPID, FLEN = range(14)
OSRC, ODST, OSP, VNI = range(14, 18)
NCOL = 18
VXLAN_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + the inner Ethernet header 14


@numba.njit(cache=True)
def _put(buf: Any, p: int, v: int, n: int) -> None:
    for k in range(n):
        buf[p + k] = (v >> (8 * (n - 1 - k))) & 0xFF


@numba.njit(cache=True)
def _sum16(buf: Any, a: int, b: int) -> int:
    s: Any = 0
    i = a
    while i + 1 < b:
        s += (np.int64(buf[i]) << 8) | np.int64(buf[i + 1])
        i += 2
    if i < b:
        s += np.int64(buf[i]) << 8
    return s  # type: ignore[no-any-return]


@numba.njit(cache=True)
def _fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


@numba.njit(cache=True)
def write_frames(
    buf: Any, off: Any, m: Any, ip4: Any, ip6: Any, mac: Any, ttl: Any, pool: Any, psum: Any
) -> None:  # noqa: C901
    for i in range(m.shape[0]):
        o, ts, lay, vl, s, d, flen = off[i], m[i, 0], m[i, 1], m[i, 2], m[i, 3], m[i, 4], m[i, 13]
        for k in range(4):  # pcap record header, little-endian
            buf[o + k] = ((ts // 1000000) >> (8 * k)) & 0xFF
            buf[o + 4 + k] = ((ts % 1000000) >> (8 * k)) & 0xFF
            buf[o + 8 + k] = (flen >> (8 * k)) & 0xFF
            buf[o + 12 + k] = (flen >> (8 * k)) & 0xFF
        p = o + 16
        if m[i, 17] >= 0:  # VXLAN: outer Ethernet / 802.1Q / IPv4 / UDP / VXLAN, then the frame
            os_, od = m[i, 14], m[i, 15]
            for k in range(6):
                buf[p + k] = mac[od, k]
                buf[p + 6 + k] = mac[os_, k]
            p += 12
            if vl >= 0:
                _put(buf, p, 0x8100, 2)
                _put(buf, p + 2, vl, 2)
                p += 4
            _put(buf, p, 0x0800, 2)
            ip = p + 2
            olen = flen - (ip - o - 16)
            buf[ip] = 0x45
            _put(buf, ip + 2, olen, 2)
            _put(buf, ip + 4, (m[i, 12] * 31 + 7) & 0xFFFF, 2)  # DF unset: Linux's default
            buf[ip + 8] = ttl[os_]
            buf[ip + 9] = 17
            _put(buf, ip + 12, ip4[os_], 4)
            _put(buf, ip + 16, ip4[od], 4)
            _put(buf, ip + 10, _fold(_sum16(buf, ip, ip + 20)), 2)
            _put(buf, ip + 20, (m[i, 16] << 16) | VXLAN_PORT, 4)
            _put(buf, ip + 24, olen - 20, 2)  # UDP checksum 0: Linux VXLAN over IPv4
            buf[ip + 28] = 0x08  # the I flag: the VNI is valid
            _put(buf, ip + 32, m[i, 17] << 8, 4)
            p = ip + 36
            vl = -1  # the inner frame: untagged
        bcast = lay == 0 and m[i, 5] == 1
        for k in range(6):
            buf[p + k] = 0xFF if bcast else mac[d, k]
            buf[p + 6 + k] = mac[s, k]
        p += 12
        if vl >= 0:
            _put(buf, p, 0x8100, 2)
            _put(buf, p + 2, vl, 2)
            p += 4
        if lay == 0:  # ARP request (op 1, broadcast) or reply (op 2)
            _put(buf, p, 0x08060001, 4)
            _put(buf, p + 4, 0x08000604, 4)
            _put(buf, p + 8, m[i, 5], 2)
            for k in range(6):
                buf[p + 10 + k] = mac[s, k]
                buf[p + 20 + k] = 0 if m[i, 5] == 1 else mac[d, k]
            _put(buf, p + 16, ip4[s], 4)
            _put(buf, p + 26, ip4[d], 4)
            continue
        plen, fl = m[i, 10], m[i, 7]
        if lay == 1:
            l4h = 20 if fl & 4 else (40 if fl & 2 else 32)
        elif lay == 5:
            l4h = 4
        elif lay == 6:
            l4h = 12
        elif lay == 7:
            l4h = 0
        else:
            l4h = 8
        if lay <= 3 or lay == 7:
            proto = 6 if lay == 1 else (17 if lay == 2 else (112 if lay == 7 else 1))
            _put(buf, p, 0x0800, 2)
            ip = p + 2
            l4 = ip + 20
            buf[ip] = 0x45
            _put(buf, ip + 2, 20 + l4h + plen, 2)
            _put(buf, ip + 4, m[i, 12], 2)
            buf[ip + 6] = 0x40
            buf[ip + 8] = ttl[s]
            buf[ip + 9] = proto
            _put(buf, ip + 12, ip4[s], 4)
            _put(buf, ip + 16, ip4[d], 4)
            _put(buf, ip + 10, _fold(_sum16(buf, ip, ip + 20)), 2)
            pseudo = _sum16(buf, ip + 12, ip + 20) + proto + l4h + plen
        else:
            proto = 17 if lay == 4 else 58
            _put(buf, p, 0x86DD, 2)
            ip = p + 2
            l4 = ip + 40
            buf[ip] = 0x60
            _put(buf, ip + 4, l4h + plen, 2)
            buf[ip + 6] = proto if lay != 6 else 0
            buf[ip + 7] = 1 if lay == 6 else 255
            for k in range(16):
                buf[ip + 8 + k] = ip6[s, k]
                buf[ip + 24 + k] = ip6[d, k]
            if lay == 6:  # hop-by-hop header with router alert (MLD)
                _put(buf, l4, 0x3A000502, 4)
                _put(buf, l4 + 4, 0x00000100, 4)
                l4 += 8
                l4h -= 8
            pseudo = _sum16(buf, ip + 8, ip + 40) + proto + l4h + plen
        q = l4 + l4h
        po = m[i, 11]
        buf[q : q + plen] = pool[po : po + plen]
        h = plen // 2  # payload words from the pool's stride-2 prefix sums (headers are even)
        pay = (psum[po + 2 * h - 2] - (psum[po - 2] if po >= 2 else 0)) if h else 0
        if plen & 1:
            pay += np.int64(pool[po + plen - 1]) << 8
        if lay == 1:
            _put(buf, l4, (m[i, 5] << 16) | m[i, 6], 4)
            _put(buf, l4 + 4, m[i, 8], 4)
            _put(buf, l4 + 8, m[i, 9], 4)
            buf[l4 + 12] = (l4h // 4) << 4
            buf[l4 + 13] = fl
            _put(buf, l4 + 14, 64240 if fl & 2 else 502, 2)
            tsv = (ts // 1000 + s * 1000003) & 0xFFFFFFFF
            tse = (ts // 1000 + d * 1000003 - 1) & 0xFFFFFFFF if fl & 16 else 0
            if l4h == 40:
                _put(buf, l4 + 20, 0x020405B4, 4)
                _put(buf, l4 + 24, 0x0402080A, 4)
                _put(buf, l4 + 28, tsv, 4)
                _put(buf, l4 + 32, tse, 4)
                _put(buf, l4 + 36, 0x01030307, 4)
            elif l4h == 32:
                _put(buf, l4 + 20, 0x0101080A, 4)
                _put(buf, l4 + 24, tsv, 4)
                _put(buf, l4 + 28, tse, 4)
            _put(buf, l4 + 16, _fold(pseudo + _sum16(buf, l4, q) + pay), 2)
        elif lay == 2 or lay == 4:
            _put(buf, l4, (m[i, 5] << 16) | m[i, 6], 4)
            _put(buf, l4 + 4, 8 + plen, 2)
            c = _fold(pseudo + _sum16(buf, l4, q) + pay)
            _put(buf, l4 + 6, c if c else 0xFFFF, 2)
        elif lay == 7:  # VRRP: the template carries its own checksum
            pass
        else:  # ICMP: type in the flags column, code 0; echo id/seq in the seq column
            buf[l4] = fl
            if lay == 3:
                _put(buf, l4 + 4, m[i, 8], 4)
                _put(buf, l4 + 2, _fold(_sum16(buf, l4, q) + pay), 2)
            else:
                _put(buf, l4 + 2, _fold(pseudo + _sum16(buf, l4, q) + pay), 2)


def frame_lengths(m: I64) -> tuple[I64, I64]:
    """(on-wire frame length, IP-layer length) for each row of a packet matrix; a VXLAN
    frame's IP-layer length is the inner packet's."""
    lay, fl = m[:, LAY], m[:, FL]
    tcph = np.where(fl & RST, 20, np.where(fl & SYN, 40, 32))
    l4h = np.select([lay == TCP4, lay == ICMP6, lay == MLD6, lay == VRRP4], [tcph, 4, 12, 0], 8)
    iplen = np.where(np.isin(lay, IPV6_LAYOUTS), 40, 20) + l4h + m[:, PLEN]
    iplen = np.where(lay == ARP, 0, iplen)
    l2 = 14 + 4 * (m[:, VLAN] >= 0) + np.where(lay == ARP, 28, iplen)
    l2 = np.where(m[:, VNI] >= 0, l2 + VXLAN_OVERHEAD, np.maximum(l2, 60))  # inner: not padded
    return l2.astype(np.int64), iplen.astype(np.int64)


# --------------------------------------------------------- payload pool -------------------
def _dns_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


TLS_SNI = "objectstore.backup.internal"
TLS_HELLO_LENGTHS = range(150, 601)  # the request sizes the planner draws for a first message


def client_hello(n: int, sni: str = TLS_SNI) -> bytes:
    """A TLS 1.2 record holding a ClientHello with ``sni``, padded (RFC 7685) to ``n`` bytes."""
    name = sni.encode()
    sni_ext = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    suites = struct.pack("!HHHHH", 8, 0x1301, 0x1302, 0xC02F, 0xC030)
    body = b"\x03\x03" + bytes(range(32)) + b"\x00" + suites + b"\x01\x00"
    pad = n - (5 + 4 + len(body) + 2 + len(sni_ext) + 4)
    if pad < 0:
        raise ValueError(f"a ClientHello for {sni} needs at least {n - pad} bytes, not {n}")
    exts = sni_ext + struct.pack("!HH", 0x0015, pad) + bytes(pad)
    hs = body + struct.pack("!H", len(exts)) + exts
    msg = b"\x01" + len(hs).to_bytes(3, "big") + hs
    return b"\x16\x03\x01" + struct.pack("!H", len(msg)) + msg


def _build_pool() -> tuple[npt.NDArray[np.uint8], dict[str, tuple[int, int]], int]:
    """Random payload bytes, then the real protocol bodies (DNS, mDNS, MLDv2, ND) by name."""
    rnd = np.random.default_rng(0x111).integers(0, 256, 1 << 16, dtype=np.uint8).tobytes()
    q = (
        b"\x4a\x11\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        + _dns_name("registry.k8s.io")
        + b"\0\x01\0\x01"
    )
    ans = b"\xc0\x0c\0\x01\0\x01\0\0\x01\x2c\0\x04" + bytes([34, 96, 108, 209])
    tmpl: dict[str, bytes] = {
        "dnsq": q,
        "dnsr": q[:2] + b"\x81\x80\0\x01\0\x01\0\0\0\0" + q[12:] + ans,
        "mdns": b"\0\0\0\0\0\x01\0\0\0\0\0\0"
        + _dns_name("_workstation._tcp.local")
        + b"\0\x0c\x80\x01",
        # SSH protocol banners (RFC 4253 4.2): a node's client, the appliance's server
        "ssh_client": b"SSH-2.0-OpenSSH_9.6\r\n",
        "ssh_server": b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.7\r\n",
    }
    tmpl["ra"] = b"\x40\x00\x07\x08" + bytes(8)  # hop limit 64, lifetime 1800 s
    for name, prio in (("vrrp_gw2", 200), ("vrrp_gw3", 100)):  # VRRPv2 advert, VRID 111
        body = bytes([0x21, 111, prio, 1, 0, 1, 0, 0, 10, 25, 233, 1]) + bytes(8)
        s = sum(int.from_bytes(body[k : k + 2], "big") for k in range(0, len(body), 2))
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        tmpl[name] = body[:6] + ((~s) & 0xFFFF).to_bytes(2, "big") + body[8:]
    for n in TLS_HELLO_LENGTHS:  # one per length: the kernel copies pool bytes as they are
        tmpl[f"tls_hello_{n}"] = client_hello(n)
    for n in ("pma", "n4", "n5", "n6"):
        mac = H_MAC[H[n]].tobytes()
        tmpl["mld_" + n] = b"\0\0\0\x01\x04\0\0\0" + H_IP6[H[n + "_snm"]].tobytes()
        for t in ("pma", "n4", "n5", "n6"):
            tmpl[f"ns_{n}_{t}"] = b"\0" * 4 + H_IP6[H[t + "_ll"]].tobytes() + b"\x01\x01" + mac
    # a pod's lookup of a cluster service and CoreDNS's answer (its ClusterIP), appended
    # last: the offsets above are part of the frames' bytes
    q = b"\x2b\x7e\x01\x00\0\x01\0\0\0\0\0\0" + _dns_name("postgres.db.svc.cluster.local")
    q += b"\0\x01\0\x01"
    tmpl["dnsq_svc"] = q
    tmpl["dnsr_svc"] = (
        q[:2]
        + b"\x85\x00\0\x01\0\x01\0\0\0\0"
        + q[12:]
        + b"\xc0\x0c\0\x01\0\x01\0\0\0\x1e\0\x04"
        + bytes([10, 96, 41, 7])
    )
    out, offs = bytearray(rnd), {}
    for k, v in tmpl.items():
        offs[k] = (len(out), len(v))
        out += v
    return np.frombuffer(bytes(out), np.uint8), offs, len(rnd) - 1600


POOL, TMPL, RANDOM_SPAN = _build_pool()
_W16 = (POOL.astype(np.int64) << 8) | np.append(POOL[1:], 0).astype(np.int64)
POOL_SUM2 = np.empty_like(_W16)  # POOL_SUM2[i] = sum of 16-bit words at i, i-2, i-4, ...
POOL_SUM2[0::2], POOL_SUM2[1::2] = np.cumsum(_W16[0::2]), np.cumsum(_W16[1::2])
