"""The Markdown report: the same content as the terminal report, for tickets and CRs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowaudit.report.json_ import iso
from flowaudit.report.rows import (
    UNUSED_HEADERS,
    VIOLATION_HEADERS,
    summary_line,
    unused_rows,
    violation_rows,
)

if TYPE_CHECKING:
    from flowaudit.audit import AuditResult


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return out


def render_markdown(result: AuditResult) -> str:
    lines = [
        f"# flowaudit report: {result.matrix_name}",
        "",
        f"- Matrix sha256: `{result.rules_digest}`",
        f"- Window: {iso(result.window_start) or '-'} .. {iso(result.window_end) or '-'}",
        f"- Flows audited: {result.flows:,}",
    ]
    for c in result.captures:
        lines.append(f"- Capture: `{c.get('name', c.get('path'))}` sha256 `{c.get('sha256')}`")
    lines += ["", f"**Summary:** {summary_line(result)}", ""]
    lines += [f"## Traffic outside the approved matrix ({result.violations.num_rows})", ""]
    lines += (
        _table(VIOLATION_HEADERS, violation_rows(result))
        if result.violations.num_rows
        else ["None."]
    )
    lines += ["", f"## Approved rules without traffic ({result.unused_rules.num_rows})", ""]
    lines += (
        _table(UNUSED_HEADERS, unused_rows(result)) if result.unused_rules.num_rows else ["None."]
    )
    return "\n".join(lines) + "\n"
