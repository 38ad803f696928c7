"""Address text → host groups, on small data (the audit's findings, the coverage grid).

``HostIndex(matrix)`` answers whether an address is in a group (``member``, ``in_any``)
and which group to show it under (``place``: the smallest group holding it, ties by the
order the matrix declares them, else ``unknown (in scope)`` / ``out of scope``).
Addresses are compared as 128-bit IPv4-mapped integers, like the compiled matrix.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Iterable

from flowaudit.matrix.model import Matrix

UNKNOWN = "unknown (in scope)"
OUTSIDE = "out of scope"


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
