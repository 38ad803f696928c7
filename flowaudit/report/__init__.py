"""Renderers: pure functions of an AuditResult to text (stdout is data).

``render(result, fmt)`` returns the report as a string; formats are
``text`` (terminal), ``json`` (the schema_version 1 contract), ``markdown``,
``csv`` and ``html``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowaudit.choices import REPORT_FORMATS as FORMATS

if TYPE_CHECKING:
    from typing import Any

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


def to_dict(result: AuditResult) -> dict[str, Any]:
    """The JSON report (schema_version 1) as a dict."""
    from flowaudit.report.json_ import result_to_dict

    return result_to_dict(result)


def coverage_svg(result: AuditResult) -> str:
    """The coverage picture (source group × destination service) as inline SVG."""
    from flowaudit.report.svg import coverage_svg as svg

    return svg(result)


def html_fragment(result: AuditResult) -> str:
    """The HTML report as a fragment whose CSS is scoped to it (for notebooks)."""
    from flowaudit.report.html import render_html_fragment

    return render_html_fragment(result)


__all__ = ["FORMATS", "coverage_svg", "html_fragment", "render", "to_dict"]
