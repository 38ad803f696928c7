"""The CSV report: one row per finding group, then per finding (violations, then unused
rules), a `kind` column.

With a baseline a `change` column (new/persisting) comes first and a third section lists
the new and resolved findings; with enrichment a `what it is` column comes last.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from flowaudit.report.rows import (
    CHANGE_HEADERS,
    CONTROL_PLANE_HEADERS,
    change_rows,
    control_plane_rows,
    group_table,
    unused_table,
    violation_table,
)

if TYPE_CHECKING:
    from flowaudit.audit.result import AuditResult


def render_csv(result: AuditResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    gh, grows = group_table(result)
    w.writerow(("kind", *gh))
    for r in grows:
        w.writerow(("group", *r))
    w.writerow(())
    vh, vrows = violation_table(result)
    w.writerow(("kind", *vh))
    for r in vrows:
        w.writerow(("violation", *r))
    w.writerow(())
    uh, urows = unused_table(result)
    w.writerow(("kind", *uh))
    for r in urows:
        w.writerow(("unused-rule", *r))
    cp = control_plane_rows(result)
    if cp:
        w.writerow(())
        w.writerow(("kind", *CONTROL_PLANE_HEADERS))
        for c in cp:
            w.writerow(("control-plane", *c))
    if result.changes is not None:  # new and resolved ids (resolved ones are in no table above)
        w.writerow(())
        w.writerow(("kind", *CHANGE_HEADERS))
        for c in change_rows(result):
            w.writerow(("change", *c))
    return buf.getvalue()
