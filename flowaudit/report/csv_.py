"""The CSV report: one row per finding (violations, then unused rules), a `kind` column.

With a baseline a `change` column (new/persisting) comes first; with enrichment a
`what it is` column comes last.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from flowaudit.report.rows import unused_table, violation_table

if TYPE_CHECKING:
    from flowaudit.audit import AuditResult


def render_csv(result: AuditResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    vh, vrows = violation_table(result)
    w.writerow(("kind", *vh))
    for r in vrows:
        w.writerow(("violation", *r))
    w.writerow(())
    uh, urows = unused_table(result)
    w.writerow(("kind", *uh))
    for r in urows:
        w.writerow(("unused-rule", *r))
    return buf.getvalue()
