"""Static findings in the matrix itself (``flowaudit rules lint``).

Component rules (per-component tables) are compared with firewall rules (the firewall
summary) when a matrix has both: documented ports no firewall rule allows, firewall
rules that allow them between fewer addresses, firewall ranges wider than anything
documented, and protocol mismatches. Within one origin: duplicate, shadowed and
overlapping rules. Also groups no rule uses, groups still without addresses, and
conditional rules. The order of findings is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowaudit.matrix import sets
from flowaudit.matrix.model import (
    Matrix,
    PortRange,
    Rule,
    ports_text,
    protocol_name,
)

KINDS = (
    "missing-firewall-rule",
    "address-mismatch",
    "firewall-wider-than-documented",
    "protocol-mismatch",
    "duplicate-rule",
    "shadowed-rule",
    "overlapping-rules",
    "unreferenced-group",
    "unconfigured-group",
    "conditional-rule",
)


@dataclass(frozen=True)
class LintFinding:
    """One static finding: what kind, which rules, which ports/protocol, and why."""

    kind: str
    rule_ids: tuple[str, ...]
    ports: tuple[PortRange, ...]
    protocol: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rule_ids": list(self.rule_ids),
            "protocol": self.protocol,
            "ports": [list(p) for p in self.ports],
            "message": self.message,
        }

    def sort_key(self) -> tuple[int, tuple[str, ...], int, tuple[PortRange, ...], str]:
        p = -1 if self.protocol is None else self.protocol
        return (KINDS.index(self.kind), self.rule_ids, p, self.ports, self.message)


def _protos(protocols: tuple[int, ...]) -> str:
    return "/".join(protocol_name(p) for p in protocols)


def _ends(r: Rule) -> str:
    arrow = "↔" if r.bidirectional else "→"
    return f"{', '.join(r.from_groups)} {arrow} {', '.join(r.to_groups)}"


def _same_subnet(m: Matrix, r: Rule) -> str | None:
    """The scope subnet holding every address of the rule's groups, if there is one."""
    groups = [m.groups[g] for g in (*r.from_groups, *r.to_groups)]
    if any(not g.addresses for g in groups):
        return None
    ranges = [rng for g in groups for rng in g.ranges]
    for (lo, hi), text in m.scope.parsed:
        if all(lo <= a and b <= hi for a, b in ranges):
            return text
    return None


def _vs_firewall(
    m: Matrix, atoms: sets.Atoms, comp: list[Rule], fw: list[Rule]
) -> list[LintFinding]:
    out: list[LintFinding] = []
    for c in comp:
        want = atoms.forward(c)
        for proto in c.protocols:
            fws = [f for f in fw if proto in f.protocols]
            missing: list[PortRange] = []
            partial: dict[tuple[frozenset[sets.Pair], tuple[str, ...]], list[PortRange]] = {}
            for piece in sets.pieces(c.ports, [p for f in fws for p in f.ports]):
                hit = [f for f in fws if sets.contains(f.ports, (piece,)) and atoms.pairs(f) & want]
                covered = frozenset().union(*(atoms.pairs(f) for f in hit)) & want
                if not covered:
                    missing.append(piece)
                elif covered != want:
                    key = (want - covered, tuple(sorted(f.id for f in hit)))
                    partial.setdefault(key, []).append(piece)
            if missing:
                ports = sets.union(missing)
                note = ""
                subnet = _same_subnet(m, c)
                if subnet:
                    note = (
                        f"; every address of {_ends(c)} is inside {subnet}, so this "
                        "same-subnet traffic crosses no firewall and may need no rule"
                    )
                out.append(LintFinding(
                    "missing-firewall-rule", (c.id,), ports, proto,
                    f"{c.id} documents {protocol_name(proto)} {ports_text(ports)} "
                    f"({_ends(c)}) but no firewall rule allows it{note}",
                ))  # fmt: skip
            for (gap, fw_ids), found in sorted(partial.items(), key=lambda kv: kv[0][1]):
                ports = sets.union(found)
                out.append(LintFinding(
                    "address-mismatch", (c.id, *fw_ids), ports, proto,
                    f"{c.id} documents {protocol_name(proto)} {ports_text(ports)} for "
                    f"{_ends(c)}; the firewall rules ({', '.join(fw_ids)}) do not allow "
                    f"{atoms.pairs_text(gap)}",
                ))  # fmt: skip
    for f in fw:
        near = [c for c in comp if atoms.pairs(c) & atoms.pairs(f)]
        documented = sets.union(*(c.ports for c in near))
        extra = sets.subtract(f.ports, documented)
        if extra:
            out.append(LintFinding(
                "firewall-wider-than-documented", (f.id,), extra,
                f.protocols[0] if len(f.protocols) == 1 else None,
                f"{f.id} allows {_protos(f.protocols)} {ports_text(f.ports)} ({_ends(f)}); "
                f"{ports_text(extra)} documented in no component table",
            ))  # fmt: skip
        for proto in f.protocols:
            same = sets.union(*(c.ports for c in near if proto in c.protocols))
            wrong = sets.subtract(sets.intersect(f.ports, documented), same)
            if not wrong:
                continue
            others = sorted(
                c.id for c in near if proto not in c.protocols and sets.intersect(c.ports, wrong)
            )
            other_protos = sorted({p for c in near for p in c.protocols if p != proto})
            out.append(LintFinding(
                "protocol-mismatch", (f.id, *others), wrong, proto,
                f"{f.id} allows {protocol_name(proto)} on {ports_text(wrong)}, documented only "
                f"as {_protos(tuple(other_protos))} ({', '.join(others)})",
            ))  # fmt: skip
    return out


def _pairwise(atoms: sets.Atoms, rules: list[Rule]) -> list[LintFinding]:
    out: list[LintFinding] = []
    for i, a in enumerate(rules):
        for b in rules[i + 1 :]:
            if a.origin != b.origin:
                continue
            common = tuple(p for p in a.protocols if p in b.protocols)
            ports = sets.intersect(a.ports, b.ports)
            pa_, pb_ = atoms.pairs(a), atoms.pairs(b)
            if not common or not ports or not pa_ & pb_:
                continue
            proto = common[0] if len(common) == 1 else None
            a_in_b = set(a.protocols) <= set(b.protocols) and sets.contains(b.ports, a.ports)
            b_in_a = set(b.protocols) <= set(a.protocols) and sets.contains(a.ports, b.ports)
            a_in_b = a_in_b and pa_ <= pb_
            b_in_a = b_in_a and pb_ <= pa_
            what = f"{_protos(common)} {ports_text(ports)}"
            if a_in_b and b_in_a:
                out.append(LintFinding(
                    "duplicate-rule", (a.id, b.id), ports, proto,
                    f"{a.id} and {b.id} allow exactly the same traffic ({what}, {_ends(a)})",
                ))  # fmt: skip
            elif a_in_b or b_in_a:
                inner, outer = (a, b) if a_in_b else (b, a)
                out.append(LintFinding(
                    "shadowed-rule", (inner.id, outer.id), inner.ports, proto,
                    f"{inner.id} ({what}, {_ends(inner)}) is shadowed by {outer.id} "
                    f"({_ends(outer)}): every flow it allows, {outer.id} allows too",
                ))  # fmt: skip
            else:
                shared = atoms.pairs_text(pa_ & pb_)
                out.append(LintFinding(
                    "overlapping-rules", (a.id, b.id), ports, proto,
                    f"{a.id} and {b.id} both allow {what} for {shared}",
                ))  # fmt: skip
    return out


def _groups(m: Matrix) -> list[LintFinding]:
    out: list[LintFinding] = []
    for g in m.groups.values():
        users = tuple(r.id for r in m.rules if g.name in (*r.from_groups, *r.to_groups))
        if not users:
            out.append(LintFinding(
                "unreferenced-group", (), (), None, f"group {g.name!r} is used by no rule",
            ))  # fmt: skip
        if not g.addresses:
            out.append(LintFinding(
                "unconfigured-group", users, (), None,
                f"group {g.name!r} has no addresses yet (the matrix marks it "
                f"needs_configuration); {len(users)} rule(s) cannot match traffic until a site "
                f"overlay or --group {g.name}=CIDR[,CIDR] supplies them",
            ))  # fmt: skip
    return out


def lint_matrix(m: Matrix) -> list[LintFinding]:
    """All static findings of a matrix, in a deterministic order."""
    atoms = sets.Atoms(m)
    comp = [r for r in m.rules if r.origin == "component"]
    fw = [r for r in m.rules if r.origin == "firewall"]
    findings: list[LintFinding] = []
    if comp and fw:
        findings += _vs_firewall(m, atoms, comp, fw)
    findings += _pairwise(atoms, list(m.rules))
    findings += _groups(m)
    for r in m.rules:
        if r.condition:
            findings.append(LintFinding(
                "conditional-rule", (r.id,), r.ports,
                r.protocols[0] if len(r.protocols) == 1 else None,
                f"{r.id} ({_protos(r.protocols)} {ports_text(r.ports)}) applies only "
                f"{r.condition}: confirm the deployment needs it, otherwise remove it",
            ))  # fmt: skip
    return sorted(findings, key=LintFinding.sort_key)
