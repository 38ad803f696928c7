"""Display rows shared by the human-readable renderers (terminal, markdown, csv, html)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flowaudit._util.arrow import pylist
from flowaudit.matrix.model import ports_text, protocol_name

if TYPE_CHECKING:
    from flowaudit.audit.result import AuditResult

#: findings shown per group by the text and Markdown reports without --detail
FIRST_FINDINGS = 5

VIOLATION_HEADERS = (
    "id",
    "reason",
    "vlan",
    "initiator",
    "responder",
    "proto",
    "port",
    "flows",
    "packets",
    "bytes",
    "states",
    "first seen",
    "last seen",
    "nearest rule",
    "what differs",
)
UNUSED_HEADERS = (
    "id",
    "rule",
    "status",
    "proto",
    "ports",
    "unused ports",
    "unused pairs",
    "flows",
    "condition",
    "evidence",
)


def states_text(v: dict[str, Any]) -> str:
    keys = ("attempted", "rejected", "established", "midstream")
    parts = [f"{k} {v[k]}" for k in keys if v[k]]
    if v["protocol"] != 6 and v["answered"]:
        parts.append(f"answered {v['answered']}")  # UDP/ICMP: both sides sent
    return ", ".join(parts) or "-"


def _t(t: Any) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t is not None else ""


ENRICHMENT_LABELS = (
    ("tls_sni", "TLS SNI"),
    ("tls_cert_names", "cert"),
    ("http_host", "HTTP host"),
    ("ssh_banner", "SSH"),
    ("dns_names", "DNS"),
)


def enrichment_text(result: AuditResult, finding_id: str) -> str:
    """What tshark saw in a finding's packets (``flowaudit.evidence.enrich``), or ``-``."""
    e = result.enrichment.get(finding_id) or {}
    parts = [f"{label} {', '.join(e[k])}" for k, label in ENRICHMENT_LABELS if e.get(k)]
    return "; ".join(parts) or "-"


def _optional(
    result: AuditResult, headers: tuple[str, ...], rows: list[tuple[str, ...]], enrich: bool
) -> tuple[list[str], list[list[str]]]:
    """Add the optional columns: ``change`` first (with a baseline), ``what it is`` last."""
    hs, out = list(headers), [list(r) for r in rows]
    if result.changes is not None:
        hs.insert(0, "change")
        for r in out:
            r.insert(0, result.changes.status(r[0]))
    if enrich and result.enrichment:
        hs.append("what it is")
        for r in out:
            r.append(enrichment_text(result, r[hs.index("id")]))
    return hs, out


def violation_table(
    result: AuditResult, limit: int | None = None
) -> tuple[list[str], list[list[str]]]:
    """Headers and display rows of the violations, optional columns included, group by
    group (a ``group`` column first): every finding, or the first ``limit`` of each group
    followed by a row saying how many more there are."""
    hs, rows = _optional(result, VIOLATION_HEADERS, violation_rows(result), True)
    labels = group_labels(result)
    by_id = {r[hs.index("id")]: r for r in rows}
    gi = hs.index("id")  # the group column goes before the id
    out: list[list[str]] = []
    for g in pylist(result.finding_groups) if result.finding_groups is not None else []:
        ids = g["findings"]
        shown = ids if limit is None else ids[:limit]
        for fid in shown:
            if fid not in by_id:  # filtered out (--only-new)
                continue
            r = list(by_id.pop(fid))
            out.append([*r[:gi], labels[g["group_id"]], *r[gi:]])
        if len(ids) > len(shown):
            more = len(ids) - len(shown)
            blank = ["" for _ in hs]
            blank[hs.index("reason")] = f"… {more:,} more in {labels[g['group_id']]} (--detail)"
            out.append([*blank[:gi], labels[g["group_id"]], *blank[gi:]])
    for r in by_id.values() if limit is None else ():  # no groups: a result made by hand
        out.append([*r[:gi], "-", *r[gi:]])
    return [*hs[:gi], "group", *hs[gi:]], out


GROUP_HEADERS = (
    "group",
    "id",
    "reason",
    "who",
    "proto/port",
    "findings",
    "flows",
    "packets",
    "bytes",
    "first seen",
    "last seen",
    "top addresses (by bytes)",
)


def group_labels(result: AuditResult) -> dict[str, str]:
    """group id → ``G1``, ``G2`` … in report order."""
    if result.finding_groups is None:
        return {}
    ids = result.finding_groups.column("group_id").to_pylist()
    return {gid: f"G{i + 1}" for i, gid in enumerate(ids)}


def side_text(side: str, n: int, top: list[str]) -> str:
    """``nodes``, ``internet (300 addresses)``, ``internet (8.8.8.8)``."""
    from flowaudit.matrix.hosts import ADDRESS_CLASSES

    if n > 1:
        return f"{side} ({n:,} addresses)"
    if side in ADDRESS_CLASSES and top:
        return f"{side} ({top[0]})"
    return side


def proto_port(protocol: int, port: int | None) -> str:
    return f"{protocol_name(protocol)}/{'-' if port is None else port}"


def group_line(g: dict[str, Any]) -> str:
    """``nodes → internet (300 addresses)``."""
    src = side_text(g["src_side"], g["distinct_initiators"], g["top_initiators"])
    dst = side_text(g["dst_side"], g["distinct_responders"], g["top_responders"])
    return f"{src} → {dst}"


def top_text(g: dict[str, Any]) -> str:
    def more(top: list[str], n: int) -> str:
        return ", ".join(top) + (f" +{n - len(top):,}" if n > len(top) else "")

    return (
        f"{more(g['top_initiators'], g['distinct_initiators'])} → "
        f"{more(g['top_responders'], g['distinct_responders'])}"
    )


def group_rows(result: AuditResult) -> list[tuple[str, ...]]:
    if result.finding_groups is None:
        return []
    labels = group_labels(result)
    return [
        (
            labels[g["group_id"]],
            g["group_id"],
            g["reason"],
            group_line(g),
            proto_port(g["protocol"], g["dst_port"]),
            f"{len(g['findings']):,}",
            f"{g['flows']:,}",
            f"{g['packets']:,}",
            f"{g['bytes']:,}",
            _t(g["first_seen"]),
            _t(g["last_seen"]),
            top_text(g),
        )
        for g in pylist(result.finding_groups)
    ]


def group_table(result: AuditResult) -> tuple[list[str], list[list[str]]]:
    """Headers and display rows of the finding groups (``change`` first with a baseline:
    ``new`` when the group was not in the baseline)."""
    hs, out = list(GROUP_HEADERS), [list(r) for r in group_rows(result)]
    if result.changes is not None:
        new = set(result.changes.new_groups)
        hs.insert(0, "change")
        for r in out:
            r.insert(0, "new" if r[1] in new else "persisting")
    return hs, out


def unused_table(result: AuditResult) -> tuple[list[str], list[list[str]]]:
    """Headers and display rows of the unused and partly-used rules."""
    return _optional(result, UNUSED_HEADERS, unused_rows(result), False)


SHAPE_HEADERS = (
    "from",
    "to",
    "flows",
    "bytes",
    "approved flows",
    "approved bytes",
    "not approved flows",
    "not approved bytes",
    "control plane flows",
)
SHAPE_NOTE = (
    "Flows and bytes per source → destination (smallest matrix group, else address class), "
    "approved by a rule or not, and LAN control plane."
)


def shape_rows(result: AuditResult) -> list[tuple[str, ...]]:
    if result.traffic_shape is None:
        return []
    return [
        (
            s["src_side"],
            s["dst_side"],
            f"{s['flows']:,}",
            f"{s['bytes']:,}",
            f"{s['approved_flows']:,}",
            f"{s['approved_bytes']:,}",
            f"{s['unapproved_flows']:,}",
            f"{s['unapproved_bytes']:,}",
            f"{s['control_plane_flows']:,}",
        )
        for s in pylist(result.traffic_shape)
    ]


UNUSED_COLS = ("change", "id", "rule", "proto", "ports", "condition", "evidence")
OVERBROAD_COLS = (
    "change", "id", "rule", "proto", "ports", "unused ports", "flows", "condition", "evidence",
)  # fmt: skip
PAIRS_COLS = ("change", "id", "rule", "proto", "ports", "unused pairs", "flows")
RULE_NOTES = {
    "unused": "No matching traffic at all in the window; the evidence says whether the "
    "capture could see the rule's traffic.",
    "overbroad": "Rules used, but some ports of their ranges never carried traffic: "
    "candidates for narrowing.",
    "pairs": "Rules used, but some host pairs they allow never talked (groups of at most "
    "16 addresses are expanded).",
}


def _pick(
    hs: list[str], rows: list[list[str]], cols: tuple[str, ...], keep: Any
) -> tuple[list[str], list[list[str]]]:
    idx = [hs.index(c) for c in cols if c in hs]
    return [hs[i] for i in idx], [[r[i] for i in idx] for r in rows if keep(r)]


def rule_sections(
    result: AuditResult,
) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The unused-rules table split three ways: ``unused`` (no traffic at all),
    ``overbroad`` (partly used: ports of the range never carried traffic) and ``pairs``
    (partly used: host pairs never seen). A rule may be in the last two."""
    hs, rows = unused_table(result)
    st, up, pairs = hs.index("status"), hs.index("unused ports"), hs.index("unused pairs")
    return {
        "unused": _pick(hs, rows, UNUSED_COLS, lambda r: r[st] == "unused"),
        "overbroad": _pick(hs, rows, OVERBROAD_COLS, lambda r: r[st] != "unused" and r[up]),
        "pairs": _pick(hs, rows, PAIRS_COLS, lambda r: r[st] != "unused" and r[pairs] != "-"),
    }


def pairs_line(result: AuditResult) -> str:
    """``Host pairs never seen: 52 pairs of 27 rules``."""
    s = result.stats
    return (
        f"Host pairs never seen: {s.get('unseen_pairs', 0):,} pairs of "
        f"{s.get('unseen_pair_rules', 0):,} partly used rules"
    )


CHANGE_HEADERS = ("change", "id", "finding", "what", "last seen")
CONTROL_PLANE_HEADERS = (
    "kind",
    "proto",
    "initiator",
    "responder",
    "flows",
    "packets",
    "bytes",
    "first seen",
    "last seen",
)
CONTROL_PLANE_NOTE = (
    "Link-scoped protocols no port matrix governs (IPv6 ND/RA, MLD, IGMP, VRRP/CARP, "
    "DHCP/DHCPv6, mDNS, LLMNR, SSDP) sent to multicast, broadcast or link-local addresses: "
    "not violations, not in the exit code (--strict reports them as violations; "
    "--control-plane FILE changes the list)."
)


def control_plane_rows(result: AuditResult) -> list[tuple[str, ...]]:
    if result.control_plane is None:
        return []
    return [
        (
            c["kind"],
            protocol_name(c["protocol"]),
            c["src_ip"],
            c["dst_ip"],
            f"{c['flows']:,}",
            f"{c['packets']:,}",
            f"{c['bytes']:,}",
            _t(c["first_seen"]),
            _t(c["last_seen"]),
        )
        for c in pylist(result.control_plane)
    ]


OVERLAY_HEADERS = (
    "finding",
    "rule",
    "tunnel",
    "id",
    "outer",
    "inner source",
    "inner destination",
    "proto/port",
    "flows",
    "packets",
    "bytes",
    "first seen",
    "last seen",
)
OVERLAY_NOTE = (
    "What each tunnel rule carried: the inner conversations of VXLAN/Geneve/GRE frames, by "
    "the rule that approved their outer flow (- when none did), tunnel and id, the outer "
    "pair (initiator's node first) and the inner source /24. Inner addresses are pod "
    "addresses: never matched against the node matrix. With a pod allow list (pods: in the "
    "matrix) inner traffic outside it is an overlay-not-approved finding."
)


def overlay_rows(result: AuditResult) -> list[tuple[str, ...]]:
    if result.overlay is None:
        return []
    out: list[tuple[str, ...]] = []
    for o in pylist(result.overlay):
        port = "-" if o["dst_port"] is None else str(o["dst_port"])
        tid = "-" if o["tunnel_id"] is None else str(o["tunnel_id"])
        out.append(
            (
                f"{o['finding_id']} {o['reason']}" if o["reason"] else "-",
                o["rule_id"] or "-",
                o["tunnel"],
                tid,
                f"{o['outer_src_ip']} → {o['outer_dst_ip']}",
                o["inner_src_ip"],
                o["inner_dst_ip"],
                f"{protocol_name(o['protocol'])}/{port}",
                f"{o['flows']:,}",
                f"{o['packets']:,}",
                f"{o['bytes']:,}",
                _t(o["first_seen"]),
                _t(o["last_seen"]),
            )
        )
    return out


def encrypted_line(result: AuditResult) -> str | None:
    """What the capture could not see into (WireGuard, ESP), or None when nothing was."""
    e = result.encrypted
    if not e or not (e["wireguard_flows"] or e["esp_flows"]):
        return None
    share = 100.0 * (e["wireguard_bytes"] + e["esp_bytes"]) / e["bytes"] if e["bytes"] else 0.0
    return (
        f"Encrypted, not auditable from this capture: WireGuard {e['wireguard_flows']:,} flows "
        f"({e['wireguard_bytes']:,} bytes), ESP {e['esp_flows']:,} flows ({e['esp_bytes']:,} "
        f"bytes): {share:.1f} % of the window's bytes. The conversations inside are not in "
        "this audit; audit them where they are decrypted (Hubble flows, a node capture)."
    )


def _what(kind: str, f: dict[str, Any]) -> str:
    """One line about a finding (a JSON violation / unused-rule object or a row)."""
    proto = protocol_name(int(f.get("protocol") or 0))
    if kind == "violation":
        port = "-" if f.get("dst_port") is None else str(f["dst_port"])
        vlan = f" vlan {f['vlan_id']}" if f.get("vlan_id") is not None else ""
        return f"{f.get('reason')}: {f.get('src_ip')} → {f.get('dst_ip')} {proto}/{port}{vlan}"
    return f"rule {f.get('rule_id')} {proto}: {f.get('status')}"


def change_rows(result: AuditResult) -> list[tuple[str, ...]]:
    """The findings new since the baseline (from this result), then the resolved ones
    (from the baseline: they are gone now). Persisting ones are only counted."""
    if result.changes is None:
        return []
    new = set(result.changes.new)
    rows: list[tuple[str, ...]] = []
    for kind, table in (("violation", result.violations), ("unused-rule", result.unused_rules)):
        for f in pylist(table):
            if f["finding_id"] in new:
                last = _t(f.get("last_seen")) if kind == "violation" else "-"
                rows.append(("new", f["finding_id"], kind, _what(kind, f), last))
    for f in result.changes.resolved_findings:
        seen = f.get("last_seen")  # ISO text in the baseline report
        last = seen[:19].replace("T", " ") if isinstance(seen, str) else "-"
        rows.append(("resolved", f["finding_id"], f["kind"], _what(f["kind"], f), last))
    return rows


def _same(s: str) -> str:
    return s


def new_group_table(result: AuditResult) -> tuple[list[str], list[list[str]]]:
    """The finding groups new since the baseline (what a mail of new findings leads with)."""
    if result.changes is None:
        return [], []
    hs, rows = group_table(result)
    ch = hs.index("change")
    keep = [i for i, h in enumerate(hs) if h not in ("change", "first seen", "last seen")]
    return [hs[i] for i in keep], [[r[i] for i in keep] for r in rows if r[ch] == "new"]


def changes_line(result: AuditResult, esc: Callable[[str], str] = _same) -> str | None:
    """The baseline comparison in one line; ``esc`` escapes the baseline's file name."""
    c = result.changes
    if c is None:
        return None
    line = (
        f"Since {esc(c.baseline_file)} (sha256 {c.baseline_sha256[:12]}): {len(c.new)} new, "
        f"{len(c.persisting)} persisting, {len(c.resolved)} resolved; "
        f"{len(c.new_groups)} new finding groups"
    )
    if c.baseline_matrix_sha256 and c.baseline_matrix_sha256 != result.rules_digest:
        line += "; the matrix changed since the baseline"
    return line


def input_lines(result: AuditResult) -> list[str]:
    """What an auditor needs to re-run the audit: captures, matrix, window, version."""
    from flowaudit._util.time import iso
    from flowaudit._util.version import __version__

    lines = [
        f"Matrix: {result.matrix_name}, sha256 {result.rules_digest}",
        f"Window: {iso(result.window_start) or '-'} .. {iso(result.window_end) or '-'} "
        f"({result.flows:,} flows audited)",
    ]
    for c in result.captures:
        lines.append(
            f"Capture: {c.get('name')} ({c.get('source_kind')}, {c.get('packets') or 0:,} packets,"
            f" {c.get('flows') or 0:,} flows), blake3 {c.get('blake3')}"
        )
    lines.append(f"flowaudit {__version__}")
    return lines


def violation_rows(result: AuditResult) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for v in pylist(result.violations):
        rows.append(
            (
                v["finding_id"],
                v["reason"] + (" (direction uncertain)" if v["direction_uncertain"] else ""),
                "-" if v["vlan_id"] is None else str(v["vlan_id"]),
                v["src_ip"],
                v["dst_ip"],
                protocol_name(v["protocol"]),
                "-" if v["dst_port"] is None else str(v["dst_port"]),
                f"{v['flows']:,}",
                f"{v['packets']:,}",
                f"{v['bytes']:,}",
                states_text(v),
                _t(v["first_seen"]),
                _t(v["last_seen"]),
                v["nearest_rule"] or "-",
                v["differences"],
            )
        )
    return rows


def unused_rows(result: AuditResult) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for u in pylist(result.unused_rules):
        pairs = ", ".join(f"{a}→{b}" for a, b in u["unused_pairs"])
        rows.append(
            (
                u["finding_id"],
                u["rule_id"],
                u["status"],
                protocol_name(u["protocol"]),
                ports_text(u["ports"]),
                ports_text(u["unused_ports"]),
                pairs or "-",
                f"{u['flows']:,}",
                u["condition"] or "-",
                u["evidence"],
            )
        )
    return rows


def summary_line(result: AuditResult, esc: Callable[[str], str] = _same) -> str:
    """The one-line summary; ``esc`` escapes the matrix name (the rest is our own text)."""
    by = result.stats.get("by_reason", {})
    reasons = ", ".join(f"{k} {n}" for k, n in by.items())
    sampled = " (counts are sampled estimates)" if result.sampled else ""
    new = " new" if result.stats.get("only_new") else ""
    return (
        f"{result.flows:,} flows audited against {esc(result.matrix_name)} "
        f"(sha256 {result.rules_digest[:12]}): {result.violations.num_rows}{new} violations"
        f" in {result.stats.get('finding_groups', 0)} groups"
        + (f" [{reasons}]" if reasons else "")
        + f", {result.stats.get('unused', 0)}{new} unused rules, "
        f"{result.stats.get('overbroad', 0)}{new} over-broad, "
        f"{result.stats.get('unseen_pair_rules', 0)}{new} with host pairs never seen{sampled}"
        + (
            f"; LAN control plane: {result.stats['control_plane_flows']:,} flows apart"
            if result.stats.get("control_plane_flows")
            else ""
        )
    )
