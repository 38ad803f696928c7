"""Synthetic VLAN 111 capture generator with known ground truth (benchmarks, samples, audit truth).

Writes a classic pcap (µs, Ethernet, 802.1Q) of the deployment in the seed port matrix
(seeds/000_01dbefc070aa5d11.txt): approved traffic for every row of the matrix, one or more
flows of every violation kind, TCP outcomes SF/RSTO/RSTR/REJ/S0/OTH, UDP request/response and
one-way, ICMP echo, IPv6 link-local noise (MLDv2, ND, mDNS) and ARP. With ``truth_path`` it
writes one JSON line per flow it intends (the initiator as ``src``; counters are on-wire frame
lengths) and a ``*.summary.json`` beside it (frame counts, non-IP frames, labels, states).

Flows are planned in Python (one tuple per packet), frames are built by one numba kernel into
a chunk buffer and written window by window, so memory stays flat for any ``packets``. No
5-tuple+VLAN is reused within its idle timeout (TCP 300 s, UDP/ICMP 60 s). The exact frame
count equals ``packets``: the tail is padded with unanswered ARP requests.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar

import numba
import numpy as np
import numpy.typing as npt

T = TypeVar("T")

I64 = npt.NDArray[np.int64]
ARP, TCP4, UDP4, ICMP4, UDP6, ICMP6, MLD6 = range(7)
PROTO = {TCP4: 6, UDP4: 17, ICMP4: 1, UDP6: 17, ICMP6: 58, MLD6: 58}
FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16
MSS, RATE_PPS, MIN_DURATION_S, CHUNK_PACKETS = 1448, 4000, 60.0, 50_000
IDLE_S = {6: 300, 17: 60, 1: 60, 58: 60}
SCENARIOS = ("mixed", "approved-only", "violations")
REASONS = (
    "port-not-approved",
    "reverse-direction",
    "unknown-source",
    "unknown-destination",
    "protocol-not-approved",
    "off-vlan",
    "out-of-scope-address",
)
ICMP_DIRECTION = "first_packet"  # echo request sender = first packet = initiator
# ICMP "ports" in the truth: src = type, dst = counterpart type (echo 8 -> 0, ND 135 -> 136)
# or the code when the type has no counterpart, as Community ID v1 and Zeek map them
# flowaudit's default service-port mask (flows.py): ports < 1024 plus the matrix ports
_MATRIX_PORTS = "443 5080 6443 22 30003 2379 2380 10250 10257 10259 4240 4244 4245 8472 51871"
SERVICE_PORTS = frozenset(
    [*map(int, _MATRIX_PORTS.split()), 16509, 7946, *range(9001, 9023), *range(49152, 49216)]
)

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
# packet matrix columns
TS, LAY, VLAN, SRC, DST, SP, DP, FL, SEQ, ACKN, PLEN, POFF, IPID, FLEN = range(14)


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
def _write_frames(
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
        else:
            l4h = 8
        if lay <= 3:
            proto = 6 if lay == 1 else (17 if lay == 2 else 1)
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
        else:  # ICMP: type in the flags column, code 0; echo id/seq in the seq column
            buf[l4] = fl
            if lay == 3:
                _put(buf, l4 + 4, m[i, 8], 4)
                _put(buf, l4 + 2, _fold(_sum16(buf, l4, q) + pay), 2)
            else:
                _put(buf, l4 + 2, _fold(pseudo + _sum16(buf, l4, q) + pay), 2)


def frame_lengths(m: I64) -> tuple[I64, I64]:
    """(on-wire frame length, IP-layer length) for each row of a packet matrix."""
    lay, fl = m[:, LAY], m[:, FL]
    tcph = np.where(fl & RST, 20, np.where(fl & SYN, 40, 32))
    l4h = np.select([lay == TCP4, lay == ICMP6, lay == MLD6], [tcph, 4, 12], 8)
    iplen = np.where(lay >= UDP6, 40, 20) + l4h + m[:, PLEN]
    iplen = np.where(lay == ARP, 0, iplen)
    l2 = 14 + 4 * (m[:, VLAN] >= 0) + np.where(lay == ARP, 28, iplen)
    return np.maximum(l2, 60).astype(np.int64), iplen.astype(np.int64)


# --------------------------------------------------------- payload pool -------------------
def _dns_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


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
    }
    for n in ("pma", "n4", "n5", "n6"):
        mac = H_MAC[H[n]].tobytes()
        tmpl["mld_" + n] = b"\0\0\0\x01\x04\0\0\0" + H_IP6[H[n + "_snm"]].tobytes()
        for t in ("pma", "n4", "n5", "n6"):
            tmpl[f"ns_{n}_{t}"] = b"\0" * 4 + H_IP6[H[t + "_ll"]].tobytes() + b"\x01\x01" + mac
    out, offs = bytearray(rnd), {}
    for k, v in tmpl.items():
        offs[k] = (len(out), len(v))
        out += v
    return np.frombuffer(bytes(out), np.uint8), offs, len(rnd) - 1600


POOL, TMPL, RANDOM_SPAN = _build_pool()
_W16 = (POOL.astype(np.int64) << 8) | np.append(POOL[1:], 0).astype(np.int64)
POOL_SUM2 = np.empty_like(_W16)  # POOL_SUM2[i] = sum of 16-bit words at i, i-2, i-4, ...
POOL_SUM2[0::2], POOL_SUM2[1::2] = np.cumsum(_W16[0::2]), np.cumsum(_W16[1::2])


# ------------------------------------------------------------- flows ----------------------
Row = tuple[int, int, int, int, int, int, int]  # ts_us, dir, flags|icmp type, plen, seq, ack, tmpl


@dataclass
class Flow:
    """One intended flow: ``a`` is the initiator (truth ``src``), dir 0 is a → b."""

    lay: int
    vlan: int
    a: int
    b: int
    pa: int
    pb: int
    rows: list[Row]
    label: str
    state: str = ""
    direction: str = ""
    seed_row: str | None = None
    fw_rule: str | None = None
    note: str | None = None
    acc: list[int] = field(default_factory=lambda: [0] * 10)  # per-direction counters


def direction_for(proto: int, pa: int, pb: int, syn: bool) -> str:
    if proto == 6 and syn:
        return "syn"
    if proto in (1, 58):
        return ICMP_DIRECTION
    return "service_port" if _svc(pb) and not _svc(pa) else "first_packet"


def _svc(port: int) -> bool:
    return port < 1024 or port in SERVICE_PORTS


@dataclass(frozen=True)
class Family:
    """A kind of approved traffic: who talks to whom on which ports, and how much."""

    name: str
    weight: float
    clients: tuple[str, ...]
    servers: tuple[str, ...]
    ports: tuple[int, ...]
    kind: str  # "tcp", "udp1" (one-way datagrams), "udp2" (request/response)
    n: tuple[int, int]  # exchanges (udp1: datagrams)
    req: tuple[int, int]  # bytes, log-uniform
    resp: tuple[int, int]
    seed_row: str  # "<seed table>: <row>"; {port} is replaced by the port used
    fw_rule: str | None  # the row of the seed's "Firewall Rules Summary", if any


# One approved family per line: name | weight | clients | servers | ports | kind | exchanges |
# request bytes | response bytes | seed table: row | firewall-summary row. Sizes are log-uniform.
_APPROVED_TABLE = """
agent         |14  |nodes|pma  |443   |tcp |1-3 |200-1500|100-3000|{EXT}: 443 TCP|Cluster to PMA
registry      |1   |nodes|pma  |30003 |tcp |1-2 |300-800 |2e4-2e6  |{EXT}: 30003 TCP|Cluster to PMA
pma-k8s-api   |8   |pma  |nodes|6443  |tcp |1-4 |300-900 |300-30000|{PMA}: 6443 TCP|PMA to Cluster
admin-ui      |3   |admin|pma  |443   |tcp |2-8 |400-1200|1000-60000|{PMA}: 443 TCP|Admin to PMA
admin-local-ui|1   |admin|pma  |5080  |tcp |2-6 |400-1200|500-20000|{PMA}: 5080 TCP|Admin to PMA
admin-ssh     |0.3 |admin|ssh  |22    |tcp |6-20|36-600  |36-1500  |{PMA}: 22 TCP  |SSH to PMA
k8s-api       |10  |nodes|nodes|6443  |tcp |1-4 |300-900 |300-30000|{K8S}: 6443 TCP|{K8S_FW}
etcd-client   |10  |nodes|nodes|2379  |tcp |1-6 |80-600  |60-2000  |{K8S}: 2379-2380 TCP|{K8S_FW}
kubelet       |5   |nodes|nodes|10250 |tcp |1-3 |200-600 |200-40000|{K8S}: 10250 TCP|{K8S_FW}
kube-scheduler|1   |nodes|nodes|10259 |tcp |1-1 |120-200 |100-400  |{K8S}: 10259 TCP|
kube-ctrl-mgr |1   |nodes|nodes|10257 |tcp |1-1 |120-200 |100-400  |{K8S}: 10257 TCP|
cilium-health |6   |nodes|nodes|4240  |tcp |1-1 |90-160  |150-400  |{CIL}: 4240 TCP|
hubble-server |2   |nodes|nodes|4244  |tcp |1-4 |100-400 |200-8000 |{CIL}: 4244 TCP|
hubble-relay  |1   |nodes|nodes|4245  |tcp |1-4 |100-400 |200-8000 |{CIL}: 4245 TCP|
vxlan         |12  |nodes|nodes|8472  |udp1|1-30|70-1450 |0-0      |{CIL}: 8472 UDP|
px-api        |3   |nodes|nodes|9001  |tcp |1-3 |200-800 |200-6000 |{PX}: 9001 TCP|{PX_FW}
px-gossip     |6   |nodes|nodes|9002  |udp2|1-2 |100-600 |100-600  |{PX}: 9002 UDP|{PX_FW}
px-replication|1   |nodes|nodes|9003  |tcp |1-2 |5e4-1e6 |60-200   |{PX}: 9003 TCP|{PX_FW}
px-grpc|5|nodes|nodes|9012-9014,9018-9022|tcp|1-3|1e2-7e2|1e2-3e3|{PX}: {{port}} TCP|{PX_FW}
libvirt       |0.3 |nodes|nodes|16509 |tcp |2-5 |100-500 |100-2000 |{VMO}: 16509 TCP|{VMO_FW}
migration     |0.03|nodes|nodes|49152-49215|tcp|1-1|5e5-4e6|60-200|{VMO}: 49152-49215 TCP|{VMO_FW}
metallb-tcp   |0.5 |nodes|nodes|7946  |tcp |1-1 |300-2000|300-2000 |MetalLB Ports: 7946 TCP|
"""
_TABLES = {
    "PMA": "Palette Management Appliance Ports",
    "EXT": "Bare Metal Cluster Ports / External Communication",
    "K8S": "Inter-Node Communication (Kubernetes)",
    "CIL": "Inter-Node Communication (Cilium)",
    "PX": "Portworx Ports (Inter-Node)",
    "VMO": "VMO / KubeVirt Ports (Inter-Node)",
    "K8S_FW": "Inter-node (K8s)",
    "PX_FW": "Inter-node (PX)",
    "VMO_FW": "Inter-node (VMO)",
}
_GROUPS = {"nodes": NODES, "admin": ADMINS, "pma": ("pma",), "ssh": ("pma_ssh",)}


def _rng(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    return int(float(lo)), int(float(hi or lo))


def _parse_families(table: str) -> tuple[Family, ...]:
    out = []
    for line in table.strip().splitlines():
        c = [x.strip() for x in line.split("|")]
        ports = tuple(
            p for part in c[4].split(",") for p in range(_rng(part)[0], _rng(part)[1] + 1)
        )
        fam = Family(
            c[0],
            float(c[1]),
            _GROUPS[c[2]],
            _GROUPS[c[3]],
            ports,
            c[5],
            _rng(c[6]),
            _rng(c[7]),
            _rng(c[8]),
            c[9].format(**_TABLES),
            c[10].format(**_TABLES) or None,
        )
        out.append(fam)
    return tuple(out)


APPROVED = _parse_families(_APPROVED_TABLE)
GOSSIP_ROW, ETCD_PEER_ROW = "MetalLB Ports: 7946 UDP", _TABLES["K8S"] + ": 2379-2380 TCP"


def _iso(us: int) -> str:
    t = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


def ri(r: random.Random, lo: int, hi: int = 0) -> int:
    """A fast ``randrange(lo, hi)`` (``randrange(lo)`` when ``hi`` is 0)."""
    return lo + int(r.random() * (hi - lo)) if hi else int(r.random() * lo)


def pick(r: random.Random, seq: Sequence[T]) -> T:
    return seq[int(r.random() * len(seq))]


class _Planner:
    """Builds flows (packet rows) deterministically from one seed; keeps keys from colliding."""

    def __init__(self, seed: int, scenario: str, port_seed: int | None = None) -> None:
        self.r = random.Random(seed)
        self.port_r = random.Random(seed if port_seed is None else port_seed)  # ephemeral ports
        self.scenario = scenario
        self.ports: dict[tuple[int, int], int] = {}
        self.busy: dict[tuple[int, ...], list[tuple[int, int]]] = {}
        self.weights = [f.weight for f in APPROVED]

    # -- keys: no 5-tuple+VLAN is reused within its idle timeout ---------------------------
    @staticmethod
    def _key(vlan: int, proto: int, ia: int, pa: int, ib: int, pb: int) -> tuple[int, ...]:
        return (vlan, proto, *min((ia, pa), (ib, pb)), *max((ia, pa), (ib, pb)))

    def _free(self, key: tuple[int, ...], t0: int, t1: int) -> bool:
        return all(t1 < s or t0 > e for s, e in self.busy.get(key, ()))

    def prune(self, before: int) -> None:
        for k in [k for k, v in self.busy.items() if max(e for _, e in v) < before]:
            del self.busy[k]

    def _eph(self, ia: int, ib: int) -> int:
        cur = self.ports.get((ia, ib)) or 32768 + ri(self.port_r, 28000)
        cur = cur + 1 if cur + 1 < 61000 else 32768
        cur = 49216 if 49152 <= cur < 49216 else cur  # never an approved migration port
        self.ports[(ia, ib)] = cur
        return cur

    def flow(
        self,
        lay: int,
        vlan: int,
        a: str,
        b: str,
        pa: int | None,
        pb: int,
        rows: list[Row],
        label: str,
        state: str = "",
        **kw: Any,
    ) -> Flow | None:
        """Reserve the key for the flow's span (+ idle timeout) and wrap the rows."""
        ia, ib, proto = H[a], H[b], PROTO[lay]
        if pa is None:  # ephemeral port: take the next free one for this host pair
            for _ in range(16):
                pa = self._eph(ia, ib)
                if self._free(
                    self._key(vlan, proto, ia, pa, ib, pb), rows[0][0] - 600_000_000, rows[-1][0]
                ):
                    break
            else:
                return None
        key = self._key(vlan, proto, ia, pa, ib, pb)
        gap = (IDLE_S[proto] + 5) * 1_000_000
        if not self._free(key, rows[0][0] - gap, rows[-1][0] + gap):
            return None
        self.busy.setdefault(key, []).append((rows[0][0], rows[-1][0] + gap))
        if not state:  # UDP/ICMP: S0 when only the initiator sent, SF when both did
            state = "SF" if any(r[1] for r in rows) else "S0"
        syn = lay == TCP4 and bool(rows[0][2] & SYN)
        kw.setdefault("direction", direction_for(proto, pa, pb, syn))
        return Flow(lay, vlan, ia, ib, pa, pb, rows, label, state=state, **kw)

    def rtt(self, a: str, b: str) -> int:
        far = any(x in ADMINS or x in ("dns8", "dns1") for x in (a, b))
        return ri(self.r, 1500, 4000) if far else ri(self.r, 120, 400)

    # -- TCP --------------------------------------------------------------------------------
    def tcp(
        self,
        t: int,
        a: str,
        b: str,
        dport: int,
        state: str,
        ex: list[tuple[int, int, int]],
        label: str = "approved",
        vlan: int = 111,
        retx: int = 0,
        **kw: Any,
    ) -> Flow | None:
        """A whole TCP connection: SF, RSTO, RSTR (after data), REJ, S0 (with ``retx`` resends)."""
        r, rtt = self.r, self.rtt(a, b)
        rows: list[Row] = []
        seq, now, app = [r.getrandbits(32), r.getrandbits(32)], t, rows.append

        def snd(d: int, fl: int, n: int, dt: int) -> None:
            nonlocal now
            now += dt if dt > 0 else 1
            app((now, d, fl, n, seq[d], seq[1 - d] if fl & ACK else 0, -1))
            seq[d] = (seq[d] + n + (1 if fl & (SYN | FIN) else 0)) & 0xFFFFFFFF

        def data(d: int, n: int, dt: int) -> None:  # MSS segments, an ACK every second one
            nonlocal now
            nseg, e = (n + MSS - 1) // MSS, 1 - d
            s, ack = seq[d], seq[e]
            now += dt if dt > 0 else 1
            for j in range(nseg - 1):
                app((now, d, ACK, MSS, s, ack, -1))
                s = (s + MSS) & 0xFFFFFFFF
                if j & 1:
                    now += 20
                    app((now, e, ACK, 0, ack, s, -1))
                now += 12
            app((now, d, PSH | ACK, n - MSS * (nseg - 1), s, ack, -1))
            seq[d] = (s + n - MSS * (nseg - 1)) & 0xFFFFFFFF

        snd(0, SYN, 0, 0)
        if state == "S0":
            for k in range(retx):  # Linux resends the SYN after 1 s, then 2 s
                seq[0] = (seq[0] - 1) & 0xFFFFFFFF
                snd(0, SYN, 0, 1_000_000 << k)
        elif state == "REJ":
            seq[1] = 0
            snd(1, RST | ACK, 0, rtt // 2)
        else:
            snd(1, SYN | ACK, 0, rtt // 2)
            snd(0, ACK, 0, rtt // 2)
            for req, resp, think in ex:
                data(0, req, think)
                if resp:
                    data(1, resp, rtt // 2 + ri(r, 20, 400))
                    snd(0, ACK, 0, rtt // 2)
                else:
                    snd(1, ACK, 0, rtt // 2)
            if state == "SF":
                snd(0, FIN | ACK, 0, ri(r, 100, 5000))
                snd(1, FIN | ACK, 0, rtt // 2)
                snd(0, ACK, 0, rtt // 2)
            else:
                snd(0 if state == "RSTO" else 1, RST | ACK, 0, ri(r, 100, 5000))
        return self.flow(TCP4, vlan, a, b, None, dport, rows, label, state, **kw)

    def exchanges(self, fam: Family, small: bool) -> list[tuple[int, int, int]]:
        r = self.r

        def lu(lo: int, hi: int) -> int:
            v = int(lo * (hi / lo) ** r.random()) if hi > lo else lo
            return min(lo, 16_000) if small else v

        n = 1 if small else ri(r, fam.n[0], fam.n[1] + 1)
        return [
            (
                lu(*fam.req),
                lu(*fam.resp) if fam.resp[1] else 0,
                ri(r, 200, 300_000) if i else ri(r, 50, 400),
            )
            for i in range(n)
        ]

    # -- UDP / ICMP / noise -----------------------------------------------------------------
    def udp(
        self,
        t: int,
        a: str,
        b: str,
        sport: int | None,
        dport: int,
        pk: list[tuple[int, int, int, int]],
        label: str,
        vlan: int = 111,
        **kw: Any,
    ) -> Flow | None:
        """Datagrams ``(dir, payload bytes, gap µs, template offset or -1)``."""
        lay = UDP6 if ":" in IPS[H[a]] else UDP4
        rows: list[Row] = []
        for d, n, dt, tp in pk:
            t += max(1, dt)
            rows.append((t, d, 0, n, 0, 0, tp))
        return self.flow(lay, vlan, a, b, sport, dport, rows, label, **kw)

    def echo(self, t: int, a: str, b: str, n: int, label: str, **kw: Any) -> Flow | None:
        ident, rtt, rows = ri(self.r, 1, 65535), self.rtt(a, b), []
        for k in range(n):  # echo request (type 8) / reply (type 0), 56 bytes like ping
            rows += [
                (t + k * 1_000_000, 0, 8, 56, ident << 16 | k + 1, 0, -1),
                (t + k * 1_000_000 + rtt, 1, 0, 56, ident << 16 | k + 1, 0, -1),
            ]
        return self.flow(ICMP4, 111, a, b, 8, 0, rows, label, **kw)

    def icmp6(self, t: int, a: str, b: str, typ: int, tmpl: str, n: int) -> Flow | None:
        off, ln = TMPL[tmpl]
        rows = [(t + k * 1_000_000, 0, typ, ln, 0, 0, off) for k in range(n)]
        lay = MLD6 if typ == 143 else ICMP6
        note = "IPv6 link-local noise: " + (
            "MLDv2 report" if typ == 143 else "neighbour solicitation"
        )
        # ports as Community ID v1 and Zeek give them: type, then the counterpart type (NS 135
        # pairs with NA 136) or, for types without one (MLDv2 report 143), the code
        pb = 136 if typ == 135 else 0
        return self.flow(lay, 111, a, b, typ, pb, rows, "out-of-scope-address", note=note)

    def noise(self, t: int) -> Flow | None:
        r = self.r
        h = pick(r, ("pma", "n4", "n5", "n6"))
        kind = ri(r, 3)
        if kind == 0:
            return self.icmp6(t, h + "_ll", "mld", 143, "mld_" + h, 2)
        if kind == 1:
            tgt = pick(r, [x for x in ("pma", "n4", "n5", "n6") if x != h])
            return self.icmp6(t, h + "_ll", tgt + "_snm", 135, f"ns_{h}_{tgt}", r.randint(1, 3))
        off, ln = TMPL["mdns"]
        pk = [(0, ln, 0 if k == 0 else 1_000_000, off) for k in range(r.randint(1, 3))]
        return self.udp(
            t,
            h + "_ll",
            "mdns",
            5353,
            5353,
            pk,
            "out-of-scope-address",
            note="IPv6 link-local noise: mDNS query",
        )

    # -- approved traffic and violations ---------------------------------------------------
    def approved(
        self, fam: Family, t: int, small: bool = False, port: int = 0, state: str = ""
    ) -> Flow | None:
        r = self.r
        a = pick(r, fam.clients)
        b = pick(r, [s for s in fam.servers if s != a])
        port = port or pick(r, fam.ports)
        kw: dict[str, Any] = {"seed_row": fam.seed_row.format(port=port), "fw_rule": fam.fw_rule}
        if fam.kind == "tcp":
            st = state or r.choices(("SF", "RSTO", "RSTR", "REJ", "S0"), (93, 3, 2, 1, 1))[0]
            return self.tcp(t, a, b, port, st, self.exchanges(fam, small), retx=ri(r, 3), **kw)
        ex = self.exchanges(fam, small)
        if fam.kind == "udp1":  # one-way datagrams (VXLAN: each side has its own flow)
            pk = [
                (0, ex[0][0] if small else ri(r, fam.req[0], fam.req[1] + 1), ri(r, 20, 20000), -1)
                for _ in range(1 if small else ri(r, fam.n[0], fam.n[1] + 1))
            ]
        else:
            rtt = self.rtt(a, b)
            pk = [x for q, s, th in ex for x in ((0, q, th, -1), (1, s, rtt, -1))]
        return self.udp(t, a, b, None, port, pk, "approved", **kw)

    def violation(self, i: int, t: int) -> Flow | None:  # noqa: C901
        """One flow of violation template ``i`` (see VIOLATIONS)."""
        r = self.r
        n1, n2 = r.sample(NODES, 2)
        ex = [(ri(r, 150, 600), ri(r, 200, 30000), ri(r, 50, 400))]
        if i == 0:
            return self.tcp(t, n1, n2, 2381, "SF", ex, "port-not-approved", note="etcd metrics")
        if i == 1:
            return self.tcp(t, n1, "pma", 22, "RSTO", [(21, 41, 300)], "port-not-approved")
        if i == 2:
            return self.tcp(t, n1, "pma", 6443, "S0", [], "reverse-direction", retx=2)
        if i == 3:
            return self.tcp(t, "pma", n1, 443, "REJ", [], "reverse-direction")
        if i == 4:
            return self.tcp(t, "unk77", n1, 10250, "SF", ex, "unknown-source")
        if i == 5:
            return self.tcp(t, "unk77", n1, 10250, "REJ", [], "unknown-source")
        if i == 6:
            return self.tcp(t, n1, "srv20", 443, "SF", ex, "unknown-destination")
        if i == 7:
            pk = [(0, 60, 200_000, -1)] * r.randint(1, 3)
            return self.udp(t, n1, n2, None, 2379, pk, "protocol-not-approved")
        if i == 8:
            return self.echo(t, n1, n2, r.randint(2, 5), "protocol-not-approved")
        if i == 9:
            return self.echo(t, pick(r, ADMINS), "pma", 3, "protocol-not-approved")
        if i == 10:
            return self.tcp(t, pick(r, ADMINS), "pma", 443, "SF", ex, "off-vlan", vlan=112)
        if i == 11:
            return self.tcp(t, n1, n2, 10250, "SF", ex, "off-vlan", vlan=-1, note="untagged")
        (qo, ql), (ro, rl) = TMPL["dnsq"], TMPL["dnsr"]
        if i == 12:
            pk = [(0, ql, 0, qo), (1, rl, self.rtt(n1, "dns8"), ro)]
            return self.udp(t, n1, "dns8", None, 53, pk, "out-of-scope-address")
        if i == 13:
            return self.udp(t, n1, "dns1", None, 53, [(0, ql, 0, qo)], "out-of-scope-address")
        return self.noise(t)

    def bulk(self, t: int) -> Flow | None:
        if self.scenario == "violations":
            return self.violation(ri(self.r, len(VIOLATIONS)), t)
        return self.approved(self.r.choices(APPROVED, self.weights)[0], t)

    def arp(self, t: int, a: str, b: str, reply: bool) -> Flow:
        rows: list[Row] = [(t, 0, 0, 0, 0, 0, -1)]
        if reply:
            rows.append((t + ri(self.r, 30, 300), 1, 0, 0, 0, 0, -1))
        return Flow(ARP, 111, H[a], H[b], 1, 2, rows, "arp")

    def scheduled(self, dur: int, packets: int) -> list[Flow]:
        """Coverage (every approved row), violation incidents, IPv6 noise and ARP."""
        r, out = self.r, []

        def when(lo: float, hi: float) -> int:
            return int(dur * lo) + ri(r, int(dur * (hi - lo)))

        if self.scenario != "violations":
            for fam in APPROVED:  # every approved row at least once, small
                for p in fam.ports if len(fam.ports) < 10 else (pick(r, fam.ports),):
                    out.append(self.approved(fam, when(0.02, 0.6), small=True, port=p, state="SF"))
            for fi, st in ((8, "RSTR"), (7, "RSTO"), (9, "REJ"), (11, "S0")):  # approved outcomes
                out.append(self.approved(APPROVED[fi], when(0.02, 0.6), True, state=st))
        if self.scenario != "approved-only":
            for _ in range(max(1, packets // 1_000_000)):
                out += [self.violation(i, when(0.05, 0.9)) for i in range(len(VIOLATIONS))]
            for _ in range(3 * max(1, dur // 200_000_000)):
                out.append(self.noise(when(0.0, 0.95)))
        lan = ("pma", "n4", "n5", "n6", "gw", "unk77", "srv20")
        for _ in range(max(4, dur // 4_000_000)):
            a, b = r.sample(lan, 2)
            out.append(self.arp(when(0.0, 0.99), a, b, True))
        return [f for f in out if f is not None]

    def pad(self, n: int, t0: int, t1: int) -> list[Flow]:
        """Unanswered ARP requests for a silent address: fill the exact frame count."""
        return [
            self.arp(t0 + ri(self.r, max(1, t1 - t0)), pick(self.r, NODES), "dark99", False)
            for _ in range(n)
        ]


# violation templates, by index in _Planner.violation (the last one is IPv6 link-local noise)
VIOLATIONS = (
    "port-not-approved",
    "port-not-approved",
    "reverse-direction",
    "reverse-direction",
    "unknown-source",
    "unknown-source",
    "unknown-destination",
    "protocol-not-approved",
    "protocol-not-approved",
    "protocol-not-approved",
    "off-vlan",
    "off-vlan",
    "out-of-scope-address",
    "out-of-scope-address",
    "out-of-scope-address",
)


@dataclass
class _Stream:
    """A long-lived flow spanning the capture, generated window by window."""

    flow: Flow
    kind: str  # "etcd" / "ssh" (TCP seen mid-stream), "gossip" (UDP 7946 <-> 7946)
    cycles: int
    period: int
    phase: int
    rtt: int
    k: int = 0
    seq: list[int] = field(default_factory=lambda: [0, 0])

    SIZE = {"etcd": 2, "ssh": 3, "gossip": 4}


def _streams(pl: _Planner, dur: int, packets: int) -> list[_Stream]:
    if pl.scenario == "violations":
        return []
    out, r = [], pl.r
    plan = [("etcd", a, b, 2380, 0.02) for a, b in (("n4", "n5"), ("n4", "n6"), ("n5", "n6"))]
    plan += [("ssh", "adm0", "pma_ssh", 22, 0.005)]
    plan += [("gossip", a, b, 7946, 0.007) for a, b in (("n4", "n5"), ("n5", "n6"), ("n6", "n4"))]
    for kind, a, b, port, share in plan:
        size = _Stream.SIZE[kind]
        phase = ri(r, 1000, 50_000)
        cycles = max(int(packets * share) // size, -(-dur // 10_000_000))  # gaps <= 10 s
        period = (dur - phase) // cycles
        dummy: list[Row] = [(phase, 0, 0, 0, 0, 0, -1), (dur + 1_000_000, 1, 0, 0, 0, 0, -1)]
        if kind == "gossip":
            f = pl.flow(
                UDP4,
                111,
                a,
                b,
                port,
                port,
                dummy,
                "approved",
                seed_row=GOSSIP_ROW,
                note="memberlist: both sides use 7946, first packet decides",
            )
        else:
            row = ETCD_PEER_ROW if kind == "etcd" else _TABLES["PMA"] + ": 22 TCP"
            fw = K8S_FW if kind == "etcd" else "SSH to PMA"
            f = pl.flow(
                TCP4,
                111,
                a,
                b,
                None,
                port,
                dummy,
                "approved",
                "OTH",
                seed_row=row,
                fw_rule=fw,
                direction="service_port",
                note="mid-stream: the handshake precedes the capture",
            )
        assert f is not None
        st = _Stream(f, kind, cycles, period, phase, pl.rtt(a, b))
        st.seq = [r.getrandbits(32), r.getrandbits(32)]
        out.append(st)
    return out


K8S_FW = "Inter-node (K8s)"


def _stream_rows(pl: _Planner, st: _Stream, t1: int) -> list[Row]:
    r, rows, per = pl.r, [], st.period
    while st.k < st.cycles and st.phase + st.k * per < t1:
        t = st.phase + st.k * per + ri(r, max(1, per // 4))
        st.k += 1
        if st.kind == "etcd":  # append-entries heartbeat and its response
            pk = [(0, PSH | ACK, ri(r, 60, 300), 0), (1, PSH | ACK, ri(r, 30, 70), st.rtt)]
        elif st.kind == "ssh":  # a keystroke, its echo, the delayed ACK
            pk = [
                (0, PSH | ACK, 36, 0),
                (1, PSH | ACK, 36, st.rtt),
                (0, ACK, 0, min(40_000, per // 4)),
            ]
        else:  # memberlist ping/ack each way
            pk = [
                (0, 0, ri(r, 40, 90), 0),
                (1, 0, ri(r, 20, 40), st.rtt),
                (1, 0, ri(r, 40, 90), per // 3),
                (0, 0, ri(r, 20, 40), st.rtt),
            ]
        for d, fl, n, dt in pk:
            t += max(1, dt)
            if st.kind == "gossip":
                rows.append((t, d, 0, n, 0, 0, -1))
            else:
                rows.append((t, d, fl, n, st.seq[d], st.seq[1 - d], -1))
                st.seq[d] = (st.seq[d] + n) & 0xFFFFFFFF
    return rows


# ------------------------------------------------------------- assembly -------------------
def _assemble(flows: list[Flow], t_start: int, pktno: int) -> tuple[I64, dict[str, I64]]:
    """Packet matrix (rows in flow order) and per-flow counters (see Flow.acc)."""
    lens = np.array([len(f.rows) for f in flows], np.int64)
    rows = np.array([x for f in flows for x in f.rows], np.int64).reshape(-1, 7)
    n = len(rows)
    fid = np.repeat(np.arange(len(flows)), lens)
    meta = np.array([(f.lay, f.vlan, f.a, f.b, f.pa, f.pb) for f in flows], np.int64)[fid]
    fwd = rows[:, 1] == 0
    m = np.empty((n, 14), np.int64)
    m[:, TS], m[:, LAY], m[:, VLAN] = rows[:, 0] + t_start, meta[:, 0], meta[:, 1]
    m[:, SRC], m[:, DST] = (
        np.where(fwd, meta[:, 2], meta[:, 3]),
        np.where(fwd, meta[:, 3], meta[:, 2]),
    )
    m[:, SP], m[:, DP] = (
        np.where(fwd, meta[:, 4], meta[:, 5]),
        np.where(fwd, meta[:, 5], meta[:, 4]),
    )
    m[:, FL], m[:, PLEN], m[:, SEQ], m[:, ACKN] = rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5]
    idx = np.arange(pktno, pktno + n, dtype=np.int64)
    m[:, POFF] = np.where(rows[:, 6] >= 0, rows[:, 6], (idx * 2654435761) % RANDOM_SPAN)
    m[:, IPID] = (fid * 40503 + idx) & 0xFFFF
    m[:, FLEN], iplen = frame_lengths(m)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    tflags = np.where(m[:, LAY] == TCP4, m[:, FL], 0)

    def red(v: I64) -> I64:
        return np.add.reduceat(v, starts) if n else v[:0]

    def orr(v: I64) -> I64:
        return np.bitwise_or.reduceat(v, starts) if n else v[:0]

    cnt = {
        "src_packets": red(fwd.astype(np.int64)),
        "src_bytes": red(m[:, FLEN] * fwd),
        "src_ip_bytes": red(iplen * fwd),
        "tcp_flags_src": orr(tflags * fwd),
        "dst_packets": red((~fwd).astype(np.int64)),
        "dst_bytes": red(m[:, FLEN] * ~fwd),
        "dst_ip_bytes": red(iplen * ~fwd),
        "tcp_flags_dst": orr(tflags * ~fwd),
        "first": m[starts, TS],
        "last": m[starts + lens - 1, TS],
    }
    return m, cnt


ACC_KEYS = (
    "src_packets",
    "src_bytes",
    "src_ip_bytes",
    "tcp_flags_src",
    "dst_packets",
    "dst_bytes",
    "dst_ip_bytes",
    "tcp_flags_dst",
    "first",
    "last",
)


def _truth(f: Flow) -> dict[str, Any]:
    acc = dict(zip(ACC_KEYS, f.acc, strict=True))
    return {
        "vlan": None if f.vlan < 0 else f.vlan,
        "ip_version": 6 if f.lay >= UDP6 else 4,
        "src_ip": IPS[f.a],
        "dst_ip": IPS[f.b],
        "protocol": PROTO[f.lay],
        "src_port": f.pa,
        "dst_port": f.pb,
        **{k: acc[k] for k in ACC_KEYS[:8]},
        "first_seen": _iso(acc["first"]),
        "last_seen": _iso(acc["last"]),
        "state": f.state,
        "direction": f.direction,
        "label": f.label,
        "seed_row": f.seed_row,
        "fw_rule": f.fw_rule,
        "note": f.note,
    }


def _accumulate(f: Flow, vals: list[int]) -> None:
    a = f.acc
    if a[4] + a[0] == 0:
        f.acc = list(vals)
        return
    for i in (0, 1, 2, 4, 5, 6):
        a[i] += vals[i]
    a[3], a[7], a[8], a[9] = a[3] | vals[3], a[7] | vals[7], min(a[8], vals[8]), max(a[9], vals[9])


def _parse_start(start: str) -> int:
    t = datetime.fromisoformat(start.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def generate(
    path: str | Path,
    packets: int = 2_000_000,
    seed: int = 1,
    scenario: str = "mixed",
    truth_path: str | Path | None = None,
    start: str = "2026-11-20T08:00:00Z",
    port_seed: int | None = None,
) -> dict[str, Any]:
    """Write the capture (exactly ``packets`` frames) and its truth; return the summary.

    ``start`` shifts every timestamp and ``port_seed`` draws other ephemeral ports: with the
    same ``seed`` both leave the behaviour (hosts, ports served, sizes, states) unchanged.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS}, not {scenario!r}")
    t_start, pl = _parse_start(start), _Planner(seed, scenario, port_seed)
    dur = int(max(MIN_DURATION_S, packets / RATE_PPS) * 1_000_000)
    sched = sorted(pl.scheduled(dur, packets), key=lambda f: f.rows[0][0])
    streams = _streams(pl, dur, packets)
    fixed = sum(len(f.rows) for f in sched) + sum(s.cycles * _Stream.SIZE[s.kind] for s in streams)
    budget = packets - fixed
    if budget < 0:
        raise ValueError(
            f"packets={packets} is below the {fixed} frames the {scenario!r} scenario needs"
        )
    summ: dict[str, Any] = {
        "packets": 0,
        "bytes": 0,
        "frames": {},
        "vlans": {},
        "labels": {},
        "states": {},
        "flows": 0,
        "arp_padding": 0,
    }
    names = {
        ARP: "arp",
        TCP4: "ipv4_tcp",
        UDP4: "ipv4_udp",
        ICMP4: "ipv4_icmp",
        UDP6: "ipv6_udp",
        ICMP6: "ipv6_icmpv6",
        MLD6: "ipv6_icmpv6",
    }
    nwin = max(1, -(-packets // CHUNK_PACKETS))
    carry, si, produced = np.empty((0, 14), np.int64), 0, 0
    tf: IO[str] | None = open(truth_path, "w", encoding="utf-8") if truth_path else None  # noqa: SIM115
    try:
        with open(path, "wb") as out:
            out.write(np.array([0xA1B2C3D4, 0x00040002, 0, 0, 65535, 1], "<u4").tobytes())
            for w in range(nwin):
                last = w == nwin - 1
                t0, t1 = dur * w // nwin, dur * (w + 1) // nwin
                flows: list[Flow] = []
                while si < len(sched) and (last or sched[si].rows[0][0] < t1):
                    flows.append(sched[si])
                    si += 1
                target, misses = budget if last else budget * (w + 1) // nwin, 0
                while produced < target and misses < 200:
                    f = pl.bulk(t0 + ri(pl.r, t1 - t0))
                    if f is None or (last and produced + len(f.rows) > budget):
                        misses += 1
                        continue
                    flows.append(f)
                    produced += len(f.rows)
                if last:
                    flows += pl.pad(budget - produced, t0, t1)
                    summ["arp_padding"] = budget - produced
                done = len(flows)
                for st in streams:
                    st.flow.rows = _stream_rows(pl, st, dur * 2 if last else t1)
                    if st.flow.rows:
                        flows.append(st.flow)
                m, cnt = _assemble(flows, t_start, summ["packets"] + len(carry))
                vals = np.stack([cnt[k] for k in ACC_KEYS], axis=1).tolist()
                for f, v in zip(flows, vals, strict=True):
                    _accumulate(f, v)
                if tf:
                    ready = sorted(
                        (f for f in flows[:done] if f.lay != ARP), key=lambda f: f.acc[8]
                    )
                    for f in ready:
                        tf.write(json.dumps(_truth(f)) + "\n")
                _count(summ, flows[:done], names)
                m = np.concatenate([carry, m])
                m = m[np.argsort(m[:, TS], kind="stable")]
                cut = len(m) if last else int(np.searchsorted(m[:, TS], t_start + t1))
                _write_chunk(out, m[:cut], summ, names)
                carry = m[cut:]
                pl.prune(t0 - 700_000_000)
        streamed = [st.flow for st in streams]
        if tf:
            for f in sorted(streamed, key=lambda f: f.acc[8]):
                tf.write(json.dumps(_truth(f)) + "\n")
        _count(summ, streamed, names)
    finally:
        if tf:
            tf.close()
    summ.update(
        packets_requested=packets,
        seed=seed,
        port_seed=seed if port_seed is None else port_seed,
        scenario=scenario,
        start=start,
        duration_s=dur / 1e6,
        non_ip_frames=summ["frames"].get("arp", 0),
    )
    if truth_path:
        Path(summary_path(truth_path)).write_text(json.dumps(summ, indent=1, sort_keys=True) + "\n")
    return summ


def summary_path(truth_path: str | Path) -> Path:
    p = Path(truth_path)
    return p.with_name(p.name.removesuffix(".jsonl") + ".summary.json")


def _count(summ: dict[str, Any], flows: list[Flow], names: dict[int, str]) -> None:
    for f in flows:
        if f.lay == ARP:
            continue
        summ["flows"] += 1
        summ["labels"][f.label] = summ["labels"].get(f.label, 0) + 1
        summ["states"][f.state] = summ["states"].get(f.state, 0) + 1


def _write_chunk(out: IO[bytes], m: I64, summ: dict[str, Any], names: dict[int, str]) -> None:
    if not len(m):
        return
    off = np.concatenate([[0], np.cumsum(m[:, FLEN] + 16)])
    buf = np.zeros(int(off[-1]), np.uint8)
    _write_frames(buf, off[:-1], m, H_IP4, H_IP6, H_MAC, H_TTL, POOL, POOL_SUM2)
    out.write(buf.data)
    summ["packets"] += len(m)
    summ["bytes"] += int(m[:, FLEN].sum())
    for key, col, lab in (("frames", LAY, names), ("vlans", VLAN, None)):
        vals, counts = np.unique(m[:, col], return_counts=True)
        for v, c in zip(vals.tolist(), counts.tolist(), strict=True):
            k = lab[v] if lab else ("untagged" if v < 0 else str(v))
            summ[key][k] = summ[key].get(k, 0) + c
    first = _iso(int(m[0, TS]))
    summ.setdefault("first_seen", first)
    summ["last_seen"] = _iso(int(m[-1, TS]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("out", help="pcap file to write")
    ap.add_argument("--packets", type=int, default=2_000_000, help="exact number of frames")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scenario", choices=SCENARIOS, default="mixed")
    ap.add_argument("--truth", help="write one JSON line per flow here (+ .summary.json)")
    ap.add_argument("--start", default="2026-11-20T08:00:00Z", help="capture start (ISO 8601)")
    ap.add_argument("--port-seed", type=int, help="other ephemeral ports, same behaviour")
    a = ap.parse_args(argv)
    try:
        s = generate(a.out, a.packets, a.seed, a.scenario, a.truth, a.start, a.port_seed)
    except ValueError as e:
        ap.error(str(e))
    print(
        f"{a.out}: {s['packets']} frames, {s['flows']} flows, {s['bytes']} bytes, "
        f"{s['duration_s']:.0f} s of traffic",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
