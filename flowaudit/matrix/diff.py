"""``rules diff``: what a matrix change allows and revokes, group and rule changes.

Both matrices' rules are expanded to what they allow: (initiator atom, responder atom,
protocol) → responder ports, where atoms are the address intervals cut at every group
boundary of *both* matrices (a group with no address yet is one symbolic atom), and
bidirectional rules allow both orientations. The difference, port set by port set, is
what the change allows and revokes; rows are then folded (initiators with the same
responders, protocol, ports and rules share a row). Group address changes and rule
changes (fields, provenance) are listed by name and id. Which observed flows change
verdict needs a store and the audit: ``flowaudit.api.diff_rules`` adds it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from flowaudit.matrix import sets
from flowaudit.matrix.model import Matrix, Rule, range_text

Atom = tuple[int, int, str]  # (lo, hi, "") for addresses; (0, 0, name) for a symbolic group
Key = tuple[Atom, Atom, int]


@dataclass(frozen=True)
class RulesDiff:
    """A matrix change: ``access`` rows (allowed / revoked), ``groups`` whose addresses
    changed, ``rules`` added, removed, changed or with a new provenance, and, with a store,
    ``verdicts``: the observed findings that appear or go away."""

    old: dict[str, str]
    new: dict[str, str]
    access: tuple[dict[str, Any], ...]
    groups: tuple[dict[str, Any], ...]
    rules: tuple[dict[str, Any], ...]
    verdicts: tuple[dict[str, Any], ...] | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not (self.access or self.groups or self.rules or self.verdicts)

    def with_verdicts(self, rows: Iterable[dict[str, Any]]) -> RulesDiff:
        return replace(self, verdicts=tuple(rows))

    def to_text(self) -> str:
        from flowaudit.matrix.diff_render import render_text

        return render_text(self)

    def to_markdown(self) -> str:
        """For a change-request ticket (what ``rules diff --format markdown`` prints)."""
        from flowaudit.matrix.diff_render import render_markdown

        return render_markdown(self)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "old": self.old,
            "new": self.new,
            "access": list(self.access),
            "groups": list(self.groups),
            "rules": list(self.rules),
            "verdicts": None if self.verdicts is None else list(self.verdicts),
        }


def _atoms(ranges: Iterable[tuple[int, int]], points: list[int]) -> list[Atom]:
    out: list[Atom] = []
    for lo, hi in ranges:
        start = lo
        for p in [*(p for p in points if lo < p <= hi), hi + 1]:
            out.append((start, p - 1, ""))
            start = p
    return out


class _Expand:
    def __init__(self, a: Matrix, b: Matrix) -> None:
        bounds = {rg for m in (a, b) for g in m.groups.values() for rg in g.ranges}
        self.points = sorted({p for lo, hi in bounds for p in (lo, hi + 1)})

    def group(self, m: Matrix, name: str) -> list[Atom]:
        g = m.groups[name]
        if not g.configured:
            return [(0, 0, name)]
        return _atoms(sets.union(g.ranges), self.points)

    def allowed(self, m: Matrix) -> dict[Key, list[tuple[str, tuple[tuple[int, int], ...]]]]:
        out: dict[Key, list[tuple[str, tuple[tuple[int, int], ...]]]] = defaultdict(list)
        for r in m.rules:
            src = [a for g in r.from_groups for a in self.group(m, g)]
            dst = [a for g in r.to_groups for a in self.group(m, g)]
            pairs = {(s, d) for s in src for d in dst}
            if r.bidirectional:
                pairs |= {(d, s) for s, d in pairs}
            for s, d in pairs:
                for proto in r.protocols:
                    out[(s, d, proto)].append((r.id, r.ports))
        return out


def atom_text(a: Atom) -> str:
    return f"<{a[2]}>" if a[2] else range_text(a[0], a[1])


def _groups_of(m: Matrix, a: Atom) -> list[str]:
    if a[2]:
        return [a[2]]
    return [
        g.name for g in m.groups.values() if any(lo <= a[0] and a[1] <= hi for lo, hi in g.ranges)
    ]


def _access(old: Matrix, new: Matrix) -> list[dict[str, Any]]:
    ex = _Expand(old, new)
    before, after = ex.allowed(old), ex.allowed(new)
    raw: list[tuple[str, Atom, Atom, int, tuple[tuple[int, int], ...], tuple[str, ...]]] = []
    for key in set(before) | set(after):
        was = sets.union(*(p for _, p in before.get(key, [])))
        now = sets.union(*(p for _, p in after.get(key, [])))
        for change, ports, side in (
            ("allowed", sets.subtract(now, was), after),
            ("revoked", sets.subtract(was, now), before),
        ):
            if ports:
                ids = tuple(
                    sorted({rid for rid, p in side.get(key, []) if sets.intersect(p, ports)})
                )
                raw.append((change, key[0], key[1], key[2], ports, ids))
    # fold: initiators sharing (change, responder, protocol, ports, rules), then responders
    by_dst: dict[tuple[Any, ...], set[Atom]] = defaultdict(set)
    for change, s, d, proto, ports, ids in raw:
        by_dst[(change, d, proto, ports, ids)].add(s)
    by_src: dict[tuple[Any, ...], set[Atom]] = defaultdict(set)
    for (change, d, proto, ports, ids), srcs in by_dst.items():
        by_src[(change, frozenset(srcs), proto, ports, ids)].add(d)
    rows = []
    for (change, srcs, proto, ports, ids), dsts in by_src.items():
        m = new if change == "allowed" else old
        s_sorted, d_sorted = sorted(srcs, key=_akey), sorted(dsts, key=_akey)
        rows.append(
            {
                "change": change,
                "source": [atom_text(a) for a in s_sorted],
                "source_groups": sorted({g for a in s_sorted for g in _groups_of(m, a)}),
                "destination": [atom_text(a) for a in d_sorted],
                "destination_groups": sorted({g for a in d_sorted for g in _groups_of(m, a)}),
                "protocol": proto,
                "ports": [list(p) for p in ports],
                "rules": list(ids),
            }
        )
    rows.sort(key=lambda r: (r["change"], r["protocol"], r["ports"], r["source"], r["destination"]))
    return rows


def _akey(a: Atom) -> tuple[int, int, str]:
    return (1 if a[2] else 0, a[0], a[2])


def _texts(addresses: Iterable[str]) -> list[str]:
    """Canonical address texts, one host without its /32 or /128."""
    return [a.removesuffix("/32").removesuffix("/128") for a in addresses]


def _groups(old: Matrix, new: Matrix) -> list[dict[str, Any]]:
    rows = []
    for name in sorted(set(old.groups) | set(new.groups)):
        a, b = old.groups.get(name), new.groups.get(name)
        if a is None or b is None:
            g = a or b
            assert g is not None
            change = "added" if a is None else "removed"
            rows.append(
                {
                    "group": name,
                    "change": change,
                    "old": [] if a is None else _texts(g.addresses),
                    "new": [] if b is None else _texts(g.addresses),
                }
            )
        elif sets.union(a.ranges) != sets.union(b.ranges):
            rows.append(
                {
                    "group": name,
                    "change": "changed",
                    "old": _texts(a.addresses),
                    "new": _texts(b.addresses),
                }
            )
    return rows


RULE_FIELDS = (
    "from_groups",
    "to_groups",
    "protocols",
    "ports",
    "bidirectional",
    "purpose",
    "condition",
)


def _rules(old: Matrix, new: Matrix) -> list[dict[str, Any]]:
    a = {r.id: r for r in old.rules}
    b = {r.id: r for r in new.rules}
    rows: list[dict[str, Any]] = []
    for rid in [*a, *(x for x in b if x not in a)]:
        ra, rb = a.get(rid), b.get(rid)
        if ra is None or rb is None:
            r: Rule = rb if ra is None else ra  # type: ignore[assignment]
            rows.append(
                {
                    "rule_id": rid,
                    "change": "added" if ra is None else "removed",
                    "fields": [],
                    "provenance": str(r.provenance),
                }
            )
            continue
        fields = [f.replace("_groups", "") for f in RULE_FIELDS if getattr(ra, f) != getattr(rb, f)]
        if fields:
            rows.append(
                {
                    "rule_id": rid,
                    "change": "changed",
                    "fields": fields,
                    "provenance": str(rb.provenance),
                }
            )
        if ra.provenance != rb.provenance:
            rows.append(
                {
                    "rule_id": rid,
                    "change": "provenance",
                    "fields": ["provenance"],
                    "old_provenance": str(ra.provenance),
                    "provenance": str(rb.provenance),
                }
            )
    return rows


def diff_matrices(old: Matrix, new: Matrix) -> RulesDiff:
    """What changes from ``old`` to ``new`` (without observed traffic)."""
    return RulesDiff(
        old={"name": old.name, "sha256": old.sha256, "file": old.files[0] if old.files else ""},
        new={"name": new.name, "sha256": new.sha256, "file": new.files[0] if new.files else ""},
        access=tuple(_access(old, new)),
        groups=tuple(_groups(old, new)),
        rules=tuple(_rules(old, new)),
    )
