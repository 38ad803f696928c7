"""The LAN control plane: link-scoped protocols to multicast/broadcast/link-local are listed
apart (not violations, not in the exit code); --strict makes them violations; the list is a
data file that --control-plane replaces."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from flowrows import flow, make_flows

from flowaudit.audit.control_plane import load_control_plane
from flowaudit.audit.run import run_audit
from flowaudit.errors import UsageError
from flowaudit.matrix import load_matrix
from flowaudit.report.json_ import result_to_dict as to_dict

ADMIN = {"admin_workstations": ["10.25.100.0/24"]}
N4, N5, N6 = "10.25.233.4", "10.25.233.5", "10.25.233.6"
LL4, LL5 = "fe80::3eec:efff:fe10:e904", "fe80::3eec:efff:fe10:e905"

LAN = [
    flow("10.25.233.2", "224.0.0.18", None, proto=112, sport=None, direction="first_packet"),
    flow(N4, "224.0.0.22", None, proto=2, sport=None, direction="first_packet"),
    flow("0.0.0.0", "255.255.255.255", 67, proto=17, sport=68, direction="first_packet"),
    flow("10.25.233.1", "10.25.233.255", 68, proto=17, sport=67, direction="first_packet"),
    flow(LL4, "ff02::1:2", 547, proto=17, sport=546, direction="first_packet"),
    flow(LL4, "ff02::1:ff10:e905", 136, proto=58, sport=135, direction="first_packet"),
    flow(LL5, LL4, 135, proto=58, sport=136, direction="first_packet"),  # NA to link-local
    flow("fe80::1", "ff02::1", 133, proto=58, sport=134, direction="first_packet"),  # RA
    flow(LL4, "ff02::16", 0, proto=58, sport=143, direction="first_packet"),  # MLDv2 report
    flow(LL5, "ff02::fb", 5353, proto=17, sport=5353, direction="first_packet"),
    flow(N5, "224.0.0.252", 5355, proto=17, sport=51000, direction="first_packet"),
    flow(N6, "239.255.255.250", 1900, proto=17, sport=51001, direction="first_packet"),
]
UNICAST = [
    flow(N4, "10.25.1.53", 53, proto=17, direction="service_port"),  # site DNS: a violation
    flow(N4, "10.25.1.123", 123, proto=17, sport=123, direction="first_packet"),  # NTP
    flow(N5, "10.25.233.1", 67, proto=17, sport=68, direction="first_packet"),  # unicast DHCP
    flow(LL4, "ff02::1", 128, proto=58, sport=129, direction="first_packet"),  # ping, not ND
]


@pytest.fixture(scope="module")
def matrix():
    return load_matrix(groups=ADMIN)


def test_lan_control_plane_is_apart(matrix) -> None:
    r = run_audit(matrix, make_flows([*LAN, *UNICAST, flow(N5, N6, 2381)]))
    got = sorted((c["kind"], c["src_ip"], c["dst_ip"]) for c in r.control_plane.to_pylist())
    assert got == [
        ("dhcp", "0.0.0.0", "255.255.255.255"),
        ("dhcp", "10.25.233.1", "10.25.233.255"),
        ("dhcpv6", LL4, "ff02::1:2"),
        ("igmp", N4, "224.0.0.22"),
        ("ipv6-nd", "fe80::1", "ff02::1"),
        ("ipv6-nd", LL4, "ff02::1:ff10:e905"),
        ("ipv6-nd", LL5, LL4),
        ("llmnr", N5, "224.0.0.252"),
        ("mdns", LL5, "ff02::fb"),
        ("mld", LL4, "ff02::16"),
        ("ssdp", N6, "239.255.255.250"),
        ("vrrp", "10.25.233.2", "224.0.0.18"),
    ]
    assert sorted((v["dst_ip"], v["reason"]) for v in r.violations.to_pylist()) == [
        ("10.25.1.123", "out-of-scope-address"),
        ("10.25.1.53", "out-of-scope-address"),
        ("10.25.233.1", "unknown-destination"),
        (N6, "port-not-approved"),
        ("ff02::1", "out-of-scope-address"),
    ]
    assert r.stats["control_plane"] == 12 and r.stats["control_plane_flows"] == 12
    d = to_dict(r)
    assert d["summary"]["control_plane_flows"] == 12 and d["summary"]["violations"] == 5
    (vrrp,) = [c for c in d["control_plane"] if c["kind"] == "vrrp"]
    assert vrrp == {
        "protocol": 112,
        "kind": "vrrp",
        "src_ip": "10.25.233.2",
        "dst_ip": "224.0.0.18",
        "flows": 1,
        "packets": 9,
        "bytes": 1100,
        "first_seen": "2026-11-20T08:00:00Z",
        "last_seen": "2026-11-20T08:00:01Z",
    }


def test_strict_reports_the_control_plane_as_violations(matrix) -> None:
    r = run_audit(matrix, make_flows(LAN), strict=True)
    assert r.control_plane.num_rows == 0
    assert r.stats["by_reason"] == {"control-plane": 12}
    assert to_dict(r)["summary"]["strict"] is True


def test_control_plane_list_is_data(matrix, tmp_path: Path) -> None:
    only_vrrp = tmp_path / "cp.yaml"
    only_vrrp.write_text("to: [multicast]\nprotocols:\n  - kind: vrrp\n    protocol: 112\n")
    cp = load_control_plane(only_vrrp)
    r = run_audit(matrix, make_flows(LAN), control_plane=cp)
    assert [c["kind"] for c in r.control_plane.to_pylist()] == ["vrrp"]
    assert r.violations.num_rows == 11
    shipped = load_control_plane()
    assert [e.kind for e in shipped.entries] == [
        "ipv6-nd", "mld", "igmp", "vrrp", "dhcp", "dhcpv6", "mdns", "llmnr", "ssdp",
    ]  # fmt: skip
    assert shipped.to == ("multicast", "broadcast", "link-local")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("protocols: [\n", "cp.yaml:2"),
        ("to: [nowhere]\nprotocols: []\n", "`to` must list address classes"),
        ("protocols:\n  - kind: x\n    protocol: tcp\n    icmp_types: [1]\n", "cp.yaml:2: x:"),
        ("protocols:\n  - kind: x\n    protocol: bogus\n", "unknown protocol"),
        ("nothing: here\n", "needs a `protocols` list"),
    ],
)
def test_bad_control_plane_file_is_a_usage_error(tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "cp.yaml"
    bad.write_text(text)
    with pytest.raises(UsageError, match=message.replace("[", r"\[")):
        load_control_plane(bad)


def test_cli_strict_and_control_plane_options(tmp_path: Path) -> None:
    from testpaths import ADMIN_OPT, MIXED

    from flowaudit.cli import cli

    runner = CliRunner()
    plain = runner.invoke(cli, ["audit", str(MIXED), *ADMIN_OPT, "--format", "json"])
    strict = runner.invoke(cli, ["audit", str(MIXED), *ADMIN_OPT, "--format", "json", "--strict"])
    assert plain.exit_code == strict.exit_code == 1
    assert '"control-plane": 4' in strict.stdout and '"control-plane"' not in plain.stdout
    bad = tmp_path / "cp.yaml"
    bad.write_text("protocols: 3\n")
    r = runner.invoke(cli, ["audit", str(MIXED), *ADMIN_OPT, "--control-plane", str(bad)])
    assert r.exit_code == 2 and "needs a `protocols` list" in r.stderr


VRRP = flow("10.25.233.2", "224.0.0.18", None, proto=112, sport=None, direction="first_packet")
MDNS = flow(LL5, "ff02::fb", 5353, proto=17, sport=5353, direction="first_packet")


def test_control_plane_of_another_vlan_is_off_vlan(matrix) -> None:
    # the shipped scope is VLAN 111: VRRP and mDNS tagged 112 are another segment's
    # traffic, reported off-vlan, not listed as this LAN's control plane
    rows = [VRRP, {**VRRP, "vlan_id": 112}, {**MDNS, "vlan_id": 112}]
    r = run_audit(matrix, make_flows(rows))
    assert [(c["kind"], c["src_ip"]) for c in r.control_plane.to_pylist()] == [
        ("vrrp", "10.25.233.2")
    ]
    got = sorted((v["vlan_id"], v["dst_ip"], v["reason"]) for v in r.violations.to_pylist())
    assert got == [(112, "224.0.0.18", "off-vlan"), (112, "ff02::fb", "off-vlan")]


SCOPE_NO_VLANS = """\
name: no-vlans
scope:
  subnets: [10.25.233.0/24]
groups:
  routers: {addresses: [10.25.233.2]}
  vrrp_group: {addresses: [224.0.0.18]}
rules: RULES
"""
VRRP_RULE = """
  - id: vrrp-adverts
    from: routers
    to: vrrp_group
    protocol: 112
    purpose: VRRP adverts of the router
    provenance: {table: T, row: "1", origin: component}
"""


def test_a_scope_without_vlans_takes_the_control_plane_of_every_tag(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(SCOPE_NO_VLANS.replace("rules: RULES\n", "rules: []\n"))
    r = run_audit(load_matrix(p), make_flows([{**VRRP, "vlan_id": 112}, {**MDNS, "vlan_id": 7}]))
    assert sorted(c["kind"] for c in r.control_plane.to_pylist()) == ["mdns", "vrrp"]
    assert r.violations.num_rows == 0


def test_control_plane_a_rule_admits_is_approved_traffic(tmp_path: Path) -> None:
    # a rule for VRRP makes its adverts approved: not listed as control plane, not counted
    # twice in the traffic shape; mDNS (no rule) stays control plane
    p = tmp_path / "m.yaml"
    p.write_text(SCOPE_NO_VLANS.replace("RULES", VRRP_RULE))
    r = run_audit(load_matrix(p), make_flows([VRRP, MDNS]))
    assert [c["kind"] for c in r.control_plane.to_pylist()] == ["mdns"]
    assert r.violations.num_rows == 0 and r.unused_rules.num_rows == 0
    assert r.stats["control_plane_flows"] == 1
    assert r.traffic_shape is not None
    shape = r.traffic_shape.to_pylist()
    assert sum(s["flows"] for s in shape) == 2
    assert sum(s["approved_flows"] for s in shape) == 1
    assert sum(s["control_plane_flows"] for s in shape) == 1
    assert sum(s["unapproved_flows"] for s in shape) == 0
