"""The audit result as the public API returns it: able to show itself.

``AuditReport`` is an ``AuditResult`` (``flowaudit.audit.result``, a leaf that knows no
renderer) with the display methods the renderers give: the JSON dict, the coverage
picture, and ``_repr_html_`` for notebooks, so a notebook shows what the CLI writes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flowaudit.audit.result import AuditResult


@dataclasses.dataclass(frozen=True)
class AuditReport(AuditResult):
    """An ``AuditResult`` with its renderings (``flowaudit.audit()`` returns one)."""

    @classmethod
    def of(cls, result: AuditResult) -> AuditReport:
        """``result`` as an AuditReport (the same fields; itself when it already is one)."""
        if isinstance(result, cls):
            return result
        return cls(**{f.name: getattr(result, f.name) for f in dataclasses.fields(result)})

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (schema_version 1) as a dict."""
        from flowaudit.report.json_ import result_to_dict

        return result_to_dict(self)

    def coverage_svg(self) -> str:
        """The coverage picture (source group × destination service) as inline SVG."""
        from flowaudit.report.svg import coverage_svg

        return coverage_svg(self)

    def _repr_html_(self) -> str:
        from flowaudit.report.html import render_html_fragment

        return render_html_fragment(self)


__all__ = ["AuditReport"]
