"""The result of an audit: findings tables, the window, stats, and their changes.

A leaf of the audit package: the renderers, the baseline comparison and the evidence
writer all read an ``AuditResult``; it imports none of them. The result the public API
returns (``flowaudit.api.AuditResult``) adds the display methods on top.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa


@dataclass(frozen=True)
class Changes:
    """Finding ids relative to a baseline report; ``resolved`` details come from it."""

    baseline_file: str
    baseline_sha256: str
    baseline_window: dict[str, Any]
    baseline_matrix_sha256: str | None
    new: tuple[str, ...]
    persisting: tuple[str, ...]
    resolved: tuple[str, ...]
    resolved_findings: tuple[dict[str, Any], ...]  # as they were in the baseline
    # finding groups of this result that the baseline did not have
    new_groups: tuple[str, ...] = ()

    def status(self, finding_id: str) -> str:
        return "new" if finding_id in self.new else "persisting"

    def to_dict(self, current_matrix_sha256: str) -> dict[str, Any]:
        return {
            "baseline": {
                "file": self.baseline_file,
                "sha256": self.baseline_sha256,
                "window": self.baseline_window,
                "matrix_sha256": self.baseline_matrix_sha256,
                "matrix_changed": self.baseline_matrix_sha256 != current_matrix_sha256,
            },
            "new": list(self.new),
            "new_groups": list(self.new_groups),
            "persisting": list(self.persisting),
            "resolved": list(self.resolved),
            "resolved_findings": list(self.resolved_findings),
        }


UNUSED_SCHEMA = pa.schema(
    [
        ("finding_id", pa.string()),
        ("rule_id", pa.string()),
        ("status", pa.string()),
        ("protocol", pa.uint8()),
        ("ports", pa.list_(pa.list_(pa.int32()))),
        ("unused_ports", pa.list_(pa.list_(pa.int32()))),
        ("unused_pairs", pa.list_(pa.list_(pa.string()))),
        ("flows", pa.int64()),
        ("condition", pa.string()),
        ("origin", pa.string()),
        ("provenance", pa.string()),
        ("purpose", pa.string()),
        ("observable", pa.bool_()),
        ("evidence", pa.string()),
    ]
)


@dataclass(frozen=True)
class AuditResult:
    """What an audit found. Tables are Arrow; ``to_dict`` is the JSON contract."""

    violations: pa.Table
    unused_rules: pa.Table
    matrix_name: str
    rules_digest: str
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    flows: int
    sampled: bool
    captures: tuple[dict[str, Any], ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)
    # one row per (rule, protocol, responder port, initiator, responder) that carried traffic
    rule_usage: pa.Table | None = None
    # the matrix coverage picture: one row per grid cell (flowaudit.audit.coverage)
    coverage: pa.Table | None = None
    # finding id -> {"tls_sni": [...], "tls_cert_names": [...], "http_host": [...],
    #                "ssh_banner": [...], "dns_names": [...]} (flowaudit.evidence.enrich; optional)
    enrichment: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # set by flowaudit.audit.baseline.compare(): new / persisting / resolved finding ids
    changes: Changes | None = None
    # one row per finding group (finding_groups.sql): violations sharing (reason, source
    # side, destination side, protocol, responder port); each violation is in exactly one
    finding_groups: pa.Table | None = None
    # the LAN control plane (control_plane.sql): link-scoped protocols listed apart, not
    # violations (empty with --strict, which reports them as violations)
    control_plane: pa.Table | None = None
    # the shape of the traffic (traffic_shape.sql): flows and bytes per (source side →
    # destination side), approved, LAN control plane and not approved
    traffic_shape: pa.Table | None = None
    # what the tunnels carried (overlay.sql): inner flows per (rule of the outer flow,
    # tunnel, id, outer pair, inner source /24, inner destination, protocol, port)
    overlay: pa.Table | None = None
    # the limit of sight (encrypted.sql): WireGuard and ESP flows and bytes, against all
    encrypted: dict[str, int] | None = None

    @property
    def has_findings(self) -> bool:
        return bool(
            self.violations.num_rows > 0
            or self.unused_rules.num_rows > 0
            or self.stats.get("overlay_not_approved")
        )

    def to_pandas(self) -> tuple[Any, Any]:
        """(violations, unused_rules) as pandas DataFrames."""
        return self.violations.to_pandas(), self.unused_rules.to_pandas()


def finding_stats(
    violations: pa.Table, unused: pa.Table, groups: pa.Table | None = None
) -> dict[str, Any]:
    """The summary counts of the findings tables (``AuditResult.stats``)."""
    return {
        "finding_groups": groups.num_rows if groups is not None else 0,
        "violation_flows": _sum(violations, "flows"),
        "by_reason": _count_by(violations, "reason"),
        "unused": _count_status(unused, "unused"),
        "partly_used": _count_status(unused, "partly-used"),
        **_partly_split(unused),
    }


def _partly_split(unused: pa.Table) -> dict[str, int]:
    """Partly used rules split: ``overbroad`` (ports of the range never carried traffic),
    ``unseen_pair_rules`` (host pairs never seen) and ``unseen_pairs`` (how many pairs)."""
    rows = unused.select(["status", "unused_ports", "unused_pairs"]).to_pylist()
    partly = [r for r in rows if r["status"] == "partly-used"]
    return {
        "overbroad": sum(1 for r in partly if r["unused_ports"]),
        "unseen_pair_rules": sum(1 for r in partly if r["unused_pairs"]),
        "unseen_pairs": sum(len(r["unused_pairs"]) for r in partly),
    }


def _sum(table: pa.Table, column: str) -> int:
    """The column's sum (nulls count 0), in Arrow: no Python object per row."""
    import pyarrow.compute as pc

    if not table.num_rows:
        return 0
    return int(pc.sum(table.column(column), min_count=0).as_py() or 0)


def _count_by(table: pa.Table, column: str) -> dict[str, int]:
    """How many rows hold each value of the column, by value."""
    import pyarrow.compute as pc

    if not table.num_rows:
        return {}
    counts = pc.value_counts(table.column(column)).to_pylist()
    return dict(sorted((c["values"], int(c["counts"])) for c in counts))


def _count_status(table: pa.Table, status: str) -> int:
    return sum(1 for s in table.column("status").to_pylist() if s == status)


__all__ = ["UNUSED_SCHEMA", "AuditResult", "Changes", "finding_stats"]
