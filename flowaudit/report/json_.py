"""The JSON report: DESIGN.md "Machine-readable audit output", schema_version 1."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from flowaudit._util.arrow import pylist, text_array
from flowaudit._util.time import iso
from flowaudit.report.arrow_json import Spec, joined_lines, lit, object_texts, write_joined
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


def result_to_dict(result: AuditResult, *, lists: bool = True) -> dict[str, Any]:
    """The JSON report as a dict; ``lists=False`` leaves the long lists (finding groups,
    violations, coverage) empty, for ``write_json``, which encodes them from Arrow."""
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
        "finding_groups": group_dicts(result) if lists else [],
        "violations": violation_dicts(result) if lists else [],
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
        "coverage": coverage_dicts(result) if lists else [],
    }
    if result.changes is not None:
        doc["changes"] = result.changes.to_dict(result.rules_digest)
    return doc


VIOLATION_SPEC: Spec = (
    ("finding_id", "finding_id"),
    ("reason", "reason"),
    ("src_ip", "src_ip"),
    ("dst_ip", "dst_ip"),
    ("protocol", "protocol"),
    ("dst_port", "dst_port"),
    ("vlan_id", "vlan_id"),
    ("flows", "flows"),
    ("packets", "packets"),
    ("bytes", "bytes"),
    ("first_seen", "first_seen"),
    ("last_seen", "last_seen"),
    ("states", tuple((k, k) for k in STATE_KEYS)),
    ("direction_uncertain", "direction_uncertain"),
    ("sampling", "sampling"),
    ("nearest_rule", (("rule_id", "nearest_rule"), ("differences", "differences"))),
    ("group_id", "group_id"),
)
BATCH = 65_536  # rows encoded at a time: the report's text is never held whole


def _change_texts(table: pa.Table, ids: Sequence[str], column: str = "finding_id") -> pa.Array:
    """``"new"`` for the rows whose ``column`` is in ``ids``, else ``"persisting"``."""
    new = pc.is_in(table.column(column), value_set=text_array(list(ids)))
    return pc.if_else(pc.fill_null(new, lit(False)), lit('"new"'), lit('"persisting"'))


def _violation_texts(result: AuditResult, batch: pa.Table) -> pa.Array:
    """The JSON objects of ``violation_dicts`` for one batch of the violations table."""
    if "group_id" not in batch.column_names:  # a result made by hand
        batch = batch.append_column("group_id", pa.nulls(batch.num_rows, pa.string()))
    spec: list[tuple[str, Any]] = list(VIOLATION_SPEC)
    if result.changes is not None:
        spec.append(("change", _change_texts(batch, result.changes.new)))
    if result.enrichment:
        ids = batch.column("finding_id").to_pylist()
        texts = [dumps(result.enrichment.get(fid, {})) for fid in ids]
        spec.append(("enrichment", text_array(texts)))
    return object_texts(batch, spec)


def _group_texts(result: AuditResult, batch: pa.Table) -> pa.Array:
    spec: list[tuple[str, Any]] = [(k, k) for k in GROUP_KEYS]
    if result.changes is not None:
        spec.append(("change", _change_texts(batch, result.changes.new_groups, "group_id")))
    return object_texts(batch, spec)


def _coverage_texts(_: AuditResult, batch: pa.Table) -> pa.Array:
    return object_texts(batch, [(k, k) for k in batch.column_names if k not in ("row", "col")])


_ARROW_LISTS = {
    "finding_groups": ("finding_groups", _group_texts),
    "violations": ("violations", _violation_texts),
    "coverage": ("coverage", _coverage_texts),
}


def _write_arrow_list(out: BinaryIO, table: pa.Table, encode: Any, result: AuditResult) -> None:
    """The list's items, encoded batch by batch on two threads (Arrow's and numpy's kernels
    release the GIL: a second core encodes the next batch while one is written), written
    in order; at most two batches' texts are held."""
    from concurrent.futures import Future, ThreadPoolExecutor

    sep = ",\n    "

    def lines(b: pa.RecordBatch) -> pa.Array:
        return joined_lines(encode(result, pa.Table.from_batches([b])), "", sep)

    out.write(b"[\n    ")
    batches = table.to_batches(max_chunksize=BATCH)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="json") as pool:
        pending: list[Future[pa.Array]] = [pool.submit(lines, b) for b in batches[:2]]
        for i in range(len(batches)):
            done = pending.pop(0).result()
            if i + 2 < len(batches):
                pending.append(pool.submit(lines, batches[i + 2]))
            if i:
                out.write(sep.encode())
            write_joined(out, done, sep)
            del done
    out.write(b"\n  ]")


def write_json(result: AuditResult, out: BinaryIO) -> None:
    """Write the report (UTF-8) to ``out``, byte for byte what ``render_json`` returns:
    the long lists (violations, finding groups, coverage cells) encoded column-wise from
    their Arrow tables, batch by batch; the rest through ``dumps``."""
    doc = result_to_dict(result, lists=False)
    first = True
    for key, value in doc.items():
        out.write(b"{\n" if first else b",\n")
        first = False
        out.write(f"  {dumps(key)}: ".encode())
        arrow = _ARROW_LISTS.get(key)
        table = getattr(result, arrow[0]) if arrow else None
        if arrow and table is not None and table.num_rows:
            _write_arrow_list(out, table, arrow[1], result)
        elif arrow:
            out.write(b"[]")
        elif isinstance(value, list) and value:
            items = ",\n    ".join(dumps(v) for v in value)
            out.write(f"[\n    {items}\n  ]".encode())
        else:
            out.write(dumps(value).encode())
    out.write(b"\n}\n")


def render_json(result: AuditResult) -> str:
    """The report as strict JSON text (``report.values``: no NaN, no Decimal): one
    top-level key per line, the items of a list key (violations, groups, rules, cells …)
    one compact object per line (``write_json`` writes the same bytes to a stream)."""
    buf = io.BytesIO()
    write_json(result, buf)
    return buf.getvalue().decode("utf-8")
