"""The audit: flows × matrix → violations and unused rules, as one AuditResult.

Runs the engine's SQL (``conversations`` → ``matches`` → ``violations``,
``rule_usage``, ``rule_observability``, ``window``) and turns rule usage into
verdicts: which rules never carried traffic and which ports and host pairs of a
partly used rule stayed silent. Port-set complements and the "what differs"
text of the nearest rule are computed here, on small data, from the matrix model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from flowaudit._util.arrow import ints, pylist, text_array
from flowaudit.audit.control_plane import ControlPlane, load_control_plane
from flowaudit.audit.coverage import coverage_table
from flowaudit.audit.engine import Engine, SqlEngine
from flowaudit.audit.result import UNUSED_SCHEMA, AuditResult, finding_stats
from flowaudit.audit.rows import rows_table
from flowaudit.errors import StoreError, UsageError
from flowaudit.matrix import Matrix
from flowaudit.matrix.model import (
    PORTED,
    Rule,
    port_complement,
    ports_text,
    protocol_name,
)
from flowaudit.store import DEFAULT_STORE, CaptureRecord, FlowStore

if TYPE_CHECKING:
    from flowaudit.ingest import Progress
    from flowaudit.matrix.hosts import HostIndex

MAX_PAIR_HOSTS = 16  # expand host pairs of partly-used rules only for small groups


def audit_source(
    matrix: Matrix,
    captures: Sequence[Path] = (),
    *,
    store: FlowStore | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    engine: str = "auto",
    progress: Progress | None = None,
    control_plane: ControlPlane | None = None,
    strict: bool = False,
    vxlan_ports: Sequence[int] = (),
    sql_engine: SqlEngine | None = None,
) -> tuple[AuditResult, list[CaptureRecord]]:
    """Audit exactly ``captures`` (ingested into ``store``, else a temporary store), or,
    without captures, the whole ``store``. Returns the result and the captures' records.
    ``vxlan_ports``: VXLAN ports opened besides 4789 and 8472 when captures are ingested.
    ``sql_engine``: the engine that runs the SQL (default a DuckDB ``Engine``; the Spark
    backend passes a ``spark.engine.SparkEngine``); it is closed when the audit ends."""
    from flowaudit.ingest import ingest_file
    from flowaudit.packets.tunnels import vxlan_ports as all_vxlan_ports

    if since is not None and until is not None and since >= until:
        raise UsageError(f"--since {since.isoformat()} is not before --until {until.isoformat()}")
    ports = matrix.service_ports
    with tempfile.TemporaryDirectory(prefix="flowaudit-") as tmp:
        if captures:
            st = store if store is not None else FlowStore(Path(tmp) / "store")
            results = [
                ingest_file(
                    p,
                    st,
                    engine=engine,
                    progress=progress,
                    service_ports=ports,
                    vxlan_ports=all_vxlan_ports(vxlan_ports),
                )
                for p in captures
            ]
            wanted = {r.blake3 for r in results}
            records = [r for r in st.captures() if r.blake3 in wanted]
            files = st.flow_files(wanted)
        else:
            st = store if store is not None else FlowStore(DEFAULT_STORE)
            st.check_readable()
            records = st.captures()
            if not records:
                raise StoreError(
                    f"{st.root}: the flow store is empty (no capture ingested)",
                    hint="run `flowaudit ingest CAPTURE --store DIR` first",
                )
            files = st.flow_files()
        inputs = tuple(
            {
                "name": Path(r.path).name,
                "blake3": r.blake3,
                "packets": r.packets,
                "flows": r.flows,
                "source_kind": r.source_kind,
            }
            for r in records
        )
        result = run_audit(
            matrix,
            files,
            since=since,
            until=until,
            captures=inputs,
            control_plane=control_plane,
            strict=strict,
            spill_dir=st.root,
            sql_engine=sql_engine,
        )
        if st.warnings:  # what the store's readers skipped (each named, once)
            warnings = [*result.stats.get("warnings", []), *st.warnings]
            result = dataclasses.replace(result, stats={**result.stats, "warnings": warnings})
        return result, records


def run_audit(
    matrix: Matrix,
    flow_source: Sequence[Path] | pa.Table,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    captures: Sequence[dict[str, Any]] = (),
    control_plane: ControlPlane | None = None,
    strict: bool = False,
    spill_dir: Path | None = None,
    sql_engine: SqlEngine | None = None,
) -> AuditResult:
    """Audit the flows (Parquet files or an Arrow table) against ``matrix``.

    ``control_plane``: the LAN control-plane list (default the shipped one); its traffic
    is listed apart unless ``strict``, which reports it as violations (``control-plane``).
    ``spill_dir``: the store whose ``.tmp`` takes what DuckDB spills, else a system temp
    directory."""
    cplane = control_plane if control_plane is not None else load_control_plane()
    eng = sql_engine if sql_engine is not None else Engine(spill_dir=spill_dir)
    try:
        prepare_conversations(eng, matrix, flow_source, since, until)
        eng.register_rows("control_plane", CONTROL_PLANE, cplane.rows())
        eng.execute("control_plane_conversations")
        eng.execute("violations", strict=strict)  # the temp table violation_rows
        lan = eng.run("control_plane", strict=strict)
        shape = eng.run("traffic_shape", strict=strict)
        _register_pods(eng, matrix)
        overlay = eng.run("overlay", since=since, until=until, pods=matrix.pods is not None)
        encrypted = pylist(eng.run("encrypted", since=since, until=until))[0]
        usage = eng.run("rule_usage")
        observ = eng.run("rule_observability")
        window = pylist(eng.run("window"))[0]
        start = since or window["start"]
        end = until or window["end"]
        flows = int(window["flows"])
        eng.execute("release_conversations")
        groups = eng.run("finding_groups")
        violations = _violation_groups(eng, matrix)
        eng.execute("release_violations")
        unused = eng.table_from_rows(
            UNUSED_SCHEMA, _unused_rules(matrix, usage, observ, flows, start, end)
        )
        observed = {o["rule_id"] for o in pylist(observ) if o["flows_between_groups"]}
        inner: dict[str, int] = {}
        for rule_id in overlay.column("rule_id").to_pylist():
            if rule_id is not None:
                inner[rule_id] = inner.get(rule_id, 0) + 1
        order = ints(pa.int64(), np.arange(violations.num_rows))
        eng.register_table("violation_list", violations.append_column("ord", order))
        coverage = coverage_table(eng, matrix, usage, observed, inner)
        violations = violations.drop_columns(["src_cell", "dst_cell"])
    finally:
        eng.close()
    stats = {
        "conversations": int(window["conversations"]),
        "control_plane": lan.num_rows,
        "control_plane_flows": int(sum(lan.column("flows").to_pylist())),
        "overlay": overlay.num_rows,
        "overlay_flows": int(sum(overlay.column("flows").to_pylist())),
        "overlay_not_approved": sum(1 for r in overlay.column("reason").to_pylist() if r),
        "strict": strict,
        **finding_stats(violations, unused, groups),
    }
    return AuditResult(
        violations=violations,
        unused_rules=unused,
        matrix_name=matrix.name,
        rules_digest=matrix.sha256,
        window_start=start,
        window_end=end,
        flows=flows,
        sampled=int(window["max_sampling"]) > 1,
        captures=tuple(captures),
        stats=stats,
        rule_usage=usage,
        coverage=coverage,
        finding_groups=groups,
        control_plane=lan,
        traffic_shape=shape,
        overlay=overlay,
        encrypted={k: int(v) for k, v in encrypted.items()},
    )


def _violation_groups(eng: SqlEngine, m: Matrix) -> pa.Table:
    """The violations with their sides, group id and what differs (violation_groups.sql)."""
    keys = eng.run("difference_keys")
    if _matrix_texts_ok(m):
        texts = rows_table(DIFFERENCE_TEXTS, _difference_rows(keys, m))
        eng.register_table("difference_texts", texts)
        return eng.run("violation_groups")
    # a NUL in a name: word every violation on its own (the same texts, row by row)
    rows = [
        (*(k[f.name] for f in list(DIFFERENCE_TEXTS)[:7]), "", False, "", False, "", k["group_id"])
        for k in keys.to_pylist()
    ]
    eng.register_table("difference_texts", rows_table(DIFFERENCE_TEXTS, rows))
    v = eng.run("violation_groups").drop_columns(["differences"])
    cells = v.select(["src_cell", "dst_cell"])
    v = _add_differences(v.drop_columns(["src_cell", "dst_cell"]), m)
    return v.append_column("src_cell", cells.column(0)).append_column("dst_cell", cells.column(1))


def prepare_conversations(
    eng: SqlEngine,
    matrix: Matrix,
    flow_source: Sequence[Path] | pa.Table,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> None:
    """The audit's first steps on ``eng``: flows and matrix registered, then the temp
    tables ``addr_side`` (each address's text, side and cell), ``conv`` (conversations with
    their addresses' text, sides and cells, and ids) and ``conv_match``."""
    eng.register_flows(flow_source)
    eng.register_matrix(matrix)
    eng.execute("conversations", since=since, until=until, service_ports=service_port_bits(matrix))
    # an Arrow table, not rows: inserting 1M addresses row by row took most of an audit of
    # many conversations
    addrs = eng.run("conversation_addresses").column("addr")
    cells = _cell_rows(matrix)
    eng.register_rows("cells", CELLS, cells)
    texts, numbers = _address_texts(addrs, cells)
    eng.register_table("addresses", pa.Table.from_arrays([addrs, texts, numbers], ADDRESSES))
    del texts, numbers
    eng.execute("address_sides")
    # addr_side holds the addresses from here on: let their Arrow copy go
    empty = [addrs[:0], text_array([]), ints(pa.int32(), np.zeros(0, np.int32))]
    eng.register_table("addresses", pa.Table.from_arrays(empty, ADDRESSES))
    del addrs
    eng.execute("conversation_ids")
    eng.execute("matches")


POD_CIDRS = pa.schema([("lo", pa.binary(16)), ("hi", pa.binary(16))])
POD_ALLOW = pa.schema([("protocol", pa.uint8()), ("port_lo", pa.int32()), ("port_hi", pa.int32())])


def _register_pods(eng: SqlEngine, matrix: Matrix) -> None:
    """The matrix's pod allow list as ``pod_cidrs`` and ``pod_allow`` (empty without one)."""
    from flowaudit.matrix.model import addr_bytes

    pods = matrix.pods
    cidrs = [(addr_bytes(lo), addr_bytes(hi)) for lo, hi in pods.ranges] if pods else []
    allow = (
        [(p, lo, hi) for a in pods.allow for p in a.protocols for lo, hi in a.ports] if pods else []
    )
    eng.register_rows("pod_cidrs", POD_CIDRS, cidrs)
    eng.register_rows("pod_allow", POD_ALLOW, allow)


CONTROL_PLANE = pa.schema(
    [
        ("kind", pa.string()),
        ("protocol", pa.uint8()),
        ("lo", pa.int32()),
        ("hi", pa.int32()),
        ("icmp", pa.bool_()),
        ("dst_class", pa.string()),
    ]
)
CELLS = pa.schema(
    [
        ("cell", pa.int32()),
        ("lo", pa.binary(16)),
        ("hi", pa.binary(16)),
        ("side", pa.string()),
        ("class", pa.string()),
    ]
)


def service_port_bits(m: Matrix) -> str:
    """The matrix's service ports as a 65536-character bit string (bit p: port p), bound as
    ``$service_ports`` and read with ``get_bit``: a lookup per flow without a join."""
    bits = bytearray(b"0" * 65536)
    for lo, hi in m.service_ports:
        bits[lo : hi + 1] = b"1" * (hi - lo + 1)
    return bits.decode()


def _cell_rows(m: Matrix) -> list[tuple[int, bytes, bytes, str | None, str | None]]:
    """The address space cut at every bound of a group, scope subnet, address class and rule
    (``cells``, see address_sides.sql): within one cell every address is in the same ranges,
    so it has one side (the side of the lowest-ranked range of ``side_ranges`` holding the
    cell) and one address class (the lowest-ranked class); None where no range holds it."""
    from flowaudit.matrix.compile import relation_rows
    from flowaudit.matrix.hosts import side_ranges
    from flowaudit.matrix.model import addr_bytes

    top = (1 << 128) - 1
    cuts = {0}
    for _, _, lo, hi, _ in side_ranges(m):
        cuts |= {lo, hi + 1}
    relations = relation_rows(m)
    for name, cols in (("rules", (3, 4, 6, 7)), ("hosts", (1, 2)), ("scope", (1, 2))):
        for row in relations[name][1]:
            ends = [row[i] for i in cols]
            for lo, hi in zip(ends[::2], ends[1::2], strict=True):
                if lo is not None and hi is not None:
                    cuts |= {int.from_bytes(lo, "big"), int.from_bytes(hi, "big") + 1}
    bounds = sorted(c for c in cuts if c <= top)
    ends = [*bounds[1:], top + 1]
    sides = side_ranges(m)  # in rank order: the first range holding a cell wins
    rows = []
    for i, (lo, nxt) in enumerate(zip(bounds, ends, strict=True)):
        holding = [(s, g) for _, s, a, b, g in sides if a <= lo <= b]
        side = holding[0][0] if holding else None
        cls = next((s for s, g in holding if not g), None)
        rows.append((i, addr_bytes(lo), addr_bytes(nxt - 1), side, cls))
    return rows


ADDRESSES = ["addr", "ip", "cell"]


def _address_texts(
    addrs: pa.ChunkedArray, cells: Sequence[tuple[Any, ...]]
) -> tuple[pa.Array, pa.Array]:
    """16-byte addresses → their text (IPv4-mapped ones as dotted quads) and the number of
    the cell (``_cell_rows``, in address order) holding each, column-wise."""
    from flowaudit._util.arrow import ip_text

    arr = addrs.combine_chunks().cast(pa.binary(16))
    n = len(arr)
    raw = np.frombuffer(arr.buffers()[1], np.uint8, count=16 * (arr.offset + n))
    words = raw.view(">u8").reshape(-1, 2)[arr.offset :].astype(np.uint64)
    mapped = (words[:, 0] == 0) & (words[:, 1] >> np.uint64(32) == np.uint64(0xFFFF))
    texts = ip_text(np.where(mapped, 4, 6).astype(np.int8), words[:, 0], words[:, 1])
    # fixed-width bytes compare as unsigned big-endian numbers: the last cell starting at
    # or before an address holds it (the cells start at 0 and follow each other)
    starts = np.array([c[1] for c in cells], dtype="S16")
    keys = raw[16 * arr.offset :].view("S16")
    number = np.searchsorted(starts, keys, side="right") - 1
    return texts, ints(pa.int32(), number.astype(np.int32))


# ------------------------------------------------------------------ violations
DIFFERENCE_TEXTS = pa.schema(
    [
        ("reason", pa.string()),
        ("vlan_id", pa.int16()),
        ("nearest_rule", pa.string()),
        ("protocol", pa.uint8()),
        ("dst_port", pa.uint16()),
        ("src_cell", pa.int32()),
        ("dst_cell", pa.int32()),
        ("before_src", pa.string()),
        ("names_src", pa.bool_()),
        ("before_dst", pa.string()),
        ("names_dst", pa.bool_()),
        ("after_dst", pa.string()),
        ("group_id", pa.string()),
    ]
)
# where the texts name the addresses (no matrix name holds a NUL: see _difference_rows)
_SRC, _DST = "\x00src\x00", "\x00dst\x00"


def _difference_rows(keys: pa.Table, m: Matrix) -> list[tuple[Any, ...]]:
    """``difference_texts``: what separates the violations of each key (difference_keys.sql)
    from their nearest rule, worded once per key with the addresses left out: a cell's
    first address answers every membership question for all of its addresses, and the
    text names an address at most once per end, the initiator first."""
    from flowaudit.matrix.hosts import HostIndex
    from flowaudit.matrix.model import addr_text

    hosts = HostIndex(m)
    unconfigured = _unconfigured_rules(m)
    rows = []
    texts: dict[bytes, str] = {}  # a cell's first address, as text (few cells, many keys)
    for k in keys.to_pylist():
        at = {}
        for e in ("src", "dst"):
            lo = k[f"{e}_lo"]
            if lo not in texts:
                texts[lo] = addr_text(int.from_bytes(lo, "big"))
            at[e] = texts[lo]
        row = {**k, "src_ip": _SRC, "dst_ip": _DST, "src_at": at["src"], "dst_at": at["dst"]}
        text = _differences(row, m, hosts, unconfigured)
        head, names_src, rest = text.partition(_SRC)
        if not names_src:
            head, rest = "", text
        middle, names_dst, tail = rest.partition(_DST)
        if not names_dst:
            middle, tail = rest, ""
        if "\x00" in head + middle + tail:
            raise ValueError("a matrix name holds a NUL character")  # _matrix_texts_ok
        key = tuple(k[f.name] for f in list(DIFFERENCE_TEXTS)[:7])
        rows.append((*key, head, bool(names_src), middle, bool(names_dst), tail, k["group_id"]))
    return rows


def _matrix_texts_ok(m: Matrix) -> bool:
    """Whether no name of the matrix holds a NUL (the texts' address marks)."""
    names = [*m.groups, *(r.id for r in m.rules), *(str(v) for v in m.scope.vlans)]
    return not any("\x00" in n for n in names)


def _add_differences(v: pa.Table, m: Matrix) -> pa.Table:
    """Append ``differences`` row by row (for a matrix whose names hold a NUL)."""
    from flowaudit.matrix.hosts import HostIndex

    hosts = HostIndex(m)
    texts = []
    cols = ["src_ip", "dst_ip", "protocol", "dst_port", "nearest_rule", "reason", "vlan_id"]
    unconfigured = _unconfigured_rules(m)
    for row in v.select([*cols, "src_side", "dst_side"]).to_pylist():
        row["src_at"], row["dst_at"] = row["src_ip"], row["dst_ip"]
        texts.append(_differences(row, m, hosts, unconfigured))
    return v.append_column("differences", text_array(texts))


CLASS_TEXT = {
    "internet": "{ip} is an internet address",
    "private": "{ip} is outside the scope subnets",
    "multicast": "{ip} is a multicast address",
    "broadcast": "{ip} is a broadcast address",
    "link-local": "{ip} is a link-local address",
    "loopback": "{ip} is a loopback address",
    "unspecified": "{ip} is the unspecified address",
    "site": "{ip} is in the scope subnets but in no group",
}


def _unconfigured_rules(m: Matrix) -> tuple[Rule, ...]:
    """The rules with a group that has no addresses (they can match nothing yet)."""
    return tuple(
        r for r in m.rules if any(not m.groups[g].configured for g in r.from_groups + r.to_groups)
    )


def _no_rule(
    row: dict[str, Any], m: Matrix, hosts: HostIndex, unconfigured: tuple[Rule, ...]
) -> list[str]:
    """What separates a finding from every rule when none is near: the address classes,
    and the unconfigured groups of rules that would admit it from the other end."""
    parts = [
        CLASS_TEXT[row[f"{end}_side"]].format(ip=row[f"{end}_ip"])
        for end in ("src", "dst")
        if row[f"{end}_side"] in CLASS_TEXT
    ]
    if not parts:
        proto = protocol_name(row["protocol"])
        parts.append(
            f"no rule between {row['src_side']} and {row['dst_side']} is within two "
            f"differences of {proto}/{'-' if row['dst_port'] is None else row['dst_port']}"
        )
    port = row["dst_port"]
    missing: list[str] = []
    for r in unconfigured:
        if row["protocol"] not in r.protocols:
            continue
        if row["protocol"] in PORTED and not any(lo <= (port or 0) <= hi for lo, hi in r.ports):
            continue
        if hosts.in_any(row["dst_at"], r.to_groups):
            missing += [g for g in r.from_groups if not m.groups[g].configured]
        if hosts.in_any(row["src_at"], r.from_groups):
            missing += [g for g in r.to_groups if not m.groups[g].configured]
    if missing:
        names = ", ".join(dict.fromkeys(missing))
        parts.append(f"{names} has no addresses: supply --group")
    return parts


def _differences(
    row: dict[str, Any], m: Matrix, hosts: HostIndex, unconfigured: tuple[Rule, ...] = ()
) -> str:
    parts: list[str] = []
    if row["reason"] == "off-vlan" and row["vlan_id"] is None:
        parts.append(
            f"untagged (native VLAN) in a capture of tagged traffic; scope {list(m.scope.vlans)}"
        )
    elif row["reason"] == "off-vlan":
        parts.append(f"vlan {row['vlan_id']} not in scope {list(m.scope.vlans)}")
    rid = row["nearest_rule"]
    if rid is None:
        if row["reason"] == "control-plane":
            return "LAN control plane (--strict): link-scoped, no port matrix governs it"
        if not m.rules:
            return "the matrix has no rules"
        return "; ".join(parts + _no_rule(row, m, hosts, unconfigured))
    r: Rule = m.rule(rid)
    fwd_src = hosts.in_any(row["src_at"], r.from_groups)
    fwd_dst = hosts.in_any(row["dst_at"], r.to_groups)
    rev = hosts.in_any(row["src_at"], r.to_groups) and hosts.in_any(row["dst_at"], r.from_groups)
    if rev and not (fwd_src and fwd_dst):
        parts.append(
            f"initiator and responder reversed: rule allows {'/'.join(r.from_groups)} → "
            f"{'/'.join(r.to_groups)}"
        )
    else:
        if not fwd_src:
            parts.append(
                f"src {row['src_ip']} not in {'/'.join(r.from_groups)}"
                + _unconfigured(r.from_groups, m)
            )
        if not fwd_dst:
            parts.append(
                f"dst {row['dst_ip']} not in {'/'.join(r.to_groups)}"
                + _unconfigured(r.to_groups, m)
            )
    if row["protocol"] not in r.protocols:
        allowed = "/".join(protocol_name(p) for p in r.protocols)
        parts.append(f"protocol {protocol_name(row['protocol'])} not {allowed}")
    port = row["dst_port"]
    ported = row["protocol"] in PORTED  # ICMP "ports" are type/code: not a port difference
    if ported and (port is None or not any(lo <= port <= hi for lo, hi in r.ports)):
        parts.append(f"dport {port} not in {{{ports_text(r.ports)}}}")
    elif row["protocol"] in r.protocols and not ported:
        # a rule may limit an ICMP "port" (the code, Community ID mapping) or list ports
        # for a protocol without them, whose flows count as port 0 (matches.sql)
        if not any(lo <= (port or 0) <= hi for lo, hi in r.ports):
            name = protocol_name(row["protocol"])
            what = (
                f"protocol {name} has no ports: port 0" if port is None else f"{name} code {port}"
            )
            parts.append(f"{what} not in {{{ports_text(r.ports)}}}")
    return "; ".join(parts) if parts else "matches in the other orientation only"


def _unconfigured(groups: tuple[str, ...], m: Matrix) -> str:
    missing = [g for g in groups if not m.groups[g].configured]
    return f" ({', '.join(missing)} has no addresses: supply --group)" if missing else ""


# ---------------------------------------------------------------- unused rules
def _members(groups: tuple[str, ...], m: Matrix) -> list[str] | None:
    """Every address of the groups, or None when too many or unconfigured."""
    from flowaudit.matrix.model import addr_text

    out: list[str] = []
    for g in groups:
        grp = m.groups[g]
        if not grp.configured:
            return None
        for (lo, hi), _ in grp.parsed:
            if hi - lo + 1 + len(out) > MAX_PAIR_HOSTS:
                return None
            out.extend(addr_text(n) for n in range(lo, hi + 1))
    return out


def _unused_pairs(r: Rule, used: set[tuple[str, str]], m: Matrix) -> list[list[str]]:
    src = _members(r.from_groups, m)
    dst = _members(r.to_groups, m)
    if src is None or dst is None:
        return []
    out = []
    for a in src:
        for b in dst:
            if a == b:
                continue
            if (a, b) in used or (r.bidirectional and (b, a) in used):
                continue
            if r.bidirectional and [b, a] in out:
                continue
            out.append([a, b])
    return out


def _unused_rules(
    m: Matrix,
    usage: pa.Table,
    observ: pa.Table,
    flows_total: int,
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> list[tuple[Any, ...]]:
    ports_used: dict[tuple[str, int], set[int]] = defaultdict(set)
    pairs_used: dict[tuple[str, int], set[tuple[str, str]]] = defaultdict(set)
    flows_by: dict[tuple[str, int], int] = defaultdict(int)
    for u in usage.to_pylist():
        key = (u["rule_id"], u["protocol"])
        ports_used[key].add(u["port"])
        pairs_used[key].add((u["init_ip"], u["resp_ip"]))
        flows_by[key] += int(u["flows"])
    between = {o["rule_id"]: int(o["flows_between_groups"]) for o in observ.to_pylist()}
    from flowaudit._util.time import iso

    window = f"{iso(start) or 'no traffic'} .. {iso(end) or 'no traffic'}"
    rows = []
    for r in m.rules:
        unconfigured = [g for g in r.from_groups + r.to_groups if not m.groups[g].configured]
        seen = between.get(r.id, 0)
        observable = not unconfigured and seen > 0
        for proto in r.protocols:
            key = (r.id, proto)
            n = flows_by.get(key, 0)
            ported = proto in PORTED
            unused_ports = (
                [list(p) for p in port_complement(r.ports, ports_used[key])] if ported else []
            )
            unused_pairs = _unused_pairs(r, pairs_used[key], m) if n else []
            if n == 0:
                status = "unused"
                unused_ports = [list(p) for p in r.ports]
            elif unused_ports or unused_pairs:
                status = "partly-used"
            else:
                continue
            if unconfigured:
                note = (
                    f"not observable: group {', '.join(unconfigured)} has no addresses "
                    "(supply them with --group or a site overlay)"
                )
            elif seen == 0:
                note = (
                    "not observable: no traffic at all between these hosts was captured; "
                    "the capture point may not see it"
                )
            else:
                note = f"{seen:,} flows between these hosts on other ports/protocols"
            evidence = f"window {window}; {flows_total:,} flows audited; {note}"
            if r.condition:
                evidence += f"; conditional rule ({r.condition}): confirm before removing"
            fid = hashlib.sha256(f"flowaudit-rule-v1|{r.id}|{proto}".encode()).hexdigest()[:16]
            rows.append(
                {
                    "finding_id": fid,
                    "rule_id": r.id,
                    "status": status,
                    "protocol": proto,
                    "ports": [list(p) for p in r.ports],
                    "unused_ports": unused_ports,
                    "unused_pairs": unused_pairs,
                    "flows": n,
                    "condition": r.condition,
                    "origin": r.origin,
                    "provenance": str(r.provenance),
                    "purpose": r.purpose,
                    "observable": observable,
                    "evidence": evidence,
                }
            )
    rows.sort(key=lambda x: (x["status"] != "unused", x["rule_id"], x["protocol"]))
    return [tuple(r[f.name] for f in UNUSED_SCHEMA) for r in rows]
