"""The terminal report: rich tables, new findings first, a summary line.

Text from outside (names, baseline findings, enrichment) is never rich markup or emoji
codes (cells are ``rich.text.Text``: "[/x]" would be a markup error, "[link=…]" a
hyperlink), and control characters are shown as ``\\xNN`` (an escape sequence in a name
must not drive the terminal).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from flowaudit.report.rows import (
    CHANGE_HEADERS,
    change_rows,
    changes_line,
    summary_line,
    unused_table,
    violation_table,
    visible,
)

if TYPE_CHECKING:
    from flowaudit.audit.result import AuditResult

# the columns shown on a terminal (the others are in every file format)
TERMINAL_VIOLATION_COLS = (
    "change",
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
TERMINAL_UNUSED_COLS = ("change", "rule", "status", "proto", "ports", "unused ports", "flows")
FOLDING = {"reason", "states", "what differs", "what it is", "ports", "unused ports"}
MIN_WIDTH = {"what differs": 28, "what it is": 22, "states": 14}


def _plain(s: str) -> Any:
    from rich.text import Text

    return Text(visible(s))


def render_terminal(result: AuditResult, *, color: bool = False, width: int = 140) -> str:
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
        changed = change_rows(result)
        if changed:
            t = Table(title="New and resolved findings", title_justify="left")
            for h in CHANGE_HEADERS:
                t.add_column(h, overflow="fold", no_wrap=h != "what")
            for c in changed:
                t.add_row(*(_plain(x) for x in c))
            console.print(t)
    sections = (
        ("Traffic outside the approved matrix", violation_table(result), TERMINAL_VIOLATION_COLS),
        ("Approved rules without traffic", unused_table(result), TERMINAL_UNUSED_COLS),
    )
    for title, (headers, rows), wanted in sections:
        if not rows:
            continue
        t = Table(title=f"{title} ({len(rows)})", title_justify="left")
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
    console.print(summary_line(result, visible), highlight=False, markup=False, emoji=False)
    return console.export_text(styles=color)
