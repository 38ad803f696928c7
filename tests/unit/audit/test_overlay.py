"""The overlay section and the encryption limit of the audit, on real tunnelled captures.

What a tunnel rule carried: the inner flows of a VXLAN trace (nDPI's vxlan.pcap: VNI 1111 on
VLAN 5 between two VTEPs) grouped under the rule that approves the outer VXLAN flow, and never
node-matrix findings; the share of ESP traffic (Zeek's ip6_esp.pcap) stated as what the
capture cannot audit.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from testpaths import DATA

from flowaudit import api
from flowaudit.cli import cli

OVERLAY = DATA / "overlay"
# the VTEPs of ndpi-vxlan.pcap may carry VXLAN; its `pods:` allow list lets pods use DNS only
VTEP_PODS = DATA / "rules" / "vtep-pods.yaml"
MATRIX = VTEP_PODS.read_text(encoding="utf-8").split("\npods:")[0] + "\n"
PODS = "\npods:" + VTEP_PODS.read_text(encoding="utf-8").split("\npods:")[1]


def _matrix(tmp: Path) -> Path:
    p = tmp / "vtep.yaml"
    p.write_text(MATRIX, encoding="utf-8")
    return p


def test_the_tunnel_rule_carries_the_inner_conversations(tmp_path: Path) -> None:
    report = api.audit([OVERLAY / "ndpi-vxlan.pcap"], rules=_matrix(tmp_path)).to_dict()
    assert report["violations"] == []  # the outer VXLAN flow is approved, pods are not audited
    assert [u["rule_id"] for u in report["unused_rules"]] == []
    # first/last seen: the first and last frame to or from that inner address (tshark)
    assert report["overlay"] == [
        {"finding_id": None, "reason": None, "rule_id": "vxlan-4789", "tunnel": "vxlan",
         "tunnel_id": 1111,
         "outer_src_ip": "192.168.22.4", "outer_dst_ip": "192.168.22.5",
         "inner_src_ip": "10.10.20.0/24", "inner_dst_ip": "157.240.224.35", "protocol": 6,
         "dst_port": 443, "flows": 2, "packets": 119, "bytes": 77726,
         "first_seen": "2021-12-16T10:27:22.712036Z", "last_seen": "2021-12-16T10:27:23.276366Z"},
        {"finding_id": None, "reason": None, "rule_id": "vxlan-4789", "tunnel": "vxlan",
         "tunnel_id": 1111,
         "outer_src_ip": "192.168.22.4", "outer_dst_ip": "192.168.22.5",
         "inner_src_ip": "10.10.20.0/24", "inner_dst_ip": "8.8.8.8", "protocol": 17,
         "dst_port": 53, "flows": 2, "packets": 8, "bytes": 738,
         "first_seen": "2021-12-16T10:27:22.645225Z", "last_seen": "2021-12-16T10:27:22.930989Z"},
    ]  # fmt: skip
    # the inner flows' own packets and bytes, from the store (both sides, four flows)
    assert report["summary"]["overlay"] == 2 and report["summary"]["overlay_flows"] == 4
    assert report["encrypted"]["esp_flows"] == 0 and report["encrypted"]["wireguard_flows"] == 0


def test_without_an_approving_rule_the_overlay_names_none(tmp_path: Path) -> None:
    report = api.audit([OVERLAY / "zeek-gre-sample.pcap"]).to_dict()
    assert {o["rule_id"] for o in report["overlay"]} == {None}
    assert {o["tunnel"] for o in report["overlay"]} == {"gre"}
    # the seven inner conversations Zeek logs for the trace (tests/data/overlay/gre.conn.log)
    assert sum(o["flows"] for o in report["overlay"]) == 7
    # the outer GRE flow is the finding; no inner address is
    assert [(v["src_ip"], v["dst_ip"], v["protocol"]) for v in report["violations"]] == [
        ("172.27.1.66", "66.59.109.137", 47)
    ]


def test_encrypted_traffic_is_stated_as_a_limit(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    res = CliRunner().invoke(
        cli, ["audit", str(OVERLAY / "zeek-ip6_esp.pcap"), "--format", "json", "-o", str(out)]
    )
    assert res.exit_code == 1, res.output
    enc = json.loads(out.read_text())["encrypted"]
    # `tshark -Y esp -T fields -e frame.len -e ipv6.src -e ipv6.dst`: 120 ESP frames,
    # 18,120 bytes, 3ffe::1 to twelve hosts (one ESP flow each); the 121st frame is an MLD
    # report (130 bytes)
    assert enc == {"wireguard_flows": 0, "wireguard_bytes": 0, "esp_flows": 12,
                   "esp_bytes": 18120, "flows": 13, "bytes": 18250}  # fmt: skip
    text = CliRunner().invoke(cli, ["audit", str(OVERLAY / "zeek-ip6_esp.pcap")]).output
    assert "Encrypted, not auditable from this capture: WireGuard 0 flows (0 bytes), ESP" in text


def test_the_coverage_cell_of_the_tunnel_rule_says_what_it_carries(tmp_path: Path) -> None:
    report = api.audit([OVERLAY / "ndpi-vxlan.pcap"], rules=_matrix(tmp_path))
    cells = [c for c in report.to_dict()["coverage"] if c["rules"] == ["vxlan-4789"]]
    assert [(c["status"], c["inner"]) for c in cells] == [("used", 2)]
    assert "carries 2 inner conversations" in report.coverage_svg()


def test_a_pod_allow_list_turns_inner_traffic_outside_it_into_findings(tmp_path: Path) -> None:
    m = _matrix(tmp_path)
    m.write_text(m.read_text(encoding="utf-8") + PODS, encoding="utf-8")
    report = api.audit([OVERLAY / "ndpi-vxlan.pcap"], rules=m)
    d = report.to_dict()
    assert d["violations"] == []
    # DNS between pods is allowed; HTTPS to 157.240.224.35 (no pod address) is not
    assert [(o["reason"], o["inner_dst_ip"], o["dst_port"]) for o in d["overlay"]] == [
        ("overlay-not-approved", "157.240.224.35", 443),
        (None, "8.8.8.8", 53),
    ]
    assert d["overlay"][0]["finding_id"] and d["overlay"][1]["finding_id"] is None
    assert d["summary"]["overlay_not_approved"] == 1
    assert report.has_findings  # exit 1
    res = CliRunner().invoke(cli, ["audit", str(OVERLAY / "ndpi-vxlan.pcap"), "--rules", str(m)])
    assert res.exit_code == 1
    assert f"{d['overlay'][0]['finding_id']} overlay-not-approved" in res.output


def test_a_pod_allow_list_with_a_bad_entry_names_file_and_line(tmp_path: Path) -> None:
    m = _matrix(tmp_path)
    m.write_text(m.read_text(encoding="utf-8") + PODS.replace("udp", "udpx"), encoding="utf-8")
    res = CliRunner().invoke(cli, ["rules", "check", str(m)])
    assert res.exit_code == 2
    assert f"{m}:" in res.output and "udpx" in res.output


def test_inner_flows_at_the_window_bounds(tmp_path: Path) -> None:
    """The window is [since, until) for inner flows too: the DNS flow that ends exactly at
    ``since`` is in it (the other ended before), the first HTTPS flow, which starts exactly
    at ``until``, is not (times from the first test, tshark's)."""
    import datetime as dt

    def at(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)

    pcap, m = OVERLAY / "ndpi-vxlan.pcap", _matrix(tmp_path)
    late = api.audit([pcap], rules=m, since=at("2021-12-16T10:27:22.930989")).to_dict()
    assert [(o["dst_port"], o["flows"], o["last_seen"]) for o in late["overlay"]] == [
        (443, 2, "2021-12-16T10:27:23.276366Z"),
        (53, 1, "2021-12-16T10:27:22.930989Z"),
    ]
    early = api.audit([pcap], rules=m, until=at("2021-12-16T10:27:22.712036")).to_dict()
    assert [(o["dst_port"], o["flows"]) for o in early["overlay"]] == [(53, 1)]


V1, V2, V3 = "10.25.233.4", "10.25.233.5", "10.25.233.6"
PROV = 'provenance: {table: T, row: "1", origin: component}'
OUTER_RULES = """\
name: vteps
scope:
  subnets: [10.25.233.0/24]
groups:
  v1: {addresses: [10.25.233.4]}
  v2: {addresses: [10.25.233.5]}
  v3: {addresses: [10.25.233.6]}
rules:
  - {id: vxlan, from: v1, to: v2, protocol: udp, ports: 4789, purpose: VXLAN, PROV}
  - {id: gre, from: v1, to: v2, protocol: 47, purpose: GRE, PROV}
  - {id: a-from-v3, from: v3, to: v2, protocol: udp, ports: 4789, purpose: p, PROV}
  - {id: a-to-v3, from: v1, to: v3, protocol: udp, ports: 4789, purpose: p, PROV}
  - {id: a-tcp, from: v1, to: v2, protocol: tcp, ports: 4789, purpose: p, PROV}
  - {id: a-4790, from: v1, to: v2, protocol: udp, ports: 4790, purpose: p, PROV}
pods:
  cidrs: [10.244.0.0/16]
  allow:
    - {protocol: tcp, ports: 8080, purpose: app}
"""


def test_the_rule_of_an_inner_flow_is_its_own_outer_flows(tmp_path: Path) -> None:
    """Synthetic flows of an untagged capture: a VXLAN and a GRE outer flow, each approved
    by its rule, and approved flows that differ from the VXLAN one in one part each (source,
    destination, protocol, port) under rules whose ids sort first: each inner flow names the
    rule of the outer flow it rode in, and only that one; the pod allow list approves pod
    to pod on tcp/8080 only."""
    from flowrows import flow, make_flows

    from flowaudit.audit.run import run_audit
    from flowaudit.matrix import load_matrix

    p = tmp_path / "m.yaml"
    p.write_text(OUTER_RULES.replace("PROV", PROV), encoding="utf-8")
    udp = {"proto": 17, "direction": "first_packet", "vlan": None}
    vx = flow(V1, V2, 4789, sport=50000, **udp)
    gre = flow(V1, V2, None, proto=47, sport=None, direction="first_packet", vlan=None)
    decoys = [flow(V3, V2, 4789, sport=50000, **udp), flow(V1, V3, 4789, sport=50000, **udp),
              flow(V1, V2, 4789, vlan=None), flow(V1, V2, 4790, sport=50000, **udp)]  # fmt: skip

    def inner(outer: dict, src: str, dst: str, port: int, t: float) -> dict:
        f = flow(src, dst, port, vlan=None, t=t)
        tunnel = "vxlan" if outer is vx else "gre"
        return {**f, "tunnel": tunnel, "tunnel_id": 7, "outer_src_ip": V1, "outer_dst_ip": V2,
                "outer_flow_id": outer["flow_id"]}  # fmt: skip

    inners = [
        inner(vx, "10.244.1.5", "10.244.2.7", 8080, 1),  # pod to pod, allowed
        inner(vx, "10.244.1.5", "1.1.1.1", 8080, 2),  # to no pod
        inner(gre, "10.244.1.6", "10.244.2.7", 9999, 3),  # a port the list does not allow
    ]
    r = run_audit(load_matrix(p), make_flows([vx, gre, *decoys, *inners]))
    assert r.violations.num_rows == 0 and r.unused_rules.num_rows == 0
    assert r.overlay is not None
    got = sorted((o["rule_id"], o["tunnel"], o["inner_dst_ip"], o["dst_port"], o["reason"])
                 for o in r.overlay.to_pylist())  # fmt: skip
    assert got == [
        ("gre", "gre", "10.244.2.7", 9999, "overlay-not-approved"),
        ("vxlan", "vxlan", "1.1.1.1", 8080, "overlay-not-approved"),
        ("vxlan", "vxlan", "10.244.2.7", 8080, None),
    ]
