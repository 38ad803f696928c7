"""Display rows shared by the human-readable renderers (terminal, markdown, csv, html)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowaudit._util.arrow import pylist
from flowaudit.matrix.model import ports_text, protocol_name

if TYPE_CHECKING:
    from flowaudit.audit.result import AuditResult

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


def states_text(v: dict[str, Any]) -> str:
    keys = ("attempted", "rejected", "established", "midstream")
    parts = [f"{k} {v[k]}" for k in keys if v[k]]
    if v["protocol"] != 6 and v["answered"]:
        parts.append(f"answered {v['answered']}")  # UDP/ICMP: both sides sent
    return ", ".join(parts) or "-"


def _t(t: Any) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t is not None else ""


ENRICHMENT_LABELS = (
    ("tls_sni", "TLS SNI"),
    ("tls_cert_names", "cert"),
    ("http_host", "HTTP host"),
    ("ssh_banner", "SSH"),
    ("dns_names", "DNS"),
)


def enrichment_text(result: AuditResult, finding_id: str) -> str:
    """What tshark saw in a finding's packets (``flowaudit.evidence.enrich``), or ``-``."""
    e = result.enrichment.get(finding_id) or {}
    parts = [f"{label} {', '.join(e[k])}" for k, label in ENRICHMENT_LABELS if e.get(k)]
    return "; ".join(parts) or "-"


def _optional(
    result: AuditResult, headers: tuple[str, ...], rows: list[tuple[str, ...]], enrich: bool
) -> tuple[list[str], list[list[str]]]:
    """Add the optional columns: ``change`` first (with a baseline), ``what it is`` last."""
    hs, out = list(headers), [list(r) for r in rows]
    if result.changes is not None:
        hs.insert(0, "change")
        for r in out:
            r.insert(0, result.changes.status(r[0]))
    if enrich and result.enrichment:
        hs.append("what it is")
        for r in out:
            r.append(enrichment_text(result, r[hs.index("id")]))
    return hs, out


def violation_table(result: AuditResult) -> tuple[list[str], list[list[str]]]:
    """Headers and display rows of the violations, optional columns included."""
    return _optional(result, VIOLATION_HEADERS, violation_rows(result), True)


def unused_table(result: AuditResult) -> tuple[list[str], list[list[str]]]:
    """Headers and display rows of the unused and partly-used rules."""
    return _optional(result, UNUSED_HEADERS, unused_rows(result), False)


CHANGE_HEADERS = ("change", "id", "finding", "what", "last seen")


def _what(kind: str, f: dict[str, Any]) -> str:
    """One line about a finding (a JSON violation / unused-rule object or a row)."""
    proto = protocol_name(int(f.get("protocol") or 0))
    if kind == "violation":
        port = "-" if f.get("dst_port") is None else str(f["dst_port"])
        vlan = f" vlan {f['vlan_id']}" if f.get("vlan_id") is not None else ""
        return f"{f.get('reason')}: {f.get('src_ip')} → {f.get('dst_ip')} {proto}/{port}{vlan}"
    return f"rule {f.get('rule_id')} {proto}: {f.get('status')}"


def change_rows(result: AuditResult) -> list[tuple[str, ...]]:
    """The findings new since the baseline (from this result), then the resolved ones
    (from the baseline: they are gone now). Persisting ones are only counted."""
    if result.changes is None:
        return []
    new = set(result.changes.new)
    rows: list[tuple[str, ...]] = []
    for kind, table in (("violation", result.violations), ("unused-rule", result.unused_rules)):
        for f in pylist(table):
            if f["finding_id"] in new:
                last = _t(f.get("last_seen")) if kind == "violation" else "-"
                rows.append(("new", f["finding_id"], kind, _what(kind, f), last))
    for f in result.changes.resolved_findings:
        seen = f.get("last_seen")  # ISO text in the baseline report
        last = seen[:19].replace("T", " ") if isinstance(seen, str) else "-"
        rows.append(("resolved", f["finding_id"], f["kind"], _what(f["kind"], f), last))
    return rows


def changes_line(result: AuditResult) -> str | None:
    c = result.changes
    if c is None:
        return None
    line = (
        f"Since {c.baseline_file} (sha256 {c.baseline_sha256[:12]}): {len(c.new)} new, "
        f"{len(c.persisting)} persisting, {len(c.resolved)} resolved"
    )
    if c.baseline_matrix_sha256 and c.baseline_matrix_sha256 != result.rules_digest:
        line += "; the matrix changed since the baseline"
    return line


def input_lines(result: AuditResult) -> list[str]:
    """What an auditor needs to re-run the audit: captures, matrix, window, version."""
    from flowaudit._util.time import iso
    from flowaudit._util.version import __version__

    lines = [
        f"Matrix: {result.matrix_name}, sha256 {result.rules_digest}",
        f"Window: {iso(result.window_start) or '-'} .. {iso(result.window_end) or '-'} "
        f"({result.flows:,} flows audited)",
    ]
    for c in result.captures:
        lines.append(
            f"Capture: {c.get('name')} ({c.get('source_kind')}, {c.get('packets') or 0:,} packets,"
            f" {c.get('flows') or 0:,} flows), blake3 {c.get('blake3')}"
        )
    lines.append(f"flowaudit {__version__}")
    return lines


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
                ports_text(u["ports"]),
                ports_text(u["unused_ports"]),
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
    new = " new" if result.stats.get("only_new") else ""
    return (
        f"{result.flows:,} flows audited against {result.matrix_name} "
        f"(sha256 {result.rules_digest[:12]}): {result.violations.num_rows}{new} violations"
        + (f" [{reasons}]" if reasons else "")
        + f", {result.stats.get('unused', 0)}{new} unused rules, "
        f"{result.stats.get('partly_used', 0)}{new} partly used{sampled}"
    )
