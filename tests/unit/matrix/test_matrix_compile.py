"""The compiled Arrow tables: schema, exact rows, and range matching in real DuckDB."""

from __future__ import annotations

import ipaddress

import duckdb
import pyarrow as pa
import pytest

from flowaudit.matrix import load_matrix
from flowaudit.matrix.compile import (
    HOSTS_SCHEMA,
    RULES_SCHEMA,
    SCOPE_SCHEMA,
    hosts_table,
    rules_table,
    scope_table,
)


def b16(ip: str) -> bytes:
    a = ipaddress.ip_address(ip)
    return a.packed if a.version == 6 else b"\x00" * 10 + b"\xff\xff" + a.packed


def test_rules_table_schema_and_row_count() -> None:
    t = rules_table(load_matrix())
    assert t.schema == RULES_SCHEMA
    assert t.schema.field("src_lo").type == pa.binary(16)
    assert t.schema.field("protocol").type == pa.uint8()
    assert t.schema.field("port_lo").type == pa.uint16()
    # rows = sum over rules of protocols × from-ranges × to-ranges × port-ranges
    assert t.num_rows == 55
    per_rule: dict[str, int] = {}
    for rid in t.column("rule_id").to_pylist():
        per_rule[rid] = per_rule.get(rid, 0) + 1
    assert per_rule["pma-ui-443"] == 4  # (admin_workstations, nodes) × (.155, .252)
    assert per_rule["fw-inter-node-px"] == 2  # tcp, udp
    assert per_rule["fw-inter-node-k8s"] == 3  # 2379-2380, 6443, 10250
    assert per_rule["metallb-memberlist-7946"] == 2
    assert per_rule["k8s-etcd-2379-2380"] == 1


def test_unconfigured_group_rows_have_null_addresses() -> None:
    t = rules_table(load_matrix())
    rows = [r for r in t.to_pylist() if r["rule_id"] == "fw-ssh-to-pma"]
    assert rows == [
        {
            "rule_id": "fw-ssh-to-pma",
            "protocol": 6,
            "src_group": "admin_workstations",
            "src_lo": None,
            "src_hi": None,
            "dst_group": "pma_252",
            "dst_lo": b16("10.25.232.252"),
            "dst_hi": b16("10.25.232.252"),
            "port_lo": 22,
            "port_hi": 22,
            "bidirectional": False,
            "condition": None,
            "origin": "firewall",
            "provenance": "Firewall Rules Summary: SSH to PMA Admin workstation "
            "10.25.232.252 22 TCP Inbound",
            "purpose": "SSH to PMA",
        }
    ]
    configured = rules_table(load_matrix(groups={"admin_workstations": ["10.1.2.0/24"]}))
    row = next(r for r in configured.to_pylist() if r["rule_id"] == "fw-ssh-to-pma")
    assert (row["src_lo"], row["src_hi"]) == (b16("10.1.2.0"), b16("10.1.2.255"))


def test_hosts_and_scope_tables() -> None:
    m = load_matrix(groups={"admin_workstations": ["2001:db8::/64"]})
    hosts = hosts_table(m)
    assert hosts.schema == HOSTS_SCHEMA
    assert [(r["group"], r["cidr"]) for r in hosts.to_pylist()] == [
        ("pma", "10.25.232.155/32"),
        ("pma", "10.25.232.252/32"),
        ("pma_155", "10.25.232.155/32"),
        ("pma_252", "10.25.232.252/32"),
        ("palette_vip", "10.25.232.155/32"),
        ("nodes", "10.25.233.4-10.25.233.6"),
        ("admin_workstations", "2001:db8::/64"),
    ]
    last = hosts.to_pylist()[-1]
    assert last["lo"] == b16("2001:db8::") and last["hi"] == b16("2001:db8::ffff:ffff:ffff:ffff")
    scope = scope_table(m)
    assert scope.schema == SCOPE_SCHEMA
    assert scope.to_pylist() == [
        {"vlan": 111, "lo": None, "hi": None, "cidr": None},
        {"vlan": None, "lo": b16("10.25.233.0"), "hi": b16("10.25.233.255"),
         "cidr": "10.25.233.0/24"},
        {"vlan": None, "lo": b16("10.25.232.0"), "hi": b16("10.25.232.255"),
         "cidr": "10.25.232.0/24"},
    ]  # fmt: skip


MATCH_SQL = """
SELECT DISTINCT rule_id FROM rules
WHERE protocol = $proto
  AND $port BETWEEN port_lo AND port_hi
  AND (($src BETWEEN src_lo AND src_hi AND $dst BETWEEN dst_lo AND dst_hi)
       OR (bidirectional AND $dst BETWEEN src_lo AND src_hi AND $src BETWEEN dst_lo AND dst_hi))
ORDER BY rule_id
"""


@pytest.mark.parametrize(
    ("src", "dst", "proto", "port", "expected"),
    [
        ("10.25.233.5", "10.25.232.155", 6, 443,
         ["fw-cluster-to-pma", "node-agent-443", "pma-ui-443"]),
        ("10.25.233.5", "10.25.232.252", 6, 443, ["pma-ui-443"]),
        ("10.25.233.6", "10.25.233.4", 17, 9002, ["fw-inter-node-px", "px-gossip-9002"]),
        ("10.25.233.6", "10.25.233.4", 17, 9001, ["fw-inter-node-px"]),
        ("10.25.233.4", "10.25.233.7", 6, 2379, []),  # .7 is not a node
        ("10.25.233.4", "10.25.233.5", 6, 49200,
         ["fw-inter-node-vmo", "vmo-migration-49152-49215"]),
        ("10.1.2.9", "10.25.232.252", 6, 22, ["fw-ssh-to-pma", "pma-ssh-22"]),
        ("10.1.2.9", "10.25.232.155", 6, 22, ["pma-ssh-22"]),
        ("10.25.232.155", "10.25.233.4", 6, 6443,
         ["fw-pma-to-cluster", "node-k8s-api-6443", "pma-k8s-api-6443"]),
        ("10.25.233.4", "10.25.232.155", 6, 6443, []),  # one-way rules: wrong direction
    ],
)  # fmt: skip
def test_rules_match_flows_by_bytewise_ranges_in_duckdb(
    src: str, dst: str, proto: int, port: int, expected: list[str]
) -> None:
    rules = rules_table(load_matrix(groups={"admin_workstations": ["10.1.2.0/24"]}))
    con = duckdb.connect()
    try:
        con.register("rules", rules)
        got = con.execute(
            MATCH_SQL, {"proto": proto, "port": port, "src": b16(src), "dst": b16(dst)}
        ).fetchall()
    finally:
        con.close()
    assert [r[0] for r in got] == expected
