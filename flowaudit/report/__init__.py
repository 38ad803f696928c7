"""Renderers: pure functions of an AuditResult to text (stdout is data).

``render(result, fmt)`` returns the report as a string; formats are
``text`` (terminal), ``json`` (the schema_version 1 contract), ``markdown``,
``csv`` and ``html``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowaudit.choices import REPORT_FORMATS as FORMATS

if TYPE_CHECKING:
    from flowaudit.audit.result import AuditResult


def render(
    result: AuditResult, fmt: str, *, color: bool = False, width: int = 140, detail: bool = False
) -> str:
    """The report in ``fmt``. Text and Markdown show the finding groups and the first
    ``FIRST_FINDINGS`` findings of each; ``detail`` shows every finding (the other formats
    always do)."""
    if fmt == "json":
        from flowaudit.report.json_ import render_json

        return render_json(result)
    if fmt == "markdown":
        from flowaudit.report.markdown import render_markdown

        return render_markdown(result, detail=detail)
    if fmt == "csv":
        from flowaudit.report.csv_ import render_csv

        return render_csv(result)
    if fmt == "html":
        from flowaudit.report.html import render_html

        return render_html(result)
    if fmt == "text":
        from flowaudit.report.terminal import render_terminal

        return render_terminal(result, color=color, width=width, detail=detail)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "render"]
