"""The terminal report: rich tables, top findings first, a summary line."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from flowaudit.report.rows import (
    UNUSED_HEADERS,
    VIOLATION_HEADERS,
    summary_line,
    unused_rows,
    violation_rows,
)

if TYPE_CHECKING:
    from flowaudit.audit import AuditResult

TERMINAL_VIOLATION_COLS = (1, 2, 3, 4, 5, 6, 7, 8, 10, 13, 14)
TERMINAL_UNUSED_COLS = (1, 2, 3, 4, 5, 6, 8)
FOLDING = (10, 14)  # states, what differs: the columns that wrap


def render_terminal(result: AuditResult, *, color: bool = False, width: int = 140) -> str:
    from rich.console import Console
    from rich.table import Table

    console = Console(
        record=True,
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        file=io.StringIO(),
    )
    from flowaudit.report.json_ import iso

    console.print(
        f"Window: {iso(result.window_start) or '-'} .. {iso(result.window_end) or '-'}",
        highlight=False,
        markup=False,
    )
    if result.violations.num_rows:
        t = Table(
            title=f"Traffic outside the approved matrix ({result.violations.num_rows})",
            title_justify="left",
        )
        for i in TERMINAL_VIOLATION_COLS:
            t.add_column(VIOLATION_HEADERS[i], overflow="fold", no_wrap=i not in FOLDING)
        for row in violation_rows(result):
            t.add_row(*(row[i] for i in TERMINAL_VIOLATION_COLS))
        console.print(t)
    if result.unused_rules.num_rows:
        t = Table(
            title=f"Approved rules without traffic ({result.unused_rules.num_rows})",
            title_justify="left",
        )
        for i in TERMINAL_UNUSED_COLS:
            t.add_column(UNUSED_HEADERS[i], overflow="fold", no_wrap=i not in (5, 6))
        for row in unused_rows(result):
            t.add_row(*(row[i] for i in TERMINAL_UNUSED_COLS))
        console.print(t)
    console.print(summary_line(result), highlight=False, markup=False)
    return console.export_text(styles=color)
