"""How many unidirectional flow records pair up: a plain-Python statement of the rules.

Written from the rules in flowaudit/records/pairing.py's docstring (for ARCHITECTURE.md),
one record at a time, with no numpy and none of the reader's code: records of one
conversation (same exporter, observation domain, VLAN, protocol; reversed endpoints)
sorted by start; two neighbours of opposite orientation pair when the later starts no
later than ``max_gap_s`` after the earlier ends, greedily from the earliest. ICMP
records carry (type, counterpart type) as ports, per the Community ID spec, so a request
and its reply are reversed endpoints of one conversation.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

# Community ID spec, "ICMP/ICMPv6 type/code mapping": request/reply counterparts
ICMP4_COUNTERPART = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
ICMP6_COUNTERPART = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135,
                     130: 131, 131: 130, 139: 140, 140: 139, 144: 145, 145: 144}  # fmt: skip


@dataclass(frozen=True)
class Rec:
    exporter: str
    domain: int
    vlan: int | None
    proto: int
    src: str
    sport: int
    dst: str
    dport: int
    first_us: int
    last_us: int


def icmp_ports(proto: int, icmp_type: int, code: int) -> tuple[int, int]:
    table = ICMP4_COUNTERPART if proto == 1 else ICMP6_COUNTERPART
    return icmp_type, table.get(icmp_type, code)


def _endpoint(ip: str, port: int) -> tuple[int, int]:
    a = ipaddress.ip_address(ip)
    return ((0xFFFF << 32) | int(a) if a.version == 4 else int(a)), port


def count_pairs(records: Iterable[Rec], max_gap_s: float = 60.0) -> int:
    gap = round(max_gap_s * 1_000_000)
    conversations: dict[tuple[object, ...], list[tuple[int, int, bool]]] = defaultdict(list)
    for r in records:
        s, d = _endpoint(r.src, r.sport), _endpoint(r.dst, r.dport)
        key = (r.exporter, r.domain, r.vlan, r.proto, min(s, d), max(s, d))
        conversations[key].append((r.first_us, r.last_us, s <= d))
    pairs = 0
    for recs in conversations.values():
        recs.sort(key=lambda x: x[0])  # stable: records that start at once keep file order
        i = 0
        while i + 1 < len(recs):
            (_, last_a, dir_a), (first_b, _, dir_b) = recs[i], recs[i + 1]
            if dir_a != dir_b and first_b <= last_a + gap:
                pairs += 1
                i += 2
            else:
                i += 1
    return pairs
