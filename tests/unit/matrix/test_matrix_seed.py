"""The shipped matrix encodes every port row of the seed, with that row's provenance.

The seed (a copy in tests/data/seed/) is parsed here independently of the loader: each
table starts at a "Port Protocol ..." or "Rule Source Destination ..." header line, its
heading is the nearest preceding line that is not a sentence, and it ends at a blank line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from testpaths import DATA

from flowaudit.matrix import load_matrix, shipped_rules_dir

SEED = DATA / "seed" / "000_01dbefc070aa5d11.txt"

COMPONENT_ROW = re.compile(r"^(?P<ports>\d+(?:-\d+)?) (?P<proto>TCP/UDP|TCP|UDP)(?:/\w+)? ")
FIREWALL_ROW = re.compile(
    r"\s(?P<ports>\d+(?:-\d+)?(?:, \d+(?:-\d+)?)*) (?P<proto>TCP/UDP|TCP|UDP) "
    r"(?P<dir>Inbound|Outbound|Bidirectional)$"
)
PROTO = {"TCP": (6,), "UDP": (17,), "TCP/UDP": (6, 17)}


@dataclass(frozen=True)
class SeedRow:
    table: str
    text: str
    origin: str
    protocols: tuple[int, ...]
    ports: tuple[tuple[int, int], ...]
    direction: str | None


def _ports(text: str) -> tuple[tuple[int, int], ...]:
    out = []
    for part in text.split(", "):
        lo, _, hi = part.partition("-")
        out.append((int(lo), int(hi or lo)))
    return tuple(sorted(out))


def seed_rows(text: str) -> list[SeedRow]:
    lines = [line.strip() for line in text.splitlines()]
    rows: list[SeedRow] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        origin = (
            "component"
            if line.startswith("Port Protocol")
            else "firewall"
            if line.startswith("Rule Source Destination")
            else None
        )
        if origin is None:
            i += 1
            continue
        j = i - 1
        while not lines[j] or lines[j].endswith((":", ".")):
            j -= 1
        heading = lines[j]
        i += 1
        while i < len(lines) and lines[i]:
            row = " ".join(lines[i].split())
            m = (COMPONENT_ROW.match if origin == "component" else FIREWALL_ROW.search)(row)
            assert m, f"unparsed seed row in {heading!r}: {row!r}"
            rows.append(
                SeedRow(
                    heading,
                    row,
                    origin,
                    PROTO[m["proto"]],
                    _ports(m["ports"]),
                    m.groupdict().get("dir"),
                )
            )
            i += 1
    return rows


@pytest.fixture(scope="module")
def rows() -> list[SeedRow]:
    return seed_rows(SEED.read_text(encoding="utf-8"))


def test_seed_parser_finds_every_table(rows: list[SeedRow]) -> None:
    per_table: dict[str, int] = {}
    for r in rows:
        per_table[r.table] = per_table.get(r.table, 0) + 1
    assert per_table == {
        "Palette Management Appliance Ports": 5,
        "External Communication": 3,
        "Inter-Node Communication (Kubernetes)": 5,
        "Inter-Node Communication (Cilium)": 5,
        "Portworx Ports (Inter-Node)": 13,
        "VMO / KubeVirt Ports (Inter-Node)": 2,
        "MetalLB Ports": 1,
        "Firewall Rules Summary": 7,
    }


def test_every_seed_row_is_exactly_one_rule(rows: list[SeedRow]) -> None:
    m = load_matrix()
    by_prov = {(r.provenance.table, r.provenance.row): r for r in m.rules}
    assert len(by_prov) == len(m.rules) == len(rows) == 41
    for row in rows:
        rule = by_prov.get((row.table, row.text))
        assert rule is not None, f"no rule for seed row {row.table!r}: {row.text!r}"
        assert rule.origin == rule.provenance.origin == row.origin, rule.id
        assert rule.protocols == row.protocols, rule.id
        assert rule.ports == row.ports, rule.id
        if row.direction is not None:
            assert rule.bidirectional == (row.direction == "Bidirectional"), rule.id


def test_conditional_rows_carry_a_condition(rows: list[SeedRow]) -> None:
    m = load_matrix()
    by_row = {r.provenance.row: r for r in m.rules}
    conditional = {
        row.text for row in rows if "(if used)" in row.text or "(if enabled)" in row.text
    }
    assert {by_row[t].id for t in conditional} == {
        "cilium-vxlan-8472",
        "cilium-wireguard-51871",
        "px-object-store-9010",
        "px-sdk-autoscaling-9015",
    }
    assert all(r.condition is None for r in m.rules if r.provenance.row not in conditional)
    assert by_row["8472 UDP VXLAN overlay (if used)"].condition == "if the VXLAN overlay is used"


def test_groups_scope_and_vip_inference() -> None:
    m = load_matrix()
    assert m.name == "tmna-vlan111"
    assert m.scope.vlans == (111,)
    assert m.scope.subnets == ("10.25.233.0/24", "10.25.232.0/24")
    assert {n: g.addresses for n, g in m.groups.items()} == {
        "pma": ("10.25.232.155/32", "10.25.232.252/32"),
        "pma_155": ("10.25.232.155/32",),
        "pma_252": ("10.25.232.252/32",),
        "palette_vip": ("10.25.232.155/32",),
        "nodes": ("10.25.233.4-10.25.233.6",),
        "admin_workstations": (),
    }
    assert [n for n, g in m.groups.items() if g.needs_configuration] == ["admin_workstations"]
    text = (shipped_rules_dir() / "tmna-vlan111.yaml").read_text(encoding="utf-8")
    assert "INFERENCE" in text and "never says which of .155 / .252" in text


def test_rule_ids_and_endpoints_of_firewall_rows() -> None:
    m = load_matrix()
    fw = {r.id: (r.from_groups, r.to_groups, r.bidirectional) for r in m.rules
          if r.origin == "firewall"}  # fmt: skip
    assert fw == {
        "fw-admin-to-pma": (("admin_workstations",), ("pma_155",), False),
        "fw-ssh-to-pma": (("admin_workstations",), ("pma_252",), False),
        "fw-pma-to-cluster": (("pma_155",), ("nodes",), False),
        "fw-cluster-to-pma": (("nodes",), ("pma_155",), False),
        "fw-inter-node-k8s": (("nodes",), ("nodes",), True),
        "fw-inter-node-px": (("nodes",), ("nodes",), True),
        "fw-inter-node-vmo": (("nodes",), ("nodes",), True),
    }
