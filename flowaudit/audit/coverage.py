"""The matrix coverage picture: source group × destination service, approved vs observed.

One cell per (source, service) that the matrix approves or that traffic used:

- ``used``: approved, and traffic on every port of the service between these groups;
- ``partly-used``: approved, traffic on some of its ports only;
- ``unused``: approved, no traffic on it, although the rule's hosts did talk otherwise;
- ``unobserved``: approved, no traffic, and the rule's hosts never talked at all in the
  window: the capture point may not see them, so "unused" is not proven;
- ``unconfigured``: approved, but a group has no addresses yet (not observable);
- ``unapproved``: traffic outside the matrix (violations) lands here; ``approved`` says
  whether the same cell also holds an approved rule (e.g. off-VLAN or unknown-host traffic
  to an approved service).

A service is (destination group, protocol, ports) as the rules write it. Approved usage is
attributed by group membership (an address may be in several groups); a violation's hosts
are placed in the smallest group that holds them, else ``unknown (in scope)`` or ``out of
scope``. Violations to ports no rule names get their own service columns, at most
``MAX_EXTRA_SERVICES`` (the rest fold into ``<group> other``). Works on small data only
(rules × groups), in plain Python.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from flowaudit._util.arrow import pylist
from flowaudit.matrix.hosts import OUTSIDE, UNKNOWN, HostIndex
from flowaudit.matrix.model import (
    PORTED,
    port_complement,
    ports_text,
    protocol_name,
)

if TYPE_CHECKING:
    from flowaudit.audit.engine import SqlEngine
    from flowaudit.matrix import Matrix

MAX_EXTRA_SERVICES = 40
STATUSES = ("used", "partly-used", "unused", "unobserved", "unconfigured", "unapproved")

COVERAGE_SCHEMA = pa.schema(
    [
        ("row", pa.int32()),
        ("col", pa.int32()),
        ("source", pa.string()),
        ("service", pa.string()),
        ("dst_group", pa.string()),
        ("protocol", pa.uint8()),
        ("ports", pa.string()),
        ("status", pa.string()),
        ("approved", pa.bool_()),
        ("rules", pa.list_(pa.string())),
        ("findings", pa.list_(pa.string())),
        ("flows", pa.int64()),
        ("unused_ports", pa.string()),
        ("purpose", pa.string()),
        # inner conversations (overlay rows) the cell's tunnel rules carried
        ("inner", pa.int64()),
    ]
)

Ports = tuple[tuple[int, int], ...]
ServiceKey = tuple[str, int, Ports]


@dataclass
class _Cell:
    rules: set[str] = field(default_factory=set)
    purposes: list[str] = field(default_factory=list)
    used_ports: set[int] = field(default_factory=set)
    flows: int = 0
    findings: list[str] = field(default_factory=list)
    violation_flows: int = 0
    unconfigured: bool = False
    placed: bool = False  # holds violations placed by coverage_table (findings come later)


def _service_label(dst: str, proto: int, ports: Ports) -> str:
    if proto not in PORTED or not ports:
        return f"{dst} {protocol_name(proto)}"
    return f"{dst} {protocol_name(proto)}/{ports_text(ports)}"


_OUTSIDE_CLASSES = frozenset(
    {"internet", "private", "multicast", "link-local", "loopback", "unspecified"}
)


def _placed(side: str, ip: str, hosts: HostIndex) -> str:
    """A finding's side (smallest group, else address class) as the grid's row/column."""
    if side in hosts.ranges:
        return side
    if side == "site":
        return UNKNOWN
    if side in _OUTSIDE_CLASSES:
        return OUTSIDE
    return hosts.place(ip)  # a broadcast address may be a scope subnet's


def _approved_cells(
    m: Matrix, usage: pa.Table, hosts: HostIndex
) -> dict[tuple[str, ServiceKey], _Cell]:
    """The cells the rules approve, with the traffic that used them."""
    cells: dict[tuple[str, ServiceKey], _Cell] = defaultdict(_Cell)
    by_rule: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for u in pylist(usage):
        by_rule[(u["rule_id"], u["protocol"])].append(u)

    for r in m.rules:
        orientations = [(r.from_groups, r.to_groups, False)]
        if r.bidirectional and r.from_groups != r.to_groups:
            orientations.append((r.to_groups, r.from_groups, True))
        for proto in r.protocols:
            ports: Ports = tuple(r.ports) if proto in PORTED else ()
            for froms, dests, reverse in orientations:
                for g in froms:
                    for h in dests:
                        cell = cells[(g, (h, proto, ports))]
                        cell.rules.add(r.id)
                        if r.purpose not in cell.purposes:
                            cell.purposes.append(r.purpose)
                        if not (m.groups[g].configured and m.groups[h].configured):
                            cell.unconfigured = True
                            continue
                        for u in by_rule.get((r.id, proto), ()):
                            init, resp = u["init_ip"], u["resp_ip"]
                            if reverse:
                                init, resp = resp, init
                            fwd = hosts.member(init, g) and hosts.member(resp, h)
                            back = (
                                r.bidirectional
                                and not reverse
                                and hosts.member(resp, g)
                                and hosts.member(init, h)
                            )
                            if fwd or back:
                                cell.used_ports.add(u["port"] if u["port"] is not None else -1)
                                cell.flows += int(u["flows"])
    return cells


def _narrow(s: ServiceKey) -> tuple[int, Ports]:
    """How wide a service's ports are (no ports: 0), then its ports: the narrowest first."""
    return (sum(hi - lo + 1 for lo, hi in s[2]), s[2])


class _Placer:
    """Where violations land: the service column of a (destination, protocol, port), in the
    order violations are listed (the extra columns beyond the cap fold into ``other``)."""

    def __init__(self, cells: dict[tuple[str, ServiceKey], _Cell]) -> None:
        self.approved = {svc for (_, svc) in cells}
        # the approved services by (destination, protocol), narrowest first (deterministic
        # on ties): a lookup looks at those only
        self.by_end: dict[tuple[str, int], list[ServiceKey]] = {}
        for svc in sorted(self.approved, key=_narrow):
            self.by_end.setdefault((svc[0], svc[1]), []).append(svc)
        self.ports: dict[tuple[str, int], Any] = {}  # per end: each port's narrowest service
        self.extra: dict[ServiceKey, None] = {}
        self.narrowest: dict[tuple[str, int, int | None], ServiceKey | None] = {}

    def _fit(self, dst: str, proto: int, port: int | None) -> ServiceKey | None:
        """The narrowest approved service of (dst, proto) holding the port, from a table of
        the 65,536 ports painted widest service first (so the narrowest one stays)."""
        import numpy as np

        services = self.by_end.get((dst, proto), [])
        p = port or 0
        if not 0 <= p <= 0xFFFF:  # not a port: look at each service
            fits = (s for s in services if not s[2] or any(lo <= p <= hi for lo, hi in s[2]))
            return next(fits, None)
        table = self.ports.get((dst, proto))
        if table is None:
            table = np.full(0x10000, -1, np.int32)
            for i in range(len(services) - 1, -1, -1):
                for lo, hi in services[i][2] or ((0, 0xFFFF),):
                    table[max(lo, 0) : min(hi, 0xFFFF) + 1] = i
            self.ports[(dst, proto)] = table
        i = int(table[p])
        return services[i] if i >= 0 else None

    def service(self, dst: str, proto: int, port: int | None) -> ServiceKey:
        fit_key = (dst, proto, port)
        if fit_key not in self.narrowest:
            self.narrowest[fit_key] = self._fit(dst, proto, port)
        svc = self.narrowest[fit_key]
        if svc is None:
            ports = ((port, port),) if proto in PORTED and port is not None else ()
            svc = (dst, proto, ports)
            if svc not in self.extra and len(self.extra) >= MAX_EXTRA_SERVICES:
                svc = (dst, -1, ())  # folded: "<dst> other"
            self.extra[svc] = None
        return svc


def coverage_rows(
    m: Matrix,
    usage: pa.Table,
    violations: pa.Table,
    observed: set[str] | None = None,
    inner: dict[str, int] | None = None,
) -> list[tuple[Any, ...]]:
    """The coverage cells as COVERAGE_SCHEMA rows (row/col give the grid order).

    ``observed``: the rules whose hosts exchanged any traffic in the window (the audit's
    rule_observability); None means all of them. ``inner``: inner conversations (overlay
    rows) per tunnel rule. Places every violation in Python
    (``coverage_table`` does the same from the audit's engine, for many violations)."""
    hosts = HostIndex(m)
    cells = _approved_cells(m, usage, hosts)
    placer = _Placer(cells)
    cols = ["finding_id", "src_ip", "dst_ip", "protocol", "dst_port", "flows"]
    sided = "src_side" in violations.column_names
    if sided:  # the audit's sides (finding groups) place the hosts without a lookup
        cols += ["src_side", "dst_side"]
    for v in pylist(violations.select(cols)):
        if sided:
            src = _placed(v["src_side"], v["src_ip"], hosts)
            dst = _placed(v["dst_side"], v["dst_ip"], hosts)
        else:
            src, dst = hosts.place(v["src_ip"]), hosts.place(v["dst_ip"])
        cell = cells[(src, placer.service(dst, v["protocol"], v["dst_port"]))]
        cell.findings.append(v["finding_id"])
        cell.violation_flows += int(v["flows"])
    grid = _grid(cells, hosts, observed, inner)
    return [(*head, findings, *tail) for _, head, findings, tail in grid]


Row = tuple[Any, ...]


def _grid(
    cells: dict[tuple[str, ServiceKey], _Cell],
    hosts: HostIndex,
    observed: set[str] | None,
    inner: dict[str, int] | None = None,
) -> list[tuple[tuple[str, ServiceKey], Row, list[str], Row]]:
    """Each cell in grid order: its key and its COVERAGE_SCHEMA row as (the columns before
    ``findings``, its findings, the columns after)."""
    group_rank = {g: i for i, g in enumerate(hosts.order)}
    group_rank[UNKNOWN], group_rank[OUTSIDE] = len(group_rank), len(group_rank) + 1
    sources = sorted({s for s, _ in cells}, key=lambda g: group_rank[g])
    services = sorted(
        {svc for _, svc in cells},
        key=lambda s: (group_rank[s[0]], s[1] < 0, s[2][0][0] if s[2] else -1, s[1], s[2]),
    )
    row_of = {s: i for i, s in enumerate(sources)}
    col_of = {s: i for i, s in enumerate(services)}
    out = []
    for (src, svc), c in sorted(cells.items(), key=lambda kv: (row_of[kv[0][0]], col_of[kv[0][1]])):
        dst, proto, ports = svc
        approved = bool(c.rules)
        unused_ports = port_complement(ports, c.used_ports) if approved and ports else []
        if c.findings or c.violation_flows or c.placed:
            status = "unapproved"
        elif c.unconfigured and not c.flows:
            status = "unconfigured"
        elif not c.used_ports:
            seen = observed is None or any(r in observed for r in c.rules)
            status = "unused" if seen else "unobserved"
        elif unused_ports:
            status = "partly-used"
        else:
            status = "used"
        label = f"{dst} other" if proto < 0 else _service_label(dst, proto, ports)
        row = (
            row_of[src],
            col_of[svc],
            src,
            label,
            dst,
            None if proto < 0 else proto,
            ports_text(ports) if ports else "",
            status,
            approved,
            sorted(c.rules),
        )
        tail = (
            c.flows + c.violation_flows,
            ports_text(tuple(unused_ports)) if unused_ports else "",
            "; ".join(c.purposes),
            sum((inner or {}).get(r, 0) for r in c.rules),
        )
        out.append(((src, svc), row, c.findings, tail))
    return out


COVERAGE_KEYS = pa.schema(
    [
        ("src_side", pa.string()),
        ("src_cell", pa.int32()),
        ("dst_side", pa.string()),
        ("dst_cell", pa.int32()),
        ("protocol", pa.uint8()),
        ("dst_port", pa.uint16()),
        ("cell", pa.int32()),
    ]
)


def coverage_table(
    eng: SqlEngine,
    m: Matrix,
    usage: pa.Table,
    observed: set[str] | None = None,
    inner: dict[str, int] | None = None,
) -> pa.Table:
    """``coverage_rows`` for the violations registered on ``eng`` as ``violation_list``
    (with their sides, cells and list order ``ord``): placed once per key of
    coverage_keys.sql (sides, cells, protocol, port; a cell's first address stands for
    all of its addresses), and each grid cell's findings listed by coverage_findings.sql,
    so a million violations never become Python objects."""
    from flowaudit._util.arrow import ints
    from flowaudit.audit.rows import rows_table
    from flowaudit.matrix.model import addr_text

    hosts = HostIndex(m)
    cells = _approved_cells(m, usage, hosts)
    placer = _Placer(cells)
    index: dict[tuple[str, ServiceKey], int] = {}
    where: dict[tuple[str, int], str] = {}
    mapping = []
    for k in eng.run("coverage_keys").to_pylist():
        ends = []
        for e in ("src", "dst"):
            key = (k[f"{e}_side"], k[f"{e}_cell"])
            if key not in where:
                first = addr_text(int.from_bytes(k[f"{e}_lo"], "big"))  # the cell's first address
                where[key] = _placed(key[0], first, hosts)
            ends.append(where[key])
        at = (ends[0], placer.service(ends[1], k["protocol"], k["dst_port"]))
        cells[at].placed = True
        n = index.setdefault(at, len(index))
        mapping.append((*(k[f.name] for f in list(COVERAGE_KEYS)[:6]), n))
    eng.register_table("coverage_keys", rows_table(COVERAGE_KEYS, mapping))
    found = eng.run("coverage_findings")
    flows_of = dict(
        zip(found.column("cell").to_pylist(), found.column("flows").to_pylist(), strict=True)
    )
    for at, n in index.items():
        cells[at].violation_flows = int(flows_of.get(n, 0))
    grid = _grid(cells, hosts, observed, inner)
    # each grid cell's row of `found`, or the empty list appended after its last row
    row_of = {n: i for i, n in enumerate(found.column("cell").to_pylist())}
    empty = len(row_of)
    take = [row_of.get(index.get(at, -1), empty) for at, _, _, _ in grid]
    lists = found.column("findings").combine_chunks()
    none = pa.ListArray.from_arrays(ints(pa.int32(), [0, 0]), pa.nulls(0, pa.string()))
    findings = pa.concat_arrays([lists.cast(none.type), none]).take(ints(pa.int64(), take))
    schema = pa.schema([f for f in COVERAGE_SCHEMA if f.name != "findings"])
    # built from buffers: inserting the grid's rows into the engine took ~1 ms a row
    table = rows_table(schema, [(*head, *tail) for _, head, _, tail in grid])
    return table.add_column(COVERAGE_SCHEMA.get_field_index("findings"), "findings", findings)


__all__ = [
    "COVERAGE_KEYS",
    "COVERAGE_SCHEMA",
    "OUTSIDE",
    "STATUSES",
    "UNKNOWN",
    "coverage_rows",
    "coverage_table",
]
