"""From findings to matrix rules: propose the rules that would approve observed traffic.

``propose(matrix, result, ...)`` takes an audit's violations (all of them, or the
selected finding ids) and writes rules, in the matrix format, that approve exactly that
traffic and nothing that was not observed:

* each (initiator, responder, protocol) keeps its own responder ports, merged into a
  range only where every port in between was observed (``port_gap`` allows gaps);
* one rule per service (protocol and port range), like the seed's tables; within it,
  rules are bicliques: responders reached by exactly the same initiators share a rule,
  so ``from`` × ``to`` × ports holds only observed tuples (protocols seen between the
  same hosts on the same range share one rule);
* ``bidirectional`` only where both orientations were seen, each with a certain
  initiator (a SYN or an exporter);
* a side resolves to the matrix's groups where they fit (whole groups inside the
  observed addresses); the rest becomes a new group with the smallest CIDRs that add no
  unobserved host (``aggregate``: IPv4 addresses widened to their /N), named by role
  (``internet``, ``multicast``, ``link_local``, ``site_dns``, …) or ``observed_<n>``,
  unless a ``--group NAME=CIDR`` the reviewer gave holds them.

Off-VLAN findings cannot be approved by a rule (the scope decides them): they are left
out of ``--all`` with a note, and naming one is a UsageError.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flowaudit._util.time import iso
from flowaudit.audit.proposal import Proposal, ProposedGroup, ProposedRule
from flowaudit.audit.result import AuditResult
from flowaudit.errors import UsageError
from flowaudit.matrix import sets
from flowaudit.matrix.hosts import addr_int
from flowaudit.matrix.model import (
    PORTED,
    AddrRange,
    Matrix,
    addr_text,
    parse_address,
    protocol_name,
)

#: responder roles of private addresses, by the ports they were reached on
ROLE_PORTS: dict[str, frozenset[int]] = {
    "site_dns": frozenset({53}),
    "site_ntp": frozenset({123}),
    "site_dhcp": frozenset({67, 68, 547}),
    "site_ldap": frozenset({389, 636, 3268, 3269}),
    "site_syslog": frozenset({514, 6514}),
    "site_snmp": frozenset({161, 162}),
    "site_proxy": frozenset({3128, 8080}),
    "site_smtp": frozenset({25, 465, 587}),
}

Unit = tuple[str, str]  # ("addr", ip) | ("net", cidr) | ("group", name)


# ---------------------------------------------------------------- selection
def _select(
    rows: list[dict[str, Any]], finding_ids: Sequence[str] | None
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    by_id = {r["finding_id"]: r for r in rows}
    if finding_ids is None:
        chosen = rows
    else:
        unknown = [f for f in finding_ids if f not in by_id]
        if unknown:
            raise UsageError(
                f"unknown finding id{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
                hint="finding ids are in the audit report (flowaudit audit --format json)",
            )
        chosen = [by_id[f] for f in dict.fromkeys(finding_ids)]
    keep, skipped = [], []
    for r in chosen:
        why = _not_proposable(r)
        if why is None:
            keep.append(r)
        elif finding_ids is not None:
            raise UsageError(f"finding {r['finding_id']}: {why}")
        else:
            skipped.append((r["finding_id"], why))
    return keep, skipped


def _not_proposable(r: dict[str, Any]) -> str | None:
    if r["reason"] == "off-vlan":
        where = "untagged (native VLAN)" if r["vlan_id"] is None else f"VLAN {r['vlan_id']}"
        return f"off-vlan ({where}): no rule approves traffic outside scope.vlans"
    if r["dst_port"] is None and r["protocol"] in PORTED:
        return f"no responder port was recorded: a {protocol_name(r['protocol'])} rule needs one"
    return None


# ---------------------------------------------------------------- address units
class _Units:
    """Address → the unit a rule side is built from (the address, its /N, or a named
    group the reviewer gave), and unit → address ranges."""

    def __init__(self, naming: Mapping[str, Sequence[str]], aggregate: int | None) -> None:
        self.aggregate = aggregate
        self.named: list[tuple[str, tuple[AddrRange, ...]]] = []
        for name, cidrs in naming.items():
            try:
                rs = tuple(sorted(parse_address(c)[0] for c in cidrs))
            except ValueError as e:
                raise UsageError(f"--group {name}: {e}") from None
            self.named.append((name, rs))
        self.texts = {name: tuple(parse_address(c)[1] for c in naming[name]) for name in naming}

    def of(self, ip: str) -> Unit:
        n = addr_int(ip)
        hits = [name for name, rs in self.named if any(lo <= n <= hi for lo, hi in rs)]
        if len(hits) > 1:
            raise UsageError(
                f"conflicting group names: {ip} is in --group {hits[0]} and --group {hits[1]}"
            )
        if hits:
            return ("group", hits[0])
        if self.aggregate is not None and ":" not in ip:
            net = ipaddress.ip_network(f"{ip}/{self.aggregate}", strict=False)
            return ("net", str(net))
        return ("addr", ip)

    def ranges(self, units: Iterable[Unit]) -> tuple[AddrRange, ...]:
        out: list[AddrRange] = []
        for kind, value in units:
            if kind == "addr":
                n = addr_int(value)
                out.append((n, n))
            elif kind == "net":
                out.append(parse_address(value)[0])
        return sets.union(out)


def cidrs(ranges: Iterable[AddrRange]) -> tuple[str, ...]:
    """Merged 128-bit (IPv4-mapped) ranges → the fewest CIDRs covering exactly them."""
    out: list[str] = []
    for lo, hi in sets.union(ranges):
        a, b = ipaddress.ip_address(addr_text(lo)), ipaddress.ip_address(addr_text(hi))
        for net in ipaddress.summarize_address_range(a, b):
            out.append(str(net.network_address) if net.num_addresses == 1 else str(net))
    return tuple(out)


def _role(ranges: tuple[AddrRange, ...], responder: bool, ports: set[int]) -> str:
    addrs = [ipaddress.ip_address(addr_text(x)) for r in ranges for x in r]
    if all(a.is_multicast for a in addrs):
        return "multicast"
    if all(a.is_link_local for a in addrs):
        return "link_local"
    if all(a.is_global for a in addrs):
        return "internet"
    if responder and ports:
        for role, known in ROLE_PORTS.items():
            if ports <= known:
                return role
    return ""


class _Groups:
    """Resolves rule sides to the matrix's groups, creating new groups as needed."""

    def __init__(self, m: Matrix, units: _Units) -> None:
        self.m = m
        self.units = units
        self.existing = [(g.name, sets.union(g.ranges)) for g in m.groups.values() if g.configured]
        self.size = {n: sum(hi - lo + 1 for lo, hi in rs) for n, rs in self.existing}
        self.new: dict[tuple[AddrRange, ...], ProposedGroup] = {}
        self.taken = set(m.groups) | set(units.texts)
        self.counter = 0

    def side(self, side_units: frozenset[Unit], responder: bool, ports: set[int]) -> list[str]:
        names = sorted(v for k, v in side_units if k == "group")
        rest = self.units.ranges(u for u in side_units if u[0] != "group")
        exact = [n for n, rs in self.existing if rs == rest]
        if rest and exact:
            return [*names, min(exact, key=lambda n: (self.size[n], list(self.m.groups).index(n)))]
        for n, rs in sorted(self.existing, key=lambda x: -self.size[x[0]]):
            if rest and rs and sets.contains(rest, rs):
                names.append(n)
                rest = sets.subtract(rest, rs)
        if rest:
            names.append(self._new(rest, responder, ports))
        return names

    def _new(self, rest: tuple[AddrRange, ...], responder: bool, ports: set[int]) -> str:
        if rest in self.new:
            return self.new[rest].name
        role = _role(rest, responder, ports)
        if role:
            name, i = role, 2
            while name in self.taken:
                name, i = f"{role}_{i}", i + 1
        else:
            self.counter += 1
            while f"observed_{self.counter}" in self.taken:
                self.counter += 1
            name = f"observed_{self.counter}"
        self.taken.add(name)
        inside = [n for n, rs in self.existing if sets.contains(rs, rest)]
        where = f" (part of {', '.join(inside)})" if inside else ""
        desc = f"observed {'responders' if responder else 'initiators'}{where}; name its role"
        self.new[rest] = ProposedGroup(name, desc, cidrs(rest))
        return name


# ---------------------------------------------------------------- rules
def port_ranges(ports: Iterable[int], gap: int = 0) -> tuple[tuple[int, int], ...]:
    """Sorted ports → ranges; two ports join when at most ``gap`` unobserved ports lie
    between them (gap 0: only consecutive ports)."""
    out: list[tuple[int, int]] = []
    for p in sorted(set(ports)):
        if out and p - out[-1][1] - 1 <= gap:
            out[-1] = (out[-1][0], p)
        else:
            out.append((p, p))
    return tuple(out)


def propose(
    m: Matrix,
    result: AuditResult,
    finding_ids: Sequence[str] | None = None,
    *,
    naming: Mapping[str, Sequence[str]] | None = None,
    aggregate: int | None = None,
    port_gap: int = 0,
    bootstrap: bool = False,
) -> Proposal:
    """The rules that approve the selected violations of ``result`` (None: all of them)."""
    if aggregate is not None and not 0 <= aggregate <= 32:
        raise UsageError(f"--aggregate /{aggregate}: an IPv4 prefix length is 0-32")
    if port_gap < 0:
        raise UsageError("--port-gap must be 0 or more")
    naming = dict(naming or {})
    for name, addrs in naming.items():
        g = m.groups.get(name)
        if g is not None and set(g.addresses) != {parse_address(a)[1] for a in addrs}:
            raise UsageError(
                f"conflicting group names: {name!r} is already a group of matrix {m.name!r} "
                f"({', '.join(g.addresses) or 'no addresses'})",
                hint="choose another name for the new group",
            )
    units = _Units({n: a for n, a in naming.items() if n not in m.groups}, aggregate)
    rows = result.violations.to_pylist()
    chosen, skipped = _select(rows, finding_ids)

    # observed tuples: (initiator unit, responder unit, protocol, port) → rows, certainty
    seen: dict[tuple[Unit, Unit, int, int], list[dict[str, Any]]] = defaultdict(list)
    for r in chosen:
        port = 0 if r["dst_port"] is None else r["dst_port"]  # no ports (GRE): 0, as matched
        key = (units.of(r["src_ip"]), units.of(r["dst_ip"]), r["protocol"], port)
        seen[key].append(r)

    def certain(k: tuple[Unit, Unit, int, int]) -> bool:
        return k in seen and not any(r["direction_uncertain"] for r in seen[k])

    # (initiator, responder, protocol, bidirectional) → ports, rows
    edges: dict[tuple[Unit, Unit, int, bool], set[int]] = defaultdict(set)
    edge_rows: dict[tuple[Unit, Unit, int, bool], list[dict[str, Any]]] = defaultdict(list)
    for k in sorted(seen):
        s, d, proto, port = k
        back = (d, s, proto, port)
        if s != d and certain(k) and certain(back):
            if s > d:
                continue  # the pair is written once, in its canonical orientation
            key = (s, d, proto, True)
            edge_rows[key] += seen[back]
        else:
            key = (s, d, proto, False)
        edges[key].add(port)
        edge_rows[key] += seen[k]

    # bicliques: per (protocol, direction, port range), responders with the same initiators
    by_shape: dict[tuple[int, bool, tuple[tuple[int, int], ...]], dict[Unit, set[Unit]]] = (
        defaultdict(lambda: defaultdict(set))
    )
    for (s, d, proto, bidir), ports in edges.items():
        for rng in port_ranges(ports, port_gap):  # one rule per service (port range)
            by_shape[(proto, bidir, (rng,))][d].add(s)
    shaped: dict[
        tuple[frozenset[Unit], frozenset[Unit], bool, tuple[tuple[int, int], ...]], set[int]
    ] = defaultdict(set)
    for (proto, bidir, pr), reached in by_shape.items():
        by_srcs: dict[frozenset[Unit], set[Unit]] = defaultdict(set)
        for d, initiators in reached.items():
            by_srcs[frozenset(initiators)].add(d)
        for initiator_set, ds in by_srcs.items():
            shaped[(initiator_set, frozenset(ds), bidir, pr)].add(proto)

    groups = _Groups(m, units)
    captures = tuple(c["blake3"] for c in result.captures)
    taken_ids = {r.id for r in m.rules}
    out: list[ProposedRule] = []
    for (srcs, dsts, bidir, pr), protos in sorted(
        shaped.items(), key=lambda kv: (sorted(kv[1]), kv[0][3], sorted(kv[0][0]), sorted(kv[0][1]))
    ):
        ports = {p for lo, hi in pr for p in range(lo, hi + 1)}
        frm = groups.side(srcs, False, ports)
        to = groups.side(dsts, True, ports)
        covered = [  # every (s, d) of the biclique is an edge: look them up, never scan
            r
            for s in srcs
            for d in dsts
            for proto in protos
            for r in edge_rows.get((s, d, proto, bidir), ())
            if pr[0][0] <= (r["dst_port"] or 0) <= pr[0][1]
        ]
        fids = tuple(sorted({r["finding_id"] for r in covered}))
        first = min(r["first_seen"] for r in covered)
        last = max(r["last_seen"] for r in covered)
        names = "-".join(protocol_name(p) for p in sorted(protos))
        portless = not protos & (PORTED | {1, 58})  # GRE, ESP, VRRP: a rule without ports
        if portless:
            pr = ((0, 65535),)  # `ports: any`, the default of such rules
            base = f"observed-{names}"
        else:
            base = f"observed-{names}-{pr[0][0]}" + (f"-{pr[0][1]}" if pr[0][1] != pr[0][0] else "")
        rid, i = base, 2
        while rid in taken_ids:
            rid, i = f"{base}-{i}", i + 1
        taken_ids.add(rid)
        svc = "/".join(protocol_name(p) for p in sorted(protos))
        arrow = "↔" if bidir else "→"
        out.append(
            ProposedRule(
                id=rid,
                from_groups=tuple(frm),
                to_groups=tuple(to),
                protocols=tuple(sorted(protos)),
                ports=pr,
                bidirectional=bidir,
                purpose=f"observed {svc}{'' if portless else ' ' + ', '.join(_pt(p) for p in pr)}: "
                f"{', '.join(frm)} {arrow} {', '.join(to)} (review: name the service)",
                findings=fids,
                window=f"{iso(first)} .. {iso(last)}",
                flows=sum(int(r["flows"]) for r in {r["finding_id"]: r for r in covered}.values()),
                captures=captures,
            )
        )
    named = [
        ProposedGroup(name, "named with --group when proposed; review", units.texts[name])
        for name in sorted(units.texts)
        if any(name in r.from_groups + r.to_groups for r in out)
    ]
    new_groups = sorted([*groups.new.values(), *named], key=lambda g: _natural(g.name))
    vlans = tuple(sorted({r["vlan_id"] for r in chosen if r["vlan_id"] is not None}))
    return Proposal(
        matrix_name=m.name,
        bootstrap=bootstrap,
        groups=tuple(new_groups),
        rules=tuple(out),
        findings=tuple(r["finding_id"] for r in chosen),
        skipped=tuple(skipped),
        vlans=vlans,
    )


def _natural(name: str) -> tuple[str, int]:
    """``observed_2`` before ``observed_10``."""
    head, _, tail = name.rpartition("_")
    return (head, int(tail)) if head and tail.isdigit() else (name, 0)


def _pt(p: tuple[int, int]) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}-{p[1]}"
