"""A day on VLAN 111 (the generator's ``day-on-the-lan`` scenario, with ground truth): image
pulls from 300 internet addresses, DNS/NTP to the site's servers, DHCP, VRRP of a gateway
pair, IPv6 RA/NS/MLD, mDNS and VXLAN between the nodes (carrying pod traffic: its inner flows
are checked in test_day_vxlan.py). What an analyst reads: one group for the internet egress,
the control plane apart, certain DNS direction, honest explanations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pcaptools import load_generator
from testpaths import ADMIN

from flowaudit import api

INTERNET = 300


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[dict[str, Any]], Path]:
    tmp = tmp_path_factory.mktemp("day")
    pcap, truth_path = tmp / "day.pcap", tmp / "day.truth.jsonl"
    gen = load_generator()
    summ = gen.generate(
        pcap, packets=30_000, seed=5, scenario="day-on-the-lan", truth_path=truth_path,
        internet=INTERNET,
    )  # fmt: skip
    assert summ["internet"] == INTERNET and summ["frames"]["ipv4_vrrp"] == 40
    truth = [json.loads(x) for x in truth_path.read_text().splitlines()]
    store = tmp / "store"
    result = api.audit([pcap], store=store, groups=ADMIN)
    return result, truth, store


def _key(d: dict[str, Any], vlan: str = "vlan") -> tuple[Any, ...]:
    return (d[vlan], d["src_ip"], d["dst_ip"], d["protocol"], d["dst_port"])


def test_flows_equal_the_truth(day: Any) -> None:
    _, truth, store = day
    got = api.query("SELECT * FROM flows", store=store).to_pylist()
    assert len(got) == len(truth)
    by = {(g["src_ip"], g["dst_ip"], g["protocol"], g["src_port"], g["dst_port"]): g for g in got}
    fields = ("src_packets", "src_bytes", "dst_packets", "dst_bytes", "state", "direction")
    for t in truth:
        g = by[(t["src_ip"], t["dst_ip"], t["protocol"], t["src_port"], t["dst_port"])]
        assert {f: g[f] for f in fields} == {f: t[f] for f in fields}, t


def test_violations_and_control_plane_equal_the_truth(day: Any) -> None:
    result, truth, _ = day
    want = {_key(t) for t in truth if t["label"] == "out-of-scope-address"}
    got = {_key(v, "vlan_id") for v in result.violations.to_pylist()}
    assert got == want and len(got) == INTERNET + 6  # + DNS and NTP, from each of the nodes
    assert result.stats["by_reason"] == {"out-of-scope-address": len(want)}
    lan = {
        (t["src_ip"], t["dst_ip"], t["protocol"]) for t in truth if t["label"] == "control-plane"
    }
    cp = result.control_plane.to_pylist()
    assert {(c["src_ip"], c["dst_ip"], c["protocol"]) for c in cp} == lan
    kinds = sorted({c["kind"] for c in cp})
    assert {"vrrp", "dhcp", "ipv6-nd"} <= set(kinds) <= {"vrrp", "dhcp", "ipv6-nd", "mld", "mdns"}
    assert {(c["src_ip"], c["kind"]) for c in cp if c["protocol"] == 112} == {
        ("10.25.233.2", "vrrp"),
        ("10.25.233.3", "vrrp"),
    }
    # VXLAN between the nodes is approved: not a finding
    assert not any(v["dst_port"] == 8472 for v in result.violations.to_pylist())
    assert any(t["dst_port"] == 8472 and t["label"] == "approved" for t in truth)


def test_internet_egress_is_one_group(day: Any) -> None:
    result, _, _ = day
    groups = result.finding_groups.to_pylist()
    keys = {
        (g["reason"], g["src_side"], g["dst_side"], g["protocol"], g["dst_port"]) for g in groups
    }
    assert keys == {
        ("out-of-scope-address", "nodes", "internet", 6, 443),
        ("out-of-scope-address", "nodes", "private", 17, 53),
        ("out-of-scope-address", "nodes", "private", 17, 123),
    }
    (egress,) = [g for g in groups if g["dst_side"] == "internet"]
    assert len(egress["findings"]) == egress["distinct_responders"] == INTERNET
    assert egress is groups[0]  # the most bytes: first
    # the groups partition the violations: every violation id in exactly one group
    members = [f for g in groups for f in g["findings"]]
    assert sorted(members) == sorted(result.violations.column("finding_id").to_pylist())
    assert len(set(members)) == len(members)


def test_dns_direction_is_certain_and_explanations_are_honest(day: Any) -> None:
    result, _, _ = day
    vs = result.violations.to_pylist()
    dns = [v for v in vs if v["dst_port"] in (53, 123)]
    assert dns and not any(v["direction_uncertain"] for v in dns)
    assert not any(v["direction_uncertain"] for v in vs)
    for v in vs:
        assert v["nearest_rule"] is None
        if v["dst_port"] == 443:
            assert v["differences"] == f"{v['dst_ip']} is an internet address"
        else:
            assert v["differences"] == f"{v['dst_ip']} is outside the scope subnets"


def test_report_reads_in_groups(day: Any) -> None:
    result, _, _ = day
    from flowaudit.report import render

    text = render(result, "text", width=300)
    assert "nodes (3 addresses) → internet (300 addresses)" in text
    assert "… 295 more in G1 (--detail)" in text
    assert "LAN control plane, not violations (8)" in text
