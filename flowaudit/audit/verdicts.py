"""Which observed findings a matrix change settles or creates (``rules diff --store``).

Two audits of the same flows, one per matrix, compared by finding id (ids hash what the
traffic is, never the matrix): a violation only the old audit has is now approved; one
only the new audit has is newly a violation.
"""

from __future__ import annotations

from typing import Any

from flowaudit.audit.result import AuditResult

COLUMNS = ("finding_id", "vlan_id", "src_ip", "dst_ip", "protocol", "dst_port", "flows")


def verdict_changes(old: AuditResult, new: AuditResult) -> list[dict[str, Any]]:
    """One row per finding whose verdict differs: ``verdict`` approved | violation."""
    before = {r["finding_id"]: r for r in old.violations.to_pylist()}
    after = {r["finding_id"]: r for r in new.violations.to_pylist()}
    rows = []
    for verdict, a, b in (("approved", before, after), ("violation", after, before)):
        for fid, r in a.items():
            if fid not in b:
                rows.append(
                    {"verdict": verdict, **{c: r[c] for c in COLUMNS}, "reason": r["reason"]}
                )
    rows.sort(
        key=lambda r: (r["verdict"], r["src_ip"], r["dst_ip"], r["protocol"], r["dst_port"] or 0)
    )
    return rows
