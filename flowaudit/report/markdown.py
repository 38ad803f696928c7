"""The Markdown report: the HTML report's content for tickets and change requests.

Summary, changes since the baseline, the coverage grid (services down, source groups
across, one symbol per cell), the findings, unused rules, and the inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from flowaudit._util.arrow import pylist
from flowaudit.report.rows import (
    CHANGE_HEADERS,
    CONTROL_PLANE_HEADERS,
    CONTROL_PLANE_NOTE,
    FIRST_FINDINGS,
    RULE_NOTES,
    SHAPE_HEADERS,
    SHAPE_NOTE,
    change_rows,
    changes_line,
    control_plane_rows,
    group_table,
    input_lines,
    new_group_table,
    pairs_line,
    rule_sections,
    shape_rows,
    summary_line,
    violation_table,
)

if TYPE_CHECKING:
    from flowaudit.audit.result import AuditResult

SYMBOLS = {
    "used": "✔",
    "partly-used": "◐",
    "unused": "○",
    "unobserved": "◌",
    "unconfigured": "?",
    "unapproved": "✖",
}
KEY = (
    "✔ approved and used · ◐ approved, some ports unused · ○ approved and unused · "
    "◌ approved, unused, hosts never seen talking (not proven) · "
    "? approved, group has no addresses · ✖ traffic outside the matrix (✖✔: in an approved "
    "cell, e.g. off-VLAN or from an unknown host) · blank: not approved, no traffic"
)


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    if not rows:
        return ["None."]
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return out


def coverage_markdown(result: AuditResult) -> list[str]:
    cells = pylist(result.coverage) if result.coverage is not None else []
    if not cells:
        return ["No rules and no traffic."]
    sources = {c["row"]: c["source"] for c in cells}
    services = {c["col"]: c["service"] for c in cells}
    grid = {(c["col"], c["row"]): c for c in cells}
    headers = ["service", *(sources[r] for r in sorted(sources))]
    rows = []
    for col in sorted(services):
        row = [services[col]]
        for r in sorted(sources):
            c = grid.get((col, r))
            mark = "" if c is None else SYMBOLS[c["status"]]
            if c is not None and c["status"] == "unapproved" and c["approved"]:
                mark += "✔"
            row.append(mark)
        rows.append(row)
    return [KEY, "", *_table(headers, rows)]


def render_markdown(result: AuditResult, *, detail: bool = False) -> str:
    lines = [
        f"# flowaudit report: {result.matrix_name}",
        "",
        f"**Summary:** {summary_line(result)}",
    ]
    line = changes_line(result)
    if line is not None:
        lines += [
            "",
            "## Changes since the baseline",
            "",
            line + ". New findings are listed first.",
        ]
        nh, nrows = new_group_table(result)
        lines += ["", f"### New finding groups ({len(nrows)})", ""]
        lines += _table(nh, nrows)
        lines += ["", "New and resolved findings (resolved: in the baseline, gone now):", ""]
        lines += _table(CHANGE_HEADERS, change_rows(result))
    lines += ["", "## Matrix coverage", "", *coverage_markdown(result)]
    gh, grows = group_table(result)
    vh, vrows = violation_table(result, None if detail else FIRST_FINDINGS)
    rules = rule_sections(result)
    lines += ["", "## Traffic shape", "", SHAPE_NOTE, ""]
    lines += _table(SHAPE_HEADERS, shape_rows(result))
    lines += ["", f"## Finding groups ({len(grows)})", ""]
    lines += _table(gh, grows)
    lines += ["", f"## Traffic outside the approved matrix ({result.violations.num_rows})", ""]
    if not detail and any(r[vh.index("reason")].startswith("… ") for r in vrows):
        lines += [f"The first {FIRST_FINDINGS} findings of each group (`--detail`: all).", ""]
    lines += _table(vh, vrows)
    for key, title in (("unused", "Unused rules"), ("overbroad", "Over-broad rules")):
        hs, rows = rules[key]
        lines += ["", f"## {title} ({len(rows)})", "", RULE_NOTES[key], ""]
        lines += _table(hs, rows)
    hs, rows = rules["pairs"]
    lines += ["", f"## Host pairs never seen ({len(rows)} rules)", "", RULE_NOTES["pairs"], ""]
    lines += (
        _table(hs, rows)
        if detail or not rows
        else [f"{pairs_line(result)} (`--detail` lists them)."]
    )
    cp = control_plane_rows(result)
    lines += ["", f"## LAN control plane ({len(cp)})", "", CONTROL_PLANE_NOTE, ""]
    lines += _table(CONTROL_PLANE_HEADERS, cp)
    lines += ["", "## Inputs", ""] + [f"- `{x}`" for x in input_lines(result)]
    return "\n".join(lines) + "\n"
