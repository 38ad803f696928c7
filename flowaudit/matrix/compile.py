"""Compile a Matrix into Arrow tables the audit engine registers in DuckDB.

Addresses become 16-byte big-endian IPv4-mapped IPv6 values (``::ffff:a.b.c.d``), so
one byte-wise range comparison serves IPv4 and IPv6. No SQL text is built here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from flowaudit.matrix.model import addr_bytes

if TYPE_CHECKING:
    from flowaudit.matrix.model import Matrix

ADDR = pa.binary(16)

RULES_SCHEMA = pa.schema(
    [
        pa.field("rule_id", pa.string(), nullable=False),
        pa.field("protocol", pa.uint8(), nullable=False),
        pa.field("src_group", pa.string(), nullable=False),
        pa.field("src_lo", ADDR),  # null: the group needs configuration and has none yet
        pa.field("src_hi", ADDR),
        pa.field("dst_group", pa.string(), nullable=False),
        pa.field("dst_lo", ADDR),
        pa.field("dst_hi", ADDR),
        pa.field("port_lo", pa.uint16(), nullable=False),
        pa.field("port_hi", pa.uint16(), nullable=False),
        pa.field("bidirectional", pa.bool_(), nullable=False),
        pa.field("condition", pa.string()),
        pa.field("origin", pa.string(), nullable=False),
        pa.field("provenance", pa.string(), nullable=False),
        pa.field("purpose", pa.string(), nullable=False),
    ]
)

HOSTS_SCHEMA = pa.schema(
    [
        pa.field("group", pa.string(), nullable=False),
        pa.field("lo", ADDR, nullable=False),
        pa.field("hi", ADDR, nullable=False),
        pa.field("cidr", pa.string(), nullable=False),
    ]
)

SCOPE_SCHEMA = pa.schema(
    [
        pa.field("vlan", pa.int16()),
        pa.field("lo", ADDR),
        pa.field("hi", ADDR),
        pa.field("cidr", pa.string()),
    ]
)


#: one line of meaning per column of each relation (``flowaudit query --describe``); address
#: columns are 16 sortable bytes like the flows' ``src_addr``/``dst_addr`` (inclusive lo..hi)
RULES_DESCRIPTIONS: dict[str, str] = {
    "rule_id": "the rule's id in the matrix YAML",
    "protocol": "IANA protocol number the rule approves (6 tcp, 17 udp, 1 icmp)",
    "src_group": "host group allowed to initiate (the rule's from)",
    "src_lo": "lowest initiator address of the range (16 bytes); null: group unconfigured",
    "src_hi": "highest initiator address of the range (16 bytes); null: group unconfigured",
    "dst_group": "host group that responds (the rule's to)",
    "dst_lo": "lowest responder address of the range (16 bytes); null: group unconfigured",
    "dst_hi": "highest responder address of the range (16 bytes); null: group unconfigured",
    "port_lo": "lowest approved responder port",
    "port_hi": "highest approved responder port",
    "bidirectional": "either side may initiate",
    "condition": "the seed's condition (if used / if enabled); null when unconditional",
    "origin": "where the rule came from: component or firewall (seed tables), observed (proposed)",
    "provenance": "the seed table and row the rule came from",
    "purpose": "what the flow is for",
}

HOSTS_DESCRIPTIONS: dict[str, str] = {
    "group": "host group name",
    "lo": "lowest address of the range (16 bytes)",
    "hi": "highest address of the range (16 bytes)",
    "cidr": "the address or subnet as canonical text",
}

SCOPE_DESCRIPTIONS: dict[str, str] = {
    "vlan": "a scope VLAN id (null on subnet rows)",
    "lo": "lowest address of a scope subnet (16 bytes; null on VLAN rows)",
    "hi": "highest address of a scope subnet (16 bytes; null on VLAN rows)",
    "cidr": "the scope subnet as text (null on VLAN rows)",
}

#: each relation's schema and column meanings
RELATIONS: dict[str, tuple[pa.Schema, dict[str, str]]] = {
    "rules": (RULES_SCHEMA, RULES_DESCRIPTIONS),
    "hosts": (HOSTS_SCHEMA, HOSTS_DESCRIPTIONS),
    "scope": (SCOPE_SCHEMA, SCOPE_DESCRIPTIONS),
}


def _group_ranges(m: Matrix, name: str) -> list[tuple[bytes | None, bytes | None]]:
    g = m.groups[name]
    if not g.addresses:
        return [(None, None)]
    return [(addr_bytes(lo), addr_bytes(hi)) for lo, hi in g.ranges]


def _table(schema: pa.Schema, rows: list[tuple[Any, ...]]) -> pa.Table:
    cols: dict[str, list[Any]] = {f.name: [] for f in schema}
    for row in rows:
        for name, value in zip(cols, row, strict=True):
            cols[name].append(value)
    return pa.Table.from_pydict(cols, schema=schema)


def relation_rows(m: Matrix) -> dict[str, tuple[pa.Schema, list[tuple[Any, ...]]]]:
    """``rules``, ``hosts`` and ``scope`` as (schema, rows): what the engine loads into DuckDB
    without building Arrow arrays in Python (``pa.array`` imports pandas, ~0.4 s)."""
    return {
        "rules": (RULES_SCHEMA, rules_rows(m)),
        "hosts": (HOSTS_SCHEMA, hosts_rows(m)),
        "scope": (SCOPE_SCHEMA, scope_rows(m)),
    }


def rules_table(m: Matrix) -> pa.Table:
    """One row per (rule, protocol, from-range, to-range, port-range), in rule order."""
    return _table(RULES_SCHEMA, rules_rows(m))


def rules_rows(m: Matrix) -> list[tuple[Any, ...]]:
    """The rows of ``rules_table``."""
    rows: list[tuple[Any, ...]] = []
    for r in m.rules:
        for proto in r.protocols:
            for sg in r.from_groups:
                for s_lo, s_hi in _group_ranges(m, sg):
                    for dg in r.to_groups:
                        for d_lo, d_hi in _group_ranges(m, dg):
                            for p_lo, p_hi in r.ports:
                                rows.append((
                                    r.id, proto, sg, s_lo, s_hi, dg, d_lo, d_hi, p_lo, p_hi,
                                    r.bidirectional, r.condition, r.origin,
                                    str(r.provenance), r.purpose,
                                ))  # fmt: skip
    return rows


def hosts_table(m: Matrix) -> pa.Table:
    """One row per (group, address range); unconfigured groups have no rows."""
    return _table(HOSTS_SCHEMA, hosts_rows(m))


def hosts_rows(m: Matrix) -> list[tuple[Any, ...]]:
    """The rows of ``hosts_table``."""
    rows: list[tuple[Any, ...]] = []
    for g in m.groups.values():
        for (lo, hi), text in g.parsed:
            rows.append((g.name, addr_bytes(lo), addr_bytes(hi), text))
    return rows


def scope_table(m: Matrix) -> pa.Table:
    """VLAN rows (address columns null), then subnet rows (vlan null)."""
    return _table(SCOPE_SCHEMA, scope_rows(m))


def scope_rows(m: Matrix) -> list[tuple[Any, ...]]:
    """The rows of ``scope_table``."""
    rows: list[tuple[Any, ...]] = [(vlan, None, None, None) for vlan in m.scope.vlans]
    for (lo, hi), text in m.scope.parsed:
        rows.append((None, addr_bytes(lo), addr_bytes(hi), text))
    return rows
