"""The approved matrix as frozen dataclasses, plus address, port and protocol parsing.

This module owns the in-memory shape of a matrix (``Matrix``, ``Scope``, ``HostGroup``,
``Rule``, ``Provenance``) and the small value parsers the loader validates with. It
imports no pyarrow: the Arrow tables are built lazily by ``flowaudit.matrix.compile``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

PROTOCOLS: dict[str, int] = {
    "icmp": 1,
    "tcp": 6,
    "udp": 17,
    "icmpv6": 58,
    "ipv6-icmp": 58,
    "sctp": 132,
}
PROTOCOL_NAMES: dict[int, str] = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}
# protocols whose rules must say which ports they allow
PORTED = frozenset({6, 17, 132})

ORIGINS = ("component", "firewall", "observed")

_V4_MAPPED = 0xFFFF << 32

PortRange = tuple[int, int]
AddrRange = tuple[int, int]


def protocol_name(number: int) -> str:
    """``6`` → ``tcp``; unknown numbers are shown as their number."""
    return PROTOCOL_NAMES.get(number, str(number))


def parse_protocol(value: object) -> int:
    """``tcp``/``udp``/``icmp``/``icmpv6``/``sctp`` (any case) or 0–255 → IANA number."""
    if isinstance(value, bool):
        raise ValueError(f"unknown protocol {value!r}")
    if isinstance(value, int):
        if 0 <= value <= 255:
            return value
        raise ValueError(f"protocol number {value} outside 0-255")
    if isinstance(value, str):
        text = value.strip().lower()
        if text in PROTOCOLS:
            return PROTOCOLS[text]
        if text.isdigit():
            return parse_protocol(int(text))
    known = ", ".join(sorted(set(PROTOCOLS) - {"ipv6-icmp"}))
    raise ValueError(f"unknown protocol {value!r} (use {known} or a number 0-255)")


def _port(text: str, whole: object) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"bad port {whole!r}")
    n = int(text)
    if not 0 <= n <= 65535:
        raise ValueError(f"port {n} outside 0-65535")
    return n


def parse_port_range(value: object) -> PortRange:
    """``443``, ``"2379-2380"`` → ``(lo, hi)``; rejects lo > hi and values outside 0–65535."""
    if isinstance(value, bool):
        raise ValueError(f"bad port {value!r}")
    if isinstance(value, int):
        if not 0 <= value <= 65535:
            raise ValueError(f"port {value} outside 0-65535")
        return (value, value)
    if isinstance(value, str):
        lo_text, sep, hi_text = value.partition("-")
        lo = _port(lo_text, value)
        hi = _port(hi_text, value) if sep else lo
        if lo > hi:
            raise ValueError(f"port range {value!r} has lo > hi")
        return (lo, hi)
    raise ValueError(f"bad port {value!r} (use 443, '2379-2380' or a list of them)")


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sort and merge overlapping or adjacent inclusive ranges."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _addr_int(a: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    return _V4_MAPPED | int(a) if a.version == 4 else int(a)


def parse_address(spec: str) -> tuple[AddrRange, str]:
    """An address, CIDR or ``first-last`` range → ((lo, hi) as 128-bit ints, canonical text).

    IPv4 is mapped into IPv6 (``::ffff:a.b.c.d``) so one integer order covers both
    families. CIDRs with host bits set are rejected.
    """
    text = spec.strip()
    if "-" in text:
        first, _, last = text.partition("-")
        try:
            a = ipaddress.ip_address(first.strip())
            b = ipaddress.ip_address(last.strip())
        except ValueError as e:
            raise ValueError(f"bad address range {spec!r}: {e}") from None
        if a.version != b.version:
            raise ValueError(f"address range {spec!r} mixes IPv4 and IPv6")
        if int(a) > int(b):
            raise ValueError(f"address range {spec!r} has first > last")
        return (_addr_int(a), _addr_int(b)), f"{a}-{b}"
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        raise ValueError(f"bad address or CIDR {spec!r}: {e}") from None
    lo, hi = _addr_int(net.network_address), _addr_int(net.broadcast_address)
    return (lo, hi), str(net)


def addr_bytes(value: int) -> bytes:
    """A 128-bit address integer → the 16 big-endian bytes stored in Arrow tables."""
    return value.to_bytes(16, "big")


def addr_text(value: int) -> str:
    """A 128-bit address integer → text; IPv4-mapped addresses print as IPv4."""
    if value >> 32 == 0xFFFF:
        return str(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address(value))


def range_text(lo: int, hi: int) -> str:
    """``10.25.233.4-10.25.233.6``, or one address when lo == hi."""
    return addr_text(lo) if lo == hi else f"{addr_text(lo)}-{addr_text(hi)}"


def port_complement(
    ranges: Iterable[tuple[int, int]], used: Container[int]
) -> list[tuple[int, int]]:
    """The parts of ``ranges`` whose ports are not in ``used``, as (lo, hi) ranges."""
    out: list[tuple[int, int]] = []
    for lo, hi in ranges:
        start = None
        for p in range(lo, hi + 1):
            if p in used:
                if start is not None:
                    out.append((start, p - 1))
                start = None
            elif start is None:
                start = p
        if start is not None:
            out.append((start, hi))
    return out


def ports_text(ports: Iterable[Sequence[int]]) -> str:
    """``((443, 443), (2379, 2380))`` → ``443, 2379-2380``."""
    return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ports)


@dataclass(frozen=True)
class Provenance:
    """Where a rule came from in the seed: table heading, row text, and which kind of table."""

    table: str
    row: str
    origin: str  # "component" | "firewall" | "observed"
    #: origin "observed" (``flowaudit rules propose``): the findings the rule approves, the
    #: window they were seen in, how many flows, and the sha256 of the captures
    findings: tuple[str, ...] = ()
    window: str = ""
    flows: int = 0
    captures: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.origin == "observed" and not self.table:
            ids = ", ".join(self.findings)
            return f"observed: {self.flows} flows in {self.window or 'the window'}; findings {ids}"
        return f"{self.table}: {self.row}"

    def to_dict(self) -> dict[str, object]:
        """The provenance as the YAML writes it (observed keys only for observed rules)."""
        out: dict[str, object] = {}
        if self.table:
            out["table"] = self.table
        if self.row:
            out["row"] = self.row
        out["origin"] = self.origin
        if self.origin == "observed":
            out.update(
                findings=list(self.findings),
                window=self.window,
                flows=self.flows,
                captures=list(self.captures),
            )
        return out


@dataclass(frozen=True)
class Scope:
    """The VLANs and subnets a capture of this deployment should contain."""

    vlans: tuple[int, ...]
    subnets: tuple[str, ...]
    #: (range, canonical text) per subnet, parsed once when the scope is made
    parsed: tuple[tuple[AddrRange, str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parsed", tuple(parse_address(s) for s in self.subnets))


@dataclass(frozen=True)
class HostGroup:
    """A named set of addresses. ``needs_configuration``: the seed gives no address."""

    name: str
    description: str
    addresses: tuple[str, ...]
    needs_configuration: bool
    #: (range, canonical text) per address, in file order, parsed once when the group is made
    parsed: tuple[tuple[AddrRange, str], ...] = field(init=False, repr=False, compare=False)
    #: the addresses as sorted (lo, hi) 128-bit integer ranges (not merged)
    ranges: tuple[AddrRange, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parsed = tuple(parse_address(a) for a in self.addresses)
        object.__setattr__(self, "parsed", parsed)
        object.__setattr__(self, "ranges", tuple(sorted(r for r, _ in parsed)))

    @property
    def configured(self) -> bool:
        return bool(self.addresses)


@dataclass(frozen=True)
class Rule:
    """One approved flow: ``from`` initiates to ``to`` on protocols × ports."""

    id: str
    from_groups: tuple[str, ...]
    to_groups: tuple[str, ...]
    protocols: tuple[int, ...]
    ports: tuple[PortRange, ...]
    purpose: str
    bidirectional: bool
    condition: str | None
    origin: str
    provenance: Provenance
    source: str = field(default="", compare=False)  # "file:line" of the rule in YAML


@dataclass(frozen=True)
class PodAllow:
    """One entry of the pod allow list: inner traffic on these protocols and ports."""

    protocols: tuple[int, ...]
    ports: tuple[PortRange, ...]
    purpose: str


@dataclass(frozen=True)
class PodPolicy:
    """The optional pod-level allow list of a matrix (``pods:``): an inner flow of a tunnel
    between two pod addresses (``cidrs``) on an allowed protocol and responder port is
    approved; any other inner flow is an ``overlay-not-approved`` finding."""

    cidrs: tuple[str, ...]
    allow: tuple[PodAllow, ...]
    description: str = ""
    #: the CIDRs as sorted (lo, hi) 128-bit integer ranges
    ranges: tuple[AddrRange, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranges", tuple(sorted(parse_address(a)[0] for a in self.cidrs)))

    def to_dict(self) -> dict[str, object]:
        return {
            "description": self.description,
            "cidrs": list(self.cidrs),
            "allow": [
                {
                    "protocols": list(a.protocols),
                    "ports": [list(p) for p in a.ports],
                    "purpose": a.purpose,
                }  # fmt: skip
                for a in self.allow
            ],
        }


@dataclass(frozen=True, eq=False)
class Matrix:
    """A loaded, validated matrix (overlays and --group values applied)."""

    name: str
    description: str
    sha256: str
    scope: Scope
    groups: Mapping[str, HostGroup]
    rules: tuple[Rule, ...]
    files: tuple[str, ...] = ()
    #: the pod-level allow list for tunnels' inner flows, when the matrix has one
    pods: PodPolicy | None = None

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id (KeyError when absent)."""
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    @property
    def service_ports(self) -> tuple[PortRange, ...]:
        """Every responder port range the rules approve for a ported protocol, merged:
        the service ports that orient flows seen without a SYN (flowaudit.flows.ports)."""
        ported = (r for r in self.rules if set(r.protocols) & PORTED)
        return merge_ranges(p for r in ported for p in r.ports)
