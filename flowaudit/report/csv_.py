"""The CSV report: one row per finding (violations, then unused rules), a `kind` column."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from flowaudit.report.rows import UNUSED_HEADERS, VIOLATION_HEADERS, unused_rows, violation_rows

if TYPE_CHECKING:
    from flowaudit.audit import AuditResult


def render_csv(result: AuditResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("kind", *VIOLATION_HEADERS))
    for r in violation_rows(result):
        w.writerow(("violation", *r))
    w.writerow(())
    w.writerow(("kind", *UNUSED_HEADERS))
    for r in unused_rows(result):
        w.writerow(("unused-rule", *r))
    return buf.getvalue()
