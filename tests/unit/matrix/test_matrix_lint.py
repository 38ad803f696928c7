"""Matrix lint: the seed's inconsistencies are found, and each kind on small matrices."""

from __future__ import annotations

from pathlib import Path

from flowaudit.matrix import lint_matrix, load_matrix

PX_TCP_ONLY = ((9001, 9001), (9003, 9003), (9010, 9010), (9012, 9015), (9018, 9022))
SAME_SUBNET = (
    "every address of nodes ↔ nodes is inside 10.25.233.0/24, so this same-subnet "
    "traffic crosses no firewall and may need no rule"
)

SHIPPED = [
    ("missing-firewall-rule", ("cilium-health-4240",), 6, ((4240, 4240),)),
    ("missing-firewall-rule", ("cilium-hubble-relay-4245",), 6, ((4245, 4245),)),
    ("missing-firewall-rule", ("cilium-hubble-server-4244",), 6, ((4244, 4244),)),
    ("missing-firewall-rule", ("cilium-vxlan-8472",), 17, ((8472, 8472),)),
    ("missing-firewall-rule", ("cilium-wireguard-51871",), 17, ((51871, 51871),)),
    ("missing-firewall-rule", ("k8s-controller-manager-10257",), 6, ((10257, 10257),)),
    ("missing-firewall-rule", ("k8s-scheduler-10259",), 6, ((10259, 10259),)),
    ("missing-firewall-rule", ("metallb-memberlist-7946",), 6, ((7946, 7946),)),
    ("missing-firewall-rule", ("metallb-memberlist-7946",), 17, ((7946, 7946),)),
    ("address-mismatch", ("pma-k8s-api-6443", "fw-pma-to-cluster"), 6, ((6443, 6443),)),
    ("address-mismatch", ("pma-local-ui-5080", "fw-admin-to-pma"), 6, ((5080, 5080),)),
    ("address-mismatch", ("pma-registry-30003", "fw-cluster-to-pma"), 6, ((30003, 30003),)),
    ("address-mismatch", ("pma-ssh-22", "fw-ssh-to-pma"), 6, ((22, 22),)),
    (
        "address-mismatch",
        ("pma-ui-443", "fw-admin-to-pma", "fw-cluster-to-pma"),
        6,
        ((443, 443),),
    ),
    (
        "firewall-wider-than-documented",
        ("fw-inter-node-px",),
        None,
        ((9004, 9009), (9011, 9011), (9016, 9017)),
    ),
    (
        "protocol-mismatch",
        (
            "fw-inter-node-px",
            "px-diagnostics-9014",
            "px-health-grpc-9022",
            "px-health-rest-9021",
            "px-kvdb-client-9019",
            "px-kvdb-peer-9018",
            "px-mgmt-api-9001",
            "px-namespace-9013",
            "px-node-grpc-9012",
            "px-object-store-9010",
            "px-replication-9003",
            "px-sdk-autoscaling-9015",
            "px-sdk-gateway-9020",
        ),
        17,
        PX_TCP_ONLY,
    ),
    ("protocol-mismatch", ("fw-inter-node-px", "px-gossip-9002"), 6, ((9002, 9002),)),
    ("shadowed-rule", ("node-agent-443", "pma-ui-443"), 6, ((443, 443),)),
    ("shadowed-rule", ("node-k8s-api-6443", "pma-k8s-api-6443"), 6, ((6443, 6443),)),
    ("shadowed-rule", ("node-registry-30003", "pma-registry-30003"), 6, ((30003, 30003),)),
    (
        "unconfigured-group",
        ("pma-ui-443", "pma-local-ui-5080", "pma-ssh-22", "fw-admin-to-pma", "fw-ssh-to-pma"),
        None,
        (),
    ),
    ("conditional-rule", ("cilium-vxlan-8472",), 17, ((8472, 8472),)),
    ("conditional-rule", ("cilium-wireguard-51871",), 17, ((51871, 51871),)),
    ("conditional-rule", ("px-object-store-9010",), 6, ((9010, 9010),)),
    ("conditional-rule", ("px-sdk-autoscaling-9015",), 6, ((9015, 9015),)),
]


def test_shipped_matrix_findings_are_pinned() -> None:
    findings = lint_matrix(load_matrix())
    assert [(f.kind, f.rule_ids, f.protocol, f.ports) for f in findings] == SHIPPED
    assert lint_matrix(load_matrix()) == findings  # deterministic


def test_messages_of_the_issue_inconsistencies() -> None:
    by = {(f.kind, f.rule_ids[0], f.protocol): f.message for f in lint_matrix(load_matrix())}
    assert by[("missing-firewall-rule", "k8s-scheduler-10259", 6)] == (
        "k8s-scheduler-10259 documents tcp 10259 (nodes ↔ nodes) but no firewall rule allows "
        f"it; {SAME_SUBNET}"
    )
    assert by[("firewall-wider-than-documented", "fw-inter-node-px", None)] == (
        "fw-inter-node-px allows tcp/udp 9001-9022 (nodes ↔ nodes); 9004-9009, 9011, "
        "9016-9017 documented in no component table"
    )
    assert by[("protocol-mismatch", "fw-inter-node-px", 6)] == (
        "fw-inter-node-px allows tcp on 9002, documented only as udp (px-gossip-9002)"
    )
    assert by[("address-mismatch", "pma-ssh-22", 6)] == (
        "pma-ssh-22 documents tcp 22 for admin_workstations → pma; the firewall rules "
        "(fw-ssh-to-pma) do not allow admin_workstations → 10.25.232.155"
    )
    assert by[("address-mismatch", "pma-ui-443", 6)] == (
        "pma-ui-443 documents tcp 443 for admin_workstations, nodes → pma; the firewall rules "
        "(fw-admin-to-pma, fw-cluster-to-pma) do not allow 10.25.233.4-10.25.233.6, "
        "admin_workstations → 10.25.232.252"
    )


def test_configuring_admins_removes_only_the_unconfigured_finding() -> None:
    m = load_matrix(groups={"admin_workstations": ["10.1.2.0/24"]})
    kinds = [(f.kind, f.rule_ids[:1]) for f in lint_matrix(m)]
    assert ("unconfigured-group", ("pma-ui-443",)) not in kinds
    assert len(kinds) == len(SHIPPED) - 1
    ssh = next(f for f in lint_matrix(m) if f.rule_ids[0] == "pma-ssh-22")
    assert ssh.message.endswith("do not allow 10.1.2.0-10.1.2.255 → 10.25.232.155")


HEAD = """name: t
scope: {vlans: [10], subnets: [10.0.0.0/24]}
groups:
  a: {addresses: [10.0.0.1]}
  b: {addresses: [10.0.0.2, 10.0.0.3]}
  spare: {addresses: [10.0.0.9]}
rules:
"""


def _rule(rid: str, src: str, dst: str, proto: str, ports: str, origin: str = "component") -> str:
    return (
        f"  - {{id: {rid}, from: {src}, to: {dst}, protocol: {proto}, ports: {ports}, "
        f"purpose: p, provenance: {{table: T, row: {rid}, origin: {origin}}}}}\n"
    )


def _lint(tmp_path: Path, body: str) -> list[tuple[str, tuple[str, ...], int | None]]:
    p = tmp_path / "t.yaml"
    p.write_text(HEAD + body, encoding="utf-8")
    return [(f.kind, f.rule_ids, f.protocol) for f in lint_matrix(load_matrix(p))]


def test_duplicate_shadowed_overlapping_and_unreferenced(tmp_path: Path) -> None:
    body = (
        _rule("r1", "a", "b", "tcp", "'80-90'")
        + _rule("r2", "a", "b", "tcp", "'80-90'")  # duplicate of r1
        + _rule("r3", "a", "b", "tcp", "85")  # shadowed by r1 (and r2)
        + _rule("r4", "a", "b", "tcp", "'88-100'")  # overlaps r1/r2, covers r3
        + _rule("r5", "a", "b", "udp", "85")  # other protocol: no finding
        + _rule("r6", "b", "a", "tcp", "85")  # other direction: no finding
    )
    assert _lint(tmp_path, body) == [
        ("duplicate-rule", ("r1", "r2"), 6),
        ("shadowed-rule", ("r3", "r1"), 6),
        ("shadowed-rule", ("r3", "r2"), 6),
        ("overlapping-rules", ("r1", "r4"), 6),
        ("overlapping-rules", ("r2", "r4"), 6),
        ("unreferenced-group", (), None),
    ]


def test_component_and_firewall_agreeing_gives_no_finding(tmp_path: Path) -> None:
    body = _rule("c1", "a", "b", "tcp", "443") + _rule("f1", "a", "b", "tcp", "443", "firewall")
    body += _rule("c2", "spare", "a", "tcp", "22")
    body += _rule("f2", "spare", "a", "tcp", "22", "firewall")
    assert _lint(tmp_path, body) == []


def test_firewall_comparison_needs_both_origins(tmp_path: Path) -> None:
    body = _rule("c1", "a", "b", "tcp", "443") + _rule("c2", "a", "spare", "udp", "53")
    assert _lint(tmp_path, body) == []
