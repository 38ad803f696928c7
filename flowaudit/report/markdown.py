"""The Markdown report: the HTML report's content for tickets and change requests.

Summary, changes since the baseline, the coverage grid (services down, source groups
across, one symbol per cell), the findings, unused rules, and the inputs.

Every value that comes from outside (capture and baseline file names, the matrix's name and
conditions, addresses, enrichment text) is escaped for Markdown renderers that pass HTML
through (the daily report is mailed): backslashes, backticks, ``*`` and a ``]`` that would
close a link text are backslash-escaped, ``<``, ``>`` and ``&`` become entities, line
breaks become spaces, other control characters read ``\\xNN``, and table cells escape
``|``. The inputs are code spans fenced with more backticks than any run in the text, so a
name cannot close its span.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from flowaudit._util.arrow import pylist
from flowaudit._util.text import visible
from flowaudit.report.rows import (
    CHANGE_HEADERS,
    CONTROL_PLANE_HEADERS,
    CONTROL_PLANE_NOTE,
    FIRST_FINDINGS,
    OVERLAY_HEADERS,
    OVERLAY_NOTE,
    RULE_NOTES,
    SHAPE_HEADERS,
    SHAPE_NOTE,
    change_rows,
    changes_line,
    control_plane_rows,
    encrypted_line,
    group_table,
    input_lines,
    new_group_table,
    overlay_rows,
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


_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "`": "\\`",
        "*": "\\*",
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
    }
)
_LINK = re.compile(r"\](?=[(\[])")  # "](url)" / "][ref]": the ']' that makes a link


def md_text(s: str) -> str:
    """``s`` as literal Markdown text: no markup, no links, no HTML, one line. Brackets
    stay as they are unless they would close a link text (our own "scope [111]" reads
    plainly)."""
    s = visible(s.replace("\r", " ").replace("\n", " "))
    return _LINK.sub(r"\\]", s.translate(_ESCAPES))


def md_code(s: str) -> str:
    """``s`` as a code span: fenced with one backtick more than its longest backtick run
    (padded with a space when it starts or ends with a backtick), on one line."""
    s = visible(s.replace("\r", " ").replace("\n", " "))
    fence = "`" * (max((len(m) for m in re.findall("`+", s)), default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _cell(s: str) -> str:
    return md_text(s).replace("|", "\\|")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    if not rows:
        return ["None."]
    out = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
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
        f"# flowaudit report: {md_text(result.matrix_name)}",
        "",
        f"**Summary:** {summary_line(result, md_text)}",
    ]
    line = changes_line(result, md_text)
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
    ov = overlay_rows(result)
    if ov:  # only captures with tunnels have the section
        lines += ["", f"## Overlay: what the tunnels carried ({len(ov)})", "", OVERLAY_NOTE, ""]
        lines += _table(OVERLAY_HEADERS, ov)
    enc = encrypted_line(result)
    if enc is not None:
        lines += ["", f"**{md_text(enc)}**"]
    lines += ["", "## Inputs", ""] + [f"- {md_code(x)}" for x in input_lines(result)]
    return "\n".join(lines) + "\n"
