"""Set arithmetic the linter needs: port-range sets and address "atoms".

Port sets are merged tuples of inclusive ``(lo, hi)`` ranges. Addresses are reduced to
atoms: the elementary intervals cut at every group boundary (so each group is an exact
union of atoms), plus one symbolic atom per group that has no address yet. Rule
endpoints then become finite sets of (initiator atom, responder atom) pairs.
"""

from __future__ import annotations

from collections.abc import Iterable

from flowaudit.matrix.model import (
    Matrix,
    PortRange,
    Rule,
    merge_ranges,
    range_text,
)

Ports = tuple[PortRange, ...]
Pair = tuple[str, str]


def union(*sets: Iterable[PortRange]) -> Ports:
    return merge_ranges([r for s in sets for r in s])


def intersect(a: Ports, b: Ports) -> Ports:
    out = [(max(lo, blo), min(hi, bhi)) for lo, hi in a for blo, bhi in b]
    return merge_ranges([(lo, hi) for lo, hi in out if lo <= hi])


def subtract(a: Ports, b: Ports) -> Ports:
    out: list[PortRange] = []
    for lo, hi in merge_ranges(list(a)):
        cur = lo
        for blo, bhi in merge_ranges(list(b)):
            if bhi < cur or blo > hi:
                continue
            if blo > cur:
                out.append((cur, blo - 1))
            cur = max(cur, bhi + 1)
            if cur > hi:
                break
        if cur <= hi:
            out.append((cur, hi))
    return merge_ranges(out)


def contains(a: Ports, b: Ports) -> bool:
    """True when every port of ``b`` is in ``a``."""
    return not subtract(b, a)


def pieces(ranges: Ports, cuts: Iterable[PortRange]) -> list[PortRange]:
    """Split ``ranges`` at every boundary of ``cuts`` (each piece sees one set of cuts)."""
    points = sorted({p for lo, hi in cuts for p in (lo, hi + 1)})
    out: list[PortRange] = []
    for lo, hi in ranges:
        start = lo
        for p in points:
            if start < p <= hi:
                out.append((start, p - 1))
                start = p
        out.append((start, hi))
    return out


class Atoms:
    """Maps each group of a matrix to its set of address atoms."""

    def __init__(self, m: Matrix) -> None:
        ranges = {g.name: g.ranges for g in m.groups.values()}
        points = sorted({p for rs in ranges.values() for lo, hi in rs for p in (lo, hi + 1)})
        self.groups: dict[str, frozenset[str]] = {}
        self._keys: dict[str, tuple[int, int, str]] = {}
        for name, rs in ranges.items():
            if not rs:
                self.groups[name] = frozenset({f"<{name}>"})
                self._keys[f"<{name}>"] = (1, 0, name)
                continue
            atoms: set[str] = set()
            for lo, hi in rs:
                cuts = [p for p in points if lo < p <= hi]
                start = lo
                for p in [*cuts, hi + 1]:
                    text = range_text(start, p - 1)
                    atoms.add(text)
                    self._keys[text] = (0, start, "")
                    start = p
            self.groups[name] = frozenset(atoms)

    def of(self, names: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for n in names:
            out |= self.groups[n]
        return frozenset(out)

    def pairs(self, r: Rule) -> frozenset[Pair]:
        """(initiator, responder) atom pairs the rule allows, both ways if bidirectional."""
        src, dst = self.of(r.from_groups), self.of(r.to_groups)
        out = {(s, d) for s in src for d in dst}
        if r.bidirectional:
            out |= {(d, s) for s in src for d in dst}
        return frozenset(out)

    def forward(self, r: Rule) -> frozenset[Pair]:
        """Only the documented direction (from → to)."""
        return frozenset((s, d) for s in self.of(r.from_groups) for d in self.of(r.to_groups))

    def key(self, atom: str) -> tuple[int, int, str]:
        """Numeric order: address atoms by address, then symbolic atoms by name."""
        return self._keys.get(atom, (2, 0, atom))

    def text(self, atoms: Iterable[str]) -> str:
        """Atoms in address order; symbolic atoms print as the group name."""
        return ", ".join(a.strip("<>") for a in sorted(atoms, key=self.key))

    def pairs_text(self, pairs: Iterable[Pair]) -> str:
        """``{(a, x), (b, x)}`` → ``a, b → x``, one clause per responder."""
        by_dst: dict[str, set[str]] = {}
        for s, d in pairs:
            by_dst.setdefault(d, set()).add(s)
        return "; ".join(
            f"{self.text(by_dst[d])} → {self.text([d])}" for d in sorted(by_dst, key=self.key)
        )
