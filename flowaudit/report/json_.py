"""The JSON report: DESIGN.md "Machine-readable audit output", schema_version 1."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowaudit._util.arrow import pylist
from flowaudit._util.time import iso
from flowaudit.report.values import dumps
from flowaudit.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from flowaudit.audit.result import AuditResult

STATE_KEYS = ("attempted", "rejected", "established", "midstream", "answered")


def violation_dicts(result: AuditResult) -> list[dict[str, Any]]:
    out = []
    for v in pylist(result.violations):
        d = {
            "finding_id": v["finding_id"],
            "reason": v["reason"],
            "src_ip": v["src_ip"],
            "dst_ip": v["dst_ip"],
            "protocol": v["protocol"],
            "dst_port": v["dst_port"],
            "vlan_id": v["vlan_id"],
            "flows": v["flows"],
            "packets": v["packets"],
            "bytes": v["bytes"],
            "first_seen": iso(v["first_seen"]),
            "last_seen": iso(v["last_seen"]),
            "states": {k: v[k] for k in STATE_KEYS},
            "direction_uncertain": v["direction_uncertain"],
            "sampling": v["sampling"],
            "nearest_rule": {"rule_id": v["nearest_rule"], "differences": v["differences"]},
            "group_id": v.get("group_id"),
        }
        _optional(result, d)
        out.append(d)
    return out


def _optional(result: AuditResult, d: dict[str, Any]) -> None:
    """The optional keys: ``change`` (with a baseline), ``enrichment`` (when enriched)."""
    if result.changes is not None:
        d["change"] = result.changes.status(d["finding_id"])
    if result.enrichment:
        d["enrichment"] = result.enrichment.get(d["finding_id"], {})


def unused_dicts(result: AuditResult) -> list[dict[str, Any]]:
    out = []
    for u in pylist(result.unused_rules):
        d = dict(u)
        if result.changes is not None:
            d["change"] = result.changes.status(d["finding_id"])
        out.append(d)
    return out


GROUP_KEYS = (
    "group_id",
    "reason",
    "src_side",
    "dst_side",
    "protocol",
    "dst_port",
    "findings",
    "flows",
    "packets",
    "bytes",
    "distinct_initiators",
    "distinct_responders",
    "first_seen",
    "last_seen",
    "top_initiators",
    "top_responders",
)


def group_dicts(result: AuditResult) -> list[dict[str, Any]]:
    if result.finding_groups is None:
        return []
    out = []
    for g in pylist(result.finding_groups):
        d = {k: g[k] for k in GROUP_KEYS}
        d["first_seen"], d["last_seen"] = iso(g["first_seen"]), iso(g["last_seen"])
        if result.changes is not None:
            d["change"] = "new" if g["group_id"] in result.changes.new_groups else "persisting"
        out.append(d)
    return out


def control_plane_dicts(result: AuditResult) -> list[dict[str, Any]]:
    if result.control_plane is None:
        return []
    keys = ("protocol", "kind", "src_ip", "dst_ip", "flows", "packets", "bytes")
    return [
        {
            **{k: c[k] for k in keys},
            "first_seen": iso(c["first_seen"]),
            "last_seen": iso(c["last_seen"]),
        }
        for c in pylist(result.control_plane)
    ]


OVERLAY_KEYS = ("finding_id", "reason", "rule_id", "tunnel", "tunnel_id", "outer_src_ip",
                "outer_dst_ip", "inner_src_ip", "inner_dst_ip", "protocol", "dst_port", "flows",
                "packets", "bytes")  # fmt: skip


def overlay_dicts(result: AuditResult) -> list[dict[str, Any]]:
    if result.overlay is None:
        return []
    return [
        {
            **{k: o[k] for k in OVERLAY_KEYS},
            "first_seen": iso(o["first_seen"]),
            "last_seen": iso(o["last_seen"]),
        }
        for o in pylist(result.overlay)
    ]


def coverage_dicts(result: AuditResult) -> list[dict[str, Any]]:
    if result.coverage is None:
        return []
    return [
        {k: v for k, v in c.items() if k not in ("row", "col")} for c in pylist(result.coverage)
    ]


def result_to_dict(result: AuditResult) -> dict[str, Any]:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "matrix": {"name": result.matrix_name, "sha256": result.rules_digest},
        "window": {
            "start": iso(result.window_start),
            "end": iso(result.window_end),
            "flows": result.flows,
        },
        "captures": list(result.captures),
        "traffic_shape": pylist(result.traffic_shape) if result.traffic_shape is not None else [],
        "finding_groups": group_dicts(result),
        "violations": violation_dicts(result),
        "unused_rules": unused_dicts(result),
        "control_plane": control_plane_dicts(result),
        "overlay": overlay_dicts(result),
        "encrypted": result.encrypted or {},
        "summary": {
            "flows": result.flows,
            "violations": result.violations.num_rows,
            "finding_groups": result.stats.get("finding_groups", 0),
            "violation_flows": result.stats.get("violation_flows", 0),
            "by_reason": result.stats.get("by_reason", {}),
            "unused_rules": result.stats.get("unused", 0),
            "partly_used_rules": result.stats.get("partly_used", 0),
            "overbroad_rules": result.stats.get("overbroad", 0),
            "unseen_pair_rules": result.stats.get("unseen_pair_rules", 0),
            "unseen_pairs": result.stats.get("unseen_pairs", 0),
            "control_plane": result.stats.get("control_plane", 0),
            "control_plane_flows": result.stats.get("control_plane_flows", 0),
            "overlay": result.stats.get("overlay", 0),
            "overlay_flows": result.stats.get("overlay_flows", 0),
            "overlay_not_approved": result.stats.get("overlay_not_approved", 0),
            "strict": result.stats.get("strict", False),
            "sampled": result.sampled,
            "counts_note": (
                "packet and byte counts are sampled estimates" if result.sampled else None
            ),
        },
        "coverage": coverage_dicts(result),
    }
    if result.changes is not None:
        doc["changes"] = result.changes.to_dict(result.rules_digest)
    return doc


def render_json(result: AuditResult) -> str:
    """The report as strict JSON text (``report.values``: no NaN, no Decimal): one
    top-level key per line, the items of a list key (violations, groups, rules, cells …)
    one compact object per line. ``indent`` would switch ``json`` to its pure-Python
    encoder: 10× slower on a million findings."""
    doc = result_to_dict(result)
    parts = []
    for key, value in doc.items():
        if isinstance(value, list) and value:
            items = ",\n    ".join(dumps(v) for v in value)
            text = f"[\n    {items}\n  ]"
        else:
            text = dumps(value)
        parts.append(f"  {dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"
