"""The coverage picture as inline SVG: source groups down, destination services across.

Colour and shape both carry the status (readable in grey print): used = filled green,
partly used = half green, unused = amber outline, unobserved = dashed outline (the hosts
never talked: not proven unused), unconfigured = grey with a slash,
unapproved = red with a cross (a green frame when the cell is also approved). Every cell
has a ``<title>`` tooltip (rules, findings, flows). No fonts, scripts or links are
fetched: the SVG is self-contained.
"""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import TYPE_CHECKING, Any

from flowaudit._util.arrow import pylist

if TYPE_CHECKING:
    from flowaudit.audit.result import AuditResult

CELL = 20
GAP = 2
LEFT = 170
LABEL_ANGLE = -60
FONT = "font-family:DejaVu Sans,Liberation Sans,Arial,sans-serif"

COLOURS = {
    "used": "#2e8b45",
    "partly-used": "#2e8b45",
    "unused": "#e0a100",
    "unobserved": "#c9a227",
    "unconfigured": "#9a9a9a",
    "unapproved": "#c62828",
}
LEGEND = (
    ("used", "approved and used"),
    ("partly-used", "approved, some ports unused"),
    ("unused", "approved and unused"),
    ("unobserved", "approved, unused, hosts never seen talking (not proven unused)"),
    ("unconfigured", "approved, group has no addresses"),
    ("unapproved", "traffic outside the matrix"),
)


def _shape(status: str, x: int, y: int, approved: bool = False) -> str:
    c = COLOURS[status]
    s = CELL - GAP
    if status == "used":
        return f'<rect x="{x}" y="{y}" width="{s}" height="{s}" fill="{c}"/>'
    if status == "partly-used":
        return (
            f'<rect x="{x}.5" y="{y}.5" width="{s - 1}" height="{s - 1}" fill="#fff" '
            f'stroke="{c}"/><polygon points="{x},{y + s} {x + s},{y} {x + s},{y + s}" '
            f'fill="{c}"/>'
        )
    if status == "unused":
        return (
            f'<rect x="{x + 1}" y="{y + 1}" width="{s - 2}" height="{s - 2}" fill="#fff8e1" '
            f'stroke="{c}" stroke-width="2"/>'
        )
    if status == "unobserved":
        return (
            f'<rect x="{x + 1}" y="{y + 1}" width="{s - 2}" height="{s - 2}" fill="#fff" '
            f'stroke="{c}" stroke-width="2" stroke-dasharray="3 2"/>'
        )
    if status == "unconfigured":
        return (
            f'<rect x="{x}.5" y="{y}.5" width="{s - 1}" height="{s - 1}" fill="#eee" '
            f'stroke="{c}"/><line x1="{x + 2}" y1="{y + s - 2}" x2="{x + s - 2}" y2="{y + 2}" '
            f'stroke="{c}" stroke-width="2"/>'
        )
    frame = f' stroke="{COLOURS["used"]}" stroke-width="3"' if approved else ""
    a, b = x + 5, x + s - 5
    cross = f"M{a},{y + 5}L{b},{y + s - 5}M{b},{y + 5}L{a},{y + s - 5}"
    return (
        f'<rect x="{x}" y="{y}" width="{s}" height="{s}" fill="{c}"{frame}/>'
        f'<path d="{cross}" stroke="#fff" stroke-width="2.5"/>'
    )


def _tooltip(c: dict[str, Any]) -> str:
    parts = [f"{c['source']} → {c['service']}: {c['status']}"]
    if c["approved"]:
        parts.append("rules: " + ", ".join(c["rules"]))
    if c["purpose"]:
        parts.append(c["purpose"])
    if c["unused_ports"]:
        parts.append("unused ports: " + c["unused_ports"])
    if c["findings"]:
        parts.append("findings: " + ", ".join(c["findings"]))
    parts.append(f"flows: {c['flows']:,}")
    if c.get("inner"):
        parts.append(f"carries {c['inner']:,} inner conversations")
    return escape("\n".join(parts))


def coverage_svg(result: AuditResult) -> str:
    """The grid for ``result.coverage`` (an empty note when there is nothing to draw)."""
    cells = pylist(result.coverage) if result.coverage is not None else []
    if not cells:
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="30">'
            f'<text x="4" y="20" style="{FONT};font-size:13px">no rules and no traffic</text></svg>'
        )
    sources = {c["row"]: c["source"] for c in cells}
    services = {c["col"]: (c["service"], c["dst_group"]) for c in cells}
    nrow, ncol = max(sources) + 1, max(services) + 1
    longest = max(len(s) for s, _ in services.values())
    top = int(longest * 6.2 * 0.87) + 20
    width = LEFT + ncol * CELL + int(longest * 6.2 * 0.5) + 20
    legend_y = top + nrow * CELL + 24
    height = legend_y + 24 * len(LEGEND) + 10
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="matrix coverage" '
        f'style="{FONT};font-size:12px">',
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
    ]
    # zebra rows and the destination-group separators make a wide grid readable
    for r in range(nrow):
        y = top + r * CELL
        if r % 2 == 0:
            out.append(
                f'<rect x="0" y="{y - 1}" width="{LEFT + ncol * CELL}" height="{CELL}" '
                'fill="#f3f5f8"/>'
            )
        out.append(
            f'<text x="{LEFT - 8}" y="{y + CELL - 6}" text-anchor="end">{escape(sources[r])}</text>'
        )
    prev = None
    for col in range(ncol):
        label, group = services.get(col, ("", ""))
        x = LEFT + col * CELL
        if group != prev:
            out.append(
                f'<line x1="{x - 1}" y1="{top - 4}" x2="{x - 1}" y2="{top + nrow * CELL}" '
                'stroke="#8896a8" stroke-width="1"/>'
            )
            prev = group
        cx, cy = x + CELL // 2 + 3, top - 6
        out.append(
            f'<text transform="translate({cx},{cy}) rotate({LABEL_ANGLE})">{escape(label)}</text>'
        )
    for c in cells:
        x, y = LEFT + c["col"] * CELL, top + c["row"] * CELL
        out.append(
            f'<g class="cell {c["status"]}"><title>{_tooltip(c)}</title>'
            f"{_shape(c['status'], x, y, c['approved'])}</g>"
        )
    counts = Counter(c["status"] for c in cells)
    for i, (status, text) in enumerate(LEGEND):
        y = legend_y + i * 24
        out.append(_shape(status, LEFT, y))
        out.append(
            f'<text x="{LEFT + CELL + 8}" y="{y + CELL - 6}">{escape(text)} '
            f"({counts.get(status, 0)})</text>"
        )
    out.append(f'<text x="8" y="{legend_y + CELL - 6}" fill="#555">source ↓ · service →</text>')
    out.append("</svg>")
    return "\n".join(out)


__all__ = ["coverage_svg"]
