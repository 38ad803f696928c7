"""Text and JSON renderings of a matrix and its lint findings (pure functions → str).

Used by ``flowaudit rules show|check|lint``; no I/O here. Addresses are shown as text
ranges, unconfigured groups as ``<unconfigured>``. JSON output is deterministic
(rule order, then compiled-row order; findings in lint order).
"""

from __future__ import annotations

import json
from typing import Any

from flowaudit.matrix.compile import rules_table
from flowaudit.matrix.lint import LintFinding
from flowaudit.matrix.model import (
    Matrix,
    ports_text,
    protocol_name,
    range_text,
)

UNCONFIGURED = "<unconfigured>"


def _addr(raw: bytes | None) -> int | None:
    return None if raw is None else int.from_bytes(raw, "big")


def _span(lo: bytes | None, hi: bytes | None) -> str:
    a, b = _addr(lo), _addr(hi)
    return UNCONFIGURED if a is None or b is None else range_text(a, b)


def compiled_rows(m: Matrix) -> list[dict[str, Any]]:
    """The rules table with addresses as text (``src``/``dst``) instead of 16-byte values."""
    out: list[dict[str, Any]] = []
    for row in rules_table(m).to_pylist():
        src = _span(row.pop("src_lo"), row.pop("src_hi"))
        dst = _span(row.pop("dst_lo"), row.pop("dst_hi"))
        out.append(
            {
                "rule_id": row["rule_id"],
                "protocol": row["protocol"],
                "src_group": row["src_group"],
                "src": None if src == UNCONFIGURED else src,
                "dst_group": row["dst_group"],
                "dst": None if dst == UNCONFIGURED else dst,
                "port_lo": row["port_lo"],
                "port_hi": row["port_hi"],
                "bidirectional": row["bidirectional"],
                "condition": row["condition"],
                "origin": row["origin"],
                "provenance": row["provenance"],
                "purpose": row["purpose"],
            }
        )
    return out


def _header(m: Matrix) -> dict[str, Any]:
    return {"name": m.name, "sha256": m.sha256}


def show_json(m: Matrix) -> str:
    groups = [
        {
            "name": g.name,
            "description": g.description,
            "addresses": list(g.addresses),
            "needs_configuration": g.needs_configuration,
        }
        for g in m.groups.values()
    ]
    doc = {
        "matrix": _header(m),
        "scope": {"vlans": list(m.scope.vlans), "subnets": list(m.scope.subnets)},
        "groups": groups,
        "rules": compiled_rows(m),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in
              enumerate(headers)]  # fmt: skip
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines) + "\n"


def show_table(m: Matrix) -> str:
    """One line per compiled row: rule, protocol, from, to, ports, direction, origin."""
    rows = []
    for r in compiled_rows(m):
        ports = (
            str(r["port_lo"])
            if r["port_lo"] == r["port_hi"]
            else (f"{r['port_lo']}-{r['port_hi']}")
        )
        rows.append(
            [
                r["rule_id"],
                protocol_name(r["protocol"]),
                f"{r['src_group']} {r['src'] or UNCONFIGURED}",
                f"{r['dst_group']} {r['dst'] or UNCONFIGURED}",
                ports,
                "both" if r["bidirectional"] else "one-way",
                r["origin"],
                r["condition"] or "",
            ]
        )
    head = f"matrix {m.name} sha256 {m.sha256}\n"
    cols = ["RULE", "PROTO", "FROM", "TO", "PORTS", "DIRECTION", "ORIGIN", "CONDITION"]
    return head + _table(cols, rows)


def check_text(m: Matrix) -> str:
    unconfigured = [g.name for g in m.groups.values() if not g.addresses]
    n, g = len(m.rules), len(m.groups)
    line = f"ok: {m.name}: {n} rule{'s' * (n != 1)}, {g} group{'s' * (g != 1)}, sha256 {m.sha256}\n"
    if unconfigured:
        names = ", ".join(unconfigured)
        line += f"groups without addresses (supply with --group or an overlay): {names}\n"
    return line


def lint_json(m: Matrix, findings: list[LintFinding]) -> str:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    doc = {
        "matrix": _header(m),
        "findings": [f.to_dict() for f in findings],
        "summary": {"findings": len(findings), "by_kind": counts},
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def lint_text(m: Matrix, findings: list[LintFinding]) -> str:
    if not findings:
        return f"{m.name}: no findings\n"
    lines = []
    for f in findings:
        proto = "-" if f.protocol is None else protocol_name(f.protocol)
        ports = ports_text(f.ports) or "-"
        lines.append(f"{f.kind}\t{','.join(f.rule_ids) or '-'}\t{proto}\t{ports}\t{f.message}")
    lines.append(f"{m.name}: {len(findings)} finding(s)")
    return "\n".join(lines) + "\n"
