"""The terminal report: rich tables, new findings first, a summary line.

Text from outside (names, baseline findings, enrichment) is never rich markup or emoji
codes (cells are ``rich.text.Text``: "[/x]" would be a markup error, "[link=…]" a
hyperlink), and control characters are shown as ``\\xNN`` (an escape sequence in a name
must not drive the terminal).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from flowaudit._util.text import visible
from flowaudit.report.rows import (
    CHANGE_HEADERS,
    CONTROL_PLANE_HEADERS,
    FIRST_FINDINGS,
    GROUP_HEADERS,
    OVERLAY_HEADERS,
    SHAPE_HEADERS,
    change_rows,
    changes_line,
    control_plane_rows,
    encrypted_line,
    group_table,
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

# the columns shown on a terminal (the others are in every file format)
# the group table's columns on a terminal: all but the long group id
TERMINAL_GROUP_COLS = ("change", *(h for h in GROUP_HEADERS if h != "id"))
TERMINAL_VIOLATION_COLS = (
    "change",
    "group",
    "reason",
    "vlan",
    "initiator",
    "responder",
    "proto",
    "port",
    "flows",
    "packets",
    "states",
    "nearest rule",
    "what differs",
    "what it is",
)
TERMINAL_UNUSED_COLS = ("change", "rule", "proto", "ports", "condition")
TERMINAL_OVERBROAD_COLS = ("change", "rule", "proto", "ports", "unused ports", "flows")
TERMINAL_PAIRS_COLS = ("change", "rule", "proto", "ports", "unused pairs", "flows")
FOLDING = {
    "reason",
    "states",
    "what differs",
    "what it is",
    "ports",
    "unused ports",
    "unused pairs",
    "condition",
    "who",
    "top addresses (by bytes)",
}
MIN_WIDTH = {"what differs": 28, "what it is": 22, "states": 14}


def _plain(s: str) -> Any:
    from rich.text import Text

    return Text(visible(s))


def render_terminal(
    result: AuditResult, *, color: bool = False, width: int = 140, detail: bool = False
) -> str:
    from rich.console import Console
    from rich.table import Table

    from flowaudit._util.time import iso

    console = Console(
        record=True,
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        file=io.StringIO(),
    )
    console.print(
        f"Window: {iso(result.window_start) or '-'} .. {iso(result.window_end) or '-'}",
        highlight=False,
        markup=False,
    )
    line = changes_line(result, visible)
    if line is not None:
        console.print(line, highlight=False, markup=False, emoji=False)
        nh, nrows = new_group_table(result)
        if nrows:
            t = Table(title=f"New finding groups ({len(nrows)})", title_justify="left")
            for h in nh:
                t.add_column(h, overflow="fold", no_wrap=h not in FOLDING)
            for r in nrows:
                t.add_row(*(_plain(x) for x in r))
            console.print(t)
        changed = change_rows(result)
        if changed:
            t = Table(title="New and resolved findings", title_justify="left")
            for h in CHANGE_HEADERS:
                t.add_column(h, overflow="fold", no_wrap=h != "what")
            for c in changed:
                t.add_row(*(_plain(x) for x in c))
            console.print(t)
    vtable = violation_table(result, None if detail else FIRST_FINDINGS)
    rules = rule_sections(result)
    n_viol = result.violations.num_rows
    sections = (
        (
            "Traffic shape",
            (list(SHAPE_HEADERS), [list(r) for r in shape_rows(result)]),
            SHAPE_HEADERS,
        ),
        ("Finding groups", group_table(result), TERMINAL_GROUP_COLS),
        ("Traffic outside the approved matrix", vtable, TERMINAL_VIOLATION_COLS),
        ("Unused rules", rules["unused"], TERMINAL_UNUSED_COLS),
        ("Over-broad rules", rules["overbroad"], TERMINAL_OVERBROAD_COLS),
        (
            "Host pairs never seen",
            rules["pairs"] if detail else ([], []),
            TERMINAL_PAIRS_COLS,
        ),
        (
            "LAN control plane, not violations",
            (list(CONTROL_PLANE_HEADERS), [list(r) for r in control_plane_rows(result)]),
            CONTROL_PLANE_HEADERS,
        ),
        (
            "Overlay: what the tunnels carried",
            (list(OVERLAY_HEADERS), [list(r) for r in overlay_rows(result)]),
            OVERLAY_HEADERS,
        ),
    )
    for title, (headers, rows), wanted in sections:
        if not rows:
            continue
        count = n_viol if title.startswith("Traffic outside") else len(rows)
        caption = title if title == "Traffic shape" else f"{title} ({count})"
        t = Table(title=caption, title_justify="left")
        idx = [headers.index(h) for h in wanted if h in headers]
        for i in idx:
            t.add_column(
                headers[i],
                overflow="fold",
                no_wrap=headers[i] not in FOLDING,
                min_width=MIN_WIDTH.get(headers[i]),
            )
        for row in rows:
            t.add_row(*(_plain(row[i]) for i in idx))
        console.print(t)
    if rules["pairs"][1] and not detail:
        line = f"{pairs_line(result)} (--detail lists them)"
        console.print(line, highlight=False, markup=False)
    enc = encrypted_line(result)
    if enc is not None:
        console.print(enc, highlight=False, markup=False)
    console.print(summary_line(result, visible), highlight=False, markup=False, emoji=False)
    return console.export_text(styles=color)
