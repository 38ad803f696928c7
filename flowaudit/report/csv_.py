"""The CSV report: one row per finding group, then per finding (violations, then unused
rules), a `kind` column.

With a baseline a `change` column (new/persisting) comes first and a third section lists
the new and resolved findings; with enrichment a `what it is` column comes last.

Formula injection (OWASP "CSV injection"): a cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return gets a leading ``'``, so a spreadsheet shows it as text
and never evaluates it. Our own ``-`` (no value) and plain numbers are left as they are.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
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


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?[0-9][0-9,]*(\.[0-9]+)?")


def csv_cell(s: str) -> str:
    """``s`` safe to open in a spreadsheet: a leading ``'`` when it could start a formula."""
    if s.startswith(FORMULA_START) and s != "-" and not _NUMBER.fullmatch(s):
        return "'" + s
    return s


class _Writer:
    def __init__(self, buf: io.StringIO) -> None:
        self._w = csv.writer(buf, lineterminator="\n")

    def writerow(self, row: Iterable[str]) -> None:
        self._w.writerow([csv_cell(c) for c in row])


def render_csv(result: AuditResult) -> str:
    buf = io.StringIO()
    w = _Writer(buf)
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
