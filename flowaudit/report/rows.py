"""Display rows shared by the human-readable renderers (terminal, markdown, csv, html)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowaudit._arrow import pylist
from flowaudit.matrix.model import protocol_name

if TYPE_CHECKING:
    from flowaudit.audit import AuditResult

VIOLATION_HEADERS = (
    "id",
    "reason",
    "vlan",
    "initiator",
    "responder",
    "proto",
    "port",
    "flows",
    "packets",
    "bytes",
    "states",
    "first seen",
    "last seen",
    "nearest rule",
    "what differs",
)
UNUSED_HEADERS = (
    "id",
    "rule",
    "status",
    "proto",
    "ports",
    "unused ports",
    "unused pairs",
    "flows",
    "condition",
    "evidence",
)


def _ranges(rs: list[list[int]]) -> str:
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in rs)


def states_text(v: dict[str, Any]) -> str:
    keys = ("attempted", "rejected", "established", "midstream")
    parts = [f"{k} {v[k]}" for k in keys if v[k]]
    if v["protocol"] != 6 and v["answered"]:
        parts.append(f"answered {v['answered']}")  # UDP/ICMP: both sides sent
    return ", ".join(parts) or "-"


def _t(t: Any) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t is not None else ""


def violation_rows(result: AuditResult) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for v in pylist(result.violations):
        rows.append(
            (
                v["finding_id"],
                v["reason"] + (" (direction uncertain)" if v["direction_uncertain"] else ""),
                "-" if v["vlan_id"] is None else str(v["vlan_id"]),
                v["src_ip"],
                v["dst_ip"],
                protocol_name(v["protocol"]),
                "-" if v["dst_port"] is None else str(v["dst_port"]),
                f"{v['flows']:,}",
                f"{v['packets']:,}",
                f"{v['bytes']:,}",
                states_text(v),
                _t(v["first_seen"]),
                _t(v["last_seen"]),
                v["nearest_rule"] or "-",
                v["differences"],
            )
        )
    return rows


def unused_rows(result: AuditResult) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for u in pylist(result.unused_rules):
        pairs = ", ".join(f"{a}→{b}" for a, b in u["unused_pairs"])
        rows.append(
            (
                u["finding_id"],
                u["rule_id"],
                u["status"],
                protocol_name(u["protocol"]),
                _ranges(u["ports"]),
                _ranges(u["unused_ports"]),
                pairs or "-",
                f"{u['flows']:,}",
                u["condition"] or "-",
                u["evidence"],
            )
        )
    return rows


def summary_line(result: AuditResult) -> str:
    by = result.stats.get("by_reason", {})
    reasons = ", ".join(f"{k} {n}" for k, n in by.items())
    sampled = " (counts are sampled estimates)" if result.sampled else ""
    return (
        f"{result.flows:,} flows audited against {result.matrix_name} "
        f"(sha256 {result.rules_digest[:12]}): {result.violations.num_rows} violations"
        + (f" [{reasons}]" if reasons else "")
        + f", {result.stats.get('unused', 0)} unused rules, "
        f"{result.stats.get('partly_used', 0)} partly used{sampled}"
    )
