"""The HTML report: one self-contained page (no external references)."""

from __future__ import annotations

from html import escape
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

CSS = (
    "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}"
    "th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
    "th{background:#eef}code{font-size:12px}"
)


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(result: AuditResult) -> str:
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>flowaudit report: {escape(result.matrix_name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>flowaudit report: {escape(result.matrix_name)}</h1>",
        f"<p>{escape(summary_line(result))}</p>",
        "<ul>",
        f"<li>Matrix sha256: <code>{escape(result.rules_digest)}</code></li>",
        f"<li>Window: {escape(iso(result.window_start) or '-')} .. "
        f"{escape(iso(result.window_end) or '-')}</li>",
        "</ul>",
        f"<h2>Traffic outside the approved matrix ({result.violations.num_rows})</h2>",
        _table(VIOLATION_HEADERS, violation_rows(result)),
        f"<h2>Approved rules without traffic ({result.unused_rules.num_rows})</h2>",
        _table(UNUSED_HEADERS, unused_rows(result)),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
