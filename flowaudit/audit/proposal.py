"""What ``rules propose`` returns: proposed groups and rules, as data and as YAML.

A leaf beside ``audit/result.py``: ``audit/propose.py`` builds a ``Proposal``; the CLI and
notebooks write ``Proposal.to_yaml()`` (a ``proposal:`` document for ``rules merge``, or a
whole matrix when bootstrapping without one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flowaudit.matrix.emit import block
from flowaudit.matrix.model import protocol_name


@dataclass(frozen=True)
class ProposedGroup:
    name: str
    description: str
    addresses: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"description": self.description, "addresses": list(self.addresses)}


def _ports_value(ranges: tuple[tuple[int, int], ...]) -> Any:
    """The matrix's `ports` value: "any" for the whole range (rules of protocols without
    ports), one port as a number, one range as "lo-hi", several as a list (like the seed)."""
    if ranges == ((0, 65535),):
        return "any"
    texts = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges]
    if len(texts) > 1:
        return texts
    return int(texts[0]) if texts[0].isdigit() else texts[0]


@dataclass(frozen=True)
class ProposedRule:
    id: str
    from_groups: tuple[str, ...]
    to_groups: tuple[str, ...]
    protocols: tuple[int, ...]
    ports: tuple[tuple[int, int], ...]
    bidirectional: bool
    purpose: str
    findings: tuple[str, ...]
    window: str
    flows: int
    captures: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        names = [protocol_name(p) for p in self.protocols]
        out: dict[str, Any] = {
            "id": self.id,
            "from": self.from_groups[0] if len(self.from_groups) == 1 else list(self.from_groups),
            "to": self.to_groups[0] if len(self.to_groups) == 1 else list(self.to_groups),
            "protocol": names[0] if len(names) == 1 else names,
            "ports": _ports_value(self.ports),
            "purpose": self.purpose,
        }
        if self.bidirectional:
            out["bidirectional"] = True
        out["provenance"] = {
            "origin": "observed",
            "findings": list(self.findings),
            "window": self.window,
            "flows": self.flows,
            "captures": list(self.captures),
        }
        return out


@dataclass(frozen=True)
class Proposal:
    """Rules (and new groups) that approve the selected findings; ``to_yaml()`` writes
    them as a proposal for ``matrix_name`` (``rules merge``), or, for a bootstrap (no
    matrix), as a whole matrix."""

    matrix_name: str
    bootstrap: bool
    groups: tuple[ProposedGroup, ...]
    rules: tuple[ProposedRule, ...]
    findings: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (finding id, why no rule can approve it)
    vlans: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        groups = {g.name: g.to_dict() for g in self.groups}
        rules = [r.to_dict() for r in self.rules]
        if self.bootstrap:
            return {
                "name": self.matrix_name,
                "description": "bootstrapped from observed traffic (flowaudit rules propose)",
                "scope": {"vlans": list(self.vlans), "subnets": []},
                "groups": groups,
                "rules": rules,
            }
        return {
            "proposal": self.matrix_name,
            "description": f"rules approving {len(self.findings)} findings "
            "(flowaudit rules propose)",
            "groups": groups,
            "rules": rules,
        }

    def to_yaml(self) -> str:
        head = [
            "# Proposed by `flowaudit rules propose` from observed traffic. Review every rule:",
            "# give it a purpose, and merge with `flowaudit rules merge BASE THIS -o NEW`."
            if not self.bootstrap
            else "# A matrix bootstrapped from observed traffic: review it before use.",
        ]
        head += [f"# not proposable: {fid}: {why}" for fid, why in self.skipped]
        return "\n".join([*head, *block(self.to_dict())]) + "\n"


__all__ = ["Proposal", "ProposedGroup", "ProposedRule"]
