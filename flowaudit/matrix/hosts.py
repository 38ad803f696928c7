"""Address text → host groups and address classes, on small data.

``HostIndex(matrix)`` answers whether an address is in a group (``member``, ``in_any``)
and which group to show it under (``place``: the smallest group holding it, ties by the
order the matrix declares them, else ``unknown (in scope)`` / ``out of scope``).
``side_ranges(matrix)`` is the same placement as ranges for SQL (finding groups): the
matrix groups smallest first, then the address classes (``ADDRESS_CLASSES``) in
precedence order; ``address_class`` answers it for one address in Python.
Addresses are compared as 128-bit IPv4-mapped integers, like the compiled matrix.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Iterable

from flowaudit.matrix.model import Matrix

UNKNOWN = "unknown (in scope)"
OUTSIDE = "out of scope"

#: the address classes, in precedence order (the first that holds an address wins)
ADDRESS_CLASSES = (
    "unspecified",
    "loopback",
    "broadcast",
    "multicast",
    "link-local",
    "site",
    "private",
    "internet",
)
_V4 = 0xFFFF << 32
_FIXED_CLASSES: tuple[tuple[str, str], ...] = (
    ("unspecified", "0.0.0.0/32"),
    ("unspecified", "::/128"),
    ("loopback", "127.0.0.0/8"),
    ("loopback", "::1/128"),
    ("broadcast", "255.255.255.255/32"),
    ("multicast", "224.0.0.0/4"),
    ("multicast", "ff00::/8"),
    ("link-local", "169.254.0.0/16"),
    ("link-local", "fe80::/10"),
    ("private", "10.0.0.0/8"),
    ("private", "172.16.0.0/12"),
    ("private", "192.168.0.0/16"),
    ("private", "100.64.0.0/10"),
    ("private", "fc00::/7"),
    ("internet", "::/0"),
)


def _net_range(cidr: str) -> tuple[int, int]:
    import ipaddress

    n = ipaddress.ip_network(cidr)
    lo, hi = int(n.network_address), int(n.broadcast_address)
    return (_V4 | lo, _V4 | hi) if n.version == 4 else (lo, hi)


def class_ranges(m: Matrix) -> list[tuple[str, int, int]]:
    """(class, lo, hi) for every address class, in ``ADDRESS_CLASSES`` order: ``broadcast``
    holds 255.255.255.255 and the last address of every IPv4 scope subnet wider than /31,
    ``site`` the scope subnets."""
    out: list[tuple[str, int, int]] = []
    for cls in ADDRESS_CLASSES:
        if cls == "site":
            out += [("site", lo, hi) for (lo, hi), _ in m.scope.parsed]
            continue
        if cls == "broadcast":
            for (lo, hi), _ in m.scope.parsed:
                if lo >> 32 == 0xFFFF and hi - lo >= 3:  # an IPv4 subnet wider than /31
                    out.append(("broadcast", hi, hi))
        out += [(c, *_net_range(cidr)) for c, cidr in _FIXED_CLASSES if c == cls]
    return out


def side_ranges(m: Matrix) -> list[tuple[int, str, int, int, bool]]:
    """(rank, side, lo, hi, is_group): the configured groups smallest first (ties by the
    order the matrix declares them), then the address classes. An address's side is the
    side of its lowest-ranked range."""
    idx = HostIndex(m)
    groups = sorted(idx.ranges, key=lambda g: (idx.size[g], idx.order.index(g)))
    rows = [(g, lo, hi, True) for g in groups for lo, hi in idx.ranges[g]]
    rows += [(c, lo, hi, False) for c, lo, hi in class_ranges(m)]
    return [(i, side, lo, hi, grp) for i, (side, lo, hi, grp) in enumerate(rows)]


def address_class(ip: str, m: Matrix) -> str:
    """The class of one address (``site``, ``internet`` …), groups not considered."""
    n = addr_int(ip)
    return next(c for c, lo, hi in class_ranges(m) if lo <= n <= hi)


def addr_int(ip: str) -> int:
    """Address text → the 128-bit IPv4-mapped integer (inet_pton: 10× ipaddress)."""
    if ":" in ip:
        return int.from_bytes(socket.inet_pton(socket.AF_INET6, ip), "big")
    return 0xFFFF << 32 | int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")


class HostIndex:
    """The configured groups' address ranges and the scope subnets of one matrix."""

    def __init__(self, m: Matrix) -> None:
        self.order = list(m.groups)
        self.ranges = {g: m.groups[g].ranges for g in self.order if m.groups[g].configured}
        self.size = {g: sum(hi - lo + 1 for lo, hi in rs) for g, rs in self.ranges.items()}
        self.scope = [rng for rng, _ in m.scope.parsed]

    @functools.lru_cache(maxsize=65536)  # noqa: B019 (an index lives as long as one audit)
    def member(self, ip: str, group: str) -> bool:
        n = addr_int(ip)
        return any(lo <= n <= hi for lo, hi in self.ranges.get(group, ()))

    def in_any(self, ip: str, groups: Iterable[str]) -> bool:
        return any(self.member(ip, g) for g in groups)

    @functools.lru_cache(maxsize=65536)  # noqa: B019 (an index lives as long as one audit)
    def place(self, ip: str) -> str:
        n = addr_int(ip)
        inside = [g for g, rs in self.ranges.items() if any(lo <= n <= hi for lo, hi in rs)]
        if inside:
            return min(inside, key=lambda g: (self.size[g], self.order.index(g)))
        return UNKNOWN if any(lo <= n <= hi for lo, hi in self.scope) else OUTSIDE
