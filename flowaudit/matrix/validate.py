"""Validation of one matrix or overlay YAML document into model objects.

Every problem is recorded with ``file:line`` and, for rules, the rule id, and all
problems of a document are reported together (``Problems.raise_if_any``). Unknown keys
are errors everywhere, so a typo cannot silently widen or drop a rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowaudit.errors import RulesError
from flowaudit.matrix.model import (
    ORIGINS,
    PORTED,
    HostGroup,
    PodAllow,
    PodPolicy,
    PortRange,
    Provenance,
    Rule,
    Scope,
    merge_ranges,
    parse_address,
    parse_port_range,
    parse_protocol,
)
from flowaudit.matrix.yamlio import LineDict, LineList

MATRIX_KEYS = {"name", "description", "scope", "groups", "rules", "pods"}
PODS_KEYS = {"description", "cidrs", "allow"}
POD_ALLOW_KEYS = {"protocol", "ports", "purpose"}
MATRIX_REQUIRED = ("name", "scope", "groups", "rules")
OVERLAY_KEYS = {"overlay", "description", "groups"}
SCOPE_KEYS = {"vlans", "subnets"}
GROUP_KEYS = {"description", "addresses", "needs_configuration"}
OVERLAY_GROUP_KEYS = {"addresses"}
RULE_KEYS = {
    "id",
    "from",
    "to",
    "protocol",
    "ports",
    "purpose",
    "bidirectional",
    "condition",
    "provenance",
}
RULE_REQUIRED = ("id", "from", "to", "protocol", "purpose", "provenance")
PROVENANCE_KEYS = {"table", "row", "origin"}
#: origin "observed" (a rule proposed from traffic): table and row optional, these allowed
OBSERVED_KEYS = {"findings", "window", "flows", "captures"}

GROUP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass
class Problems:
    """Collects validation problems as ``file:line: [rule 'id': ]message`` lines."""

    items: list[str] = field(default_factory=list)

    def add(self, path: Path | str, line: int, message: str, rule_id: str | None = None) -> None:
        where = f"{path}:{line}" if line else str(path)
        who = f"rule {rule_id!r}: " if rule_id else ""
        self.items.append(f"{where}: {who}{message}")

    def raise_if_any(self) -> None:
        if not self.items:
            return
        head = "" if len(self.items) == 1 else f"{len(self.items)} problems in the matrix:\n"
        raise RulesError(head + "\n".join(self.items), hint="see rules/README.md for the format")


def _line(data: Any, key: str) -> int:
    return data.line_of(key) if isinstance(data, LineDict) else 0


def check_keys(
    data: LineDict, allowed: set[str], path: Path, problems: Problems, what: str, rid: str | None
) -> None:
    """Record every key of ``data`` that is not in ``allowed``."""
    for key in data:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            problems.add(
                path, data.line_of(key), f"unknown key {key!r} in {what} (known: {known})", rid
            )


def as_list(value: Any) -> tuple[list[Any], list[int] | None]:
    """A scalar or list → (items, per-item lines or None)."""
    if isinstance(value, LineList):
        return list(value), list(value.item_lines)
    if isinstance(value, list):
        return list(value), None
    return [value], None


def addresses(
    value: Any, path: Path | str, line: int, problems: Problems, what: str
) -> tuple[str, ...]:
    """Validate a list of address specs; returns their canonical text."""
    if value is None:
        return ()
    items, lines = as_list(value)
    out: list[str] = []
    for i, item in enumerate(items):
        at = lines[i] if lines else line
        if not isinstance(item, str):
            problems.add(path, at, f"{what}: address {item!r} must be a string")
            continue
        try:
            out.append(parse_address(item)[1])
        except ValueError as e:
            problems.add(path, at, f"{what}: {e}")
    return tuple(dict.fromkeys(out))


def scope(data: Any, path: Path, line: int, problems: Problems) -> Scope:
    if not isinstance(data, LineDict):
        problems.add(path, line, "scope must be a mapping with vlans and subnets")
        return Scope((), ())
    check_keys(data, SCOPE_KEYS, path, problems, "scope", None)
    vlans: list[int] = []
    items, lines = as_list(data.get("vlans", []))
    for i, v in enumerate(items):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 4095:
            at = lines[i] if lines else data.line_of("vlans")
            problems.add(path, at, f"scope.vlans: {v!r} is not a VLAN id 0-4095")
        else:
            vlans.append(v)
    subnets = addresses(data.get("subnets"), path, data.line_of("subnets"), problems, "scope")
    return Scope(tuple(dict.fromkeys(vlans)), subnets)


def pods(data: Any, path: Path, line: int, problems: Problems) -> PodPolicy | None:
    """The optional ``pods:`` section: pod CIDRs and the inner protocols/ports allowed."""
    if data is None:
        return None
    if not isinstance(data, LineDict):
        problems.add(path, line, "pods must be a mapping with cidrs and allow")
        return None
    check_keys(data, PODS_KEYS, path, problems, "pods", None)
    cidrs = addresses(data.get("cidrs"), path, data.line_of("cidrs"), problems, "pods")
    if not cidrs:
        problems.add(path, data.line_of("cidrs") or line, "pods: 'cidrs' names no address")
    desc = data.get("description", "")
    allow: list[PodAllow] = []
    items, lines = as_list(data.get("allow", []))
    for i, item in enumerate(items):
        at = lines[i] if lines else data.line_of("allow")
        if not isinstance(item, LineDict):
            problems.add(path, at, "pods.allow: each entry is a mapping (protocol, ports)")
            continue
        check_keys(item, POD_ALLOW_KEYS, path, problems, "pods.allow entry", None)
        protos: list[int] = []
        pitems, plines = as_list(item.get("protocol", []))
        for j, pv in enumerate(pitems):
            try:
                protos.append(parse_protocol(pv))
            except ValueError as e:
                problems.add(path, plines[j] if plines else item.line_of("protocol"), str(e))
        if not protos:
            problems.add(path, item.line, "pods.allow: an entry needs 'protocol'")
            continue
        protocols = tuple(sorted(set(protos)))
        ports = _ports(item.get("ports"), item, protocols, path, problems, "pods.allow")
        purpose = item.get("purpose", "")
        allow.append(PodAllow(protocols, ports, str(purpose)))
    return PodPolicy(cidrs, tuple(allow), " ".join(str(desc).split()))


def groups(data: Any, path: Path, line: int, problems: Problems) -> dict[str, HostGroup]:
    out: dict[str, HostGroup] = {}
    if not isinstance(data, LineDict):
        problems.add(path, line, "groups must be a mapping of group name to group")
        return out
    for name, body in data.items():
        at = data.line_of(name)
        if not GROUP_NAME.match(name):
            problems.add(path, at, f"bad group name {name!r}")
        if body is None:
            body = LineDict()
        if not isinstance(body, LineDict):
            problems.add(path, at, f"group {name!r} must be a mapping")
            continue
        check_keys(body, GROUP_KEYS, path, problems, f"group {name!r}", None)
        needs = body.get("needs_configuration", False)
        if not isinstance(needs, bool):
            problems.add(path, body.line_of("needs_configuration"), "must be true or false")
            needs = False
        desc = body.get("description", "")
        if not isinstance(desc, str):
            problems.add(path, body.line_of("description"), "description must be a string")
            desc = str(desc)
        addrs = addresses(
            body.get("addresses"), path, body.line_of("addresses"), problems, f"group {name!r}"
        )
        if not addrs and not needs and not body.get("addresses"):
            problems.add(
                path,
                at,
                f"group {name!r} has no addresses; give some or mark it needs_configuration: true",
            )
        out[name] = HostGroup(name, desc.strip(), addrs, needs)
    return out


def _group_refs(
    value: Any, key: str, data: LineDict, path: Path, known: dict[str, HostGroup], p: Problems
) -> tuple[str, ...]:
    rid = data.get("id") if isinstance(data.get("id"), str) else None
    items, lines = as_list(value)
    if not items:
        p.add(path, data.line_of(key), f"{key!r} names no group", rid)
    out: list[str] = []
    for i, g in enumerate(items):
        at = lines[i] if lines else data.line_of(key)
        if not isinstance(g, str) or g not in known:
            hint = ", ".join(sorted(known))
            p.add(path, at, f"unknown group {g!r} in {key!r} (defined: {hint})", rid)
        else:
            out.append(g)
    return tuple(dict.fromkeys(out))


def _ports(
    value: Any, data: LineDict, protos: tuple[int, ...], path: Path, p: Problems, rid: str
) -> tuple[PortRange, ...]:
    if value is None:
        if any(x in PORTED for x in protos):
            p.add(path, data.line, "tcp/udp/sctp rules need 'ports' (or ports: any)", rid)
        return ((0, 65535),)
    if value == "any":
        return ((0, 65535),)
    items, lines = as_list(value)
    out: list[PortRange] = []
    for i, item in enumerate(items):
        try:
            out.append(parse_port_range(item))
        except ValueError as e:
            p.add(path, lines[i] if lines else data.line_of("ports"), str(e), rid)
    if not items:
        p.add(path, data.line_of("ports"), "'ports' is empty", rid)
    return merge_ranges(out)


def rule(data: Any, path: Path, line: int, known: dict[str, HostGroup], p: Problems) -> Rule | None:
    """Validate one rule mapping; None when it has problems (all recorded)."""
    if not isinstance(data, LineDict):
        p.add(path, line, "each rule must be a mapping")
        return None
    before = len(p.items)
    rid_value = data.get("id")
    rid = rid_value if isinstance(rid_value, str) else f"<line {data.line}>"
    if not isinstance(rid_value, str) or not RULE_ID.match(rid_value):
        p.add(path, data.line_of("id"), f"bad or missing rule id {rid_value!r}", None)
    check_keys(data, RULE_KEYS, path, p, "rule", rid)
    for key in RULE_REQUIRED:
        if key not in data:
            p.add(path, data.line, f"missing required key {key!r}", rid)
    src = _group_refs(data.get("from", []), "from", data, path, known, p)
    dst = _group_refs(data.get("to", []), "to", data, path, known, p)
    protos: list[int] = []
    items, lines = as_list(data.get("protocol", []))
    for i, item in enumerate(items):
        try:
            protos.append(parse_protocol(item))
        except ValueError as e:
            p.add(path, lines[i] if lines else data.line_of("protocol"), str(e), rid)
    protocols = tuple(sorted(set(protos)))
    ports = _ports(data.get("ports"), data, protocols, path, p, rid)
    purpose = data.get("purpose", "")
    if not isinstance(purpose, str) or not purpose.strip():
        p.add(path, data.line_of("purpose"), "'purpose' must be a non-empty string", rid)
        purpose = ""
    bidir = data.get("bidirectional", False)
    if not isinstance(bidir, bool):
        p.add(path, data.line_of("bidirectional"), "'bidirectional' must be true or false", rid)
    cond = data.get("condition")
    if cond is not None and (not isinstance(cond, str) or not cond.strip()):
        p.add(path, data.line_of("condition"), "'condition' must be text or null", rid)
    prov = _provenance(data.get("provenance"), data, path, p, rid)
    if len(p.items) > before or prov is None:
        return None
    assert isinstance(rid_value, str)
    return Rule(
        id=rid_value,
        from_groups=src,
        to_groups=dst,
        protocols=protocols,
        ports=ports,
        purpose=" ".join(purpose.split()),
        bidirectional=bool(bidir),
        condition=cond.strip() if isinstance(cond, str) else None,
        origin=prov.origin,
        provenance=prov,
        source=f"{path}:{data.line}",
    )


def _provenance(value: Any, data: LineDict, path: Path, p: Problems, rid: str) -> Provenance | None:
    if value is None:
        return None  # the missing key is already reported
    if not isinstance(value, LineDict):
        p.add(path, data.line_of("provenance"), "'provenance' must be a mapping", rid)
        return None
    table, row, origin = value.get("table"), value.get("row"), value.get("origin")
    observed = origin == "observed"
    allowed = PROVENANCE_KEYS | OBSERVED_KEYS if observed else PROVENANCE_KEYS
    check_keys(value, allowed, path, p, "provenance", rid)
    ok = True
    # an observed rule may omit both table and row (it comes from traffic, not a table)
    from_seed = not (observed and table is None and row is None)
    if from_seed and (not isinstance(table, str) or not table.strip()):
        p.add(path, value.line_of("table"), "provenance.table must name the seed table", rid)
        ok = False
    bad_row = isinstance(row, bool) or not isinstance(row, str | int) or str(row).strip() == ""
    if from_seed and bad_row:
        p.add(path, value.line_of("row"), "provenance.row must be the row text or number", rid)
        ok = False
    if not from_seed:
        table, row = "", ""
    if origin not in ORIGINS:
        p.add(path, value.line_of("origin"), f"provenance.origin must be one of {ORIGINS}", rid)
        ok = False
    extra = _observed(value, path, p, rid) if observed else ((), "", 0, ())
    if not ok or extra is None:
        return None
    return Provenance(str(table).strip(), str(row).strip(), str(origin), *extra)


def _observed(
    value: LineDict, path: Path, p: Problems, rid: str
) -> tuple[tuple[str, ...], str, int, tuple[str, ...]] | None:
    """The observed-origin keys: findings and captures (lists of text), window, flows."""
    lists: list[tuple[str, ...]] = []
    for key in ("findings", "captures"):
        items = value.get(key, [])
        if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
            p.add(path, value.line_of(key), f"provenance.{key} must be a list of text", rid)
            return None
        lists.append(tuple(items))
    window, flows = value.get("window", ""), value.get("flows", 0)
    if not isinstance(window, str):
        p.add(path, value.line_of("window"), "provenance.window must be text", rid)
        return None
    if isinstance(flows, bool) or not isinstance(flows, int) or flows < 0:
        p.add(path, value.line_of("flows"), "provenance.flows must be a count", rid)
        return None
    return lists[0], window, flows, lists[1]


def overlay_groups(
    data: LineDict, path: Path, problems: Problems
) -> dict[str, tuple[tuple[str, ...], int]]:
    """An overlay document's groups → {name: (addresses, line)}."""
    check_keys(data, OVERLAY_KEYS, path, problems, "overlay", None)
    body = data.get("groups")
    out: dict[str, tuple[tuple[str, ...], int]] = {}
    if not isinstance(body, LineDict):
        problems.add(path, _line(data, "groups"), "overlay needs a 'groups' mapping")
        return out
    for name, g in body.items():
        at = body.line_of(name)
        if not isinstance(g, LineDict):
            problems.add(path, at, f"overlay group {name!r} must be a mapping with addresses")
            continue
        check_keys(g, OVERLAY_GROUP_KEYS, path, problems, f"overlay group {name!r}", None)
        addrs = addresses(g.get("addresses"), path, g.line_of("addresses"), problems, name)
        if not addrs:
            problems.add(path, at, f"overlay group {name!r} gives no addresses")
        out[name] = (addrs, at)
    return out
