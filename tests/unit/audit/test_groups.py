"""Finding groups: every violation in exactly one group of (reason, source side, destination
side, protocol, responder port); sides are matrix groups, else address classes."""

from __future__ import annotations

import hashlib

import pytest
from flowrows import flow, make_flows

from flowaudit.audit.run import run_audit
from flowaudit.matrix import load_matrix
from flowaudit.matrix.hosts import address_class
from flowaudit.report import render
from flowaudit.report.json_ import result_to_dict as to_dict

ADMIN = {"admin_workstations": ["10.25.100.0/24"]}
N4, N5, N6 = "10.25.233.4", "10.25.233.5", "10.25.233.6"


@pytest.fixture(scope="module")
def matrix():
    return load_matrix(groups=ADMIN)


@pytest.mark.parametrize(
    ("ip", "cls"),
    [
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("255.255.255.255", "broadcast"),
        ("10.25.233.255", "broadcast"),  # the scope subnet's broadcast address
        ("224.0.0.18", "multicast"),
        ("ff02::1", "multicast"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("10.25.233.77", "site"),
        ("10.25.1.53", "private"),
        ("172.20.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),
        ("fd00::1", "private"),
        ("35.201.4.9", "internet"),
        ("2001:db8::1", "internet"),
    ],
)
def test_address_classes(matrix, ip: str, cls: str) -> None:
    assert address_class(ip, matrix) == cls


def _egress(n: int, t: float = 0.0, sport: int = 40000) -> list[dict]:
    nodes = (N4, N5, N6)
    return [
        flow(nodes[i % 3], f"35.201.{i // 200}.{i % 200 + 1}", 443, t=t, sport=sport + i)
        for i in range(n)
    ]


def test_internet_egress_is_one_group(matrix) -> None:
    rows = [*_egress(300), flow("10.25.233.77", N4, 10250), flow(N5, N6, 2381)]
    r = run_audit(matrix, make_flows(rows))
    assert r.violations.num_rows == 302
    groups = {
        (g["reason"], g["src_side"], g["dst_side"], g["protocol"], g["dst_port"]): g
        for g in r.finding_groups.to_pylist()
    }
    assert set(groups) == {
        ("out-of-scope-address", "nodes", "internet", 6, 443),
        ("unknown-source", "site", "nodes", 6, 10250),
        ("port-not-approved", "nodes", "nodes", 6, 2381),
    }
    g = groups[("out-of-scope-address", "nodes", "internet", 6, 443)]
    assert len(g["findings"]) == 300 and g["flows"] == 300
    assert (g["distinct_initiators"], g["distinct_responders"]) == (3, 300)
    assert g["bytes"] == 300 * 1100 and g["packets"] == 300 * 9
    key = "flowaudit-group-v1|out-of-scope-address|nodes|internet|6|443"
    assert g["group_id"] == hashlib.sha256(key.encode()).hexdigest()[:16]
    # every violation in exactly one group, and it says which
    members = sorted(f for x in groups.values() for f in x["findings"])
    assert members == sorted(r.violations.column("finding_id").to_pylist())
    assert {v["group_id"] for v in r.violations.to_pylist()} == {
        x["group_id"] for x in groups.values()
    }
    assert r.stats["finding_groups"] == 3
    d = to_dict(r)
    assert d["summary"]["finding_groups"] == 3
    (jg,) = [x for x in d["finding_groups"] if x["dst_side"] == "internet"]
    assert set(jg) >= {
        "group_id", "reason", "src_side", "dst_side", "protocol", "dst_port", "findings",
        "flows", "packets", "bytes", "distinct_initiators", "distinct_responders",
        "first_seen", "last_seen",
    }  # fmt: skip
    assert jg["first_seen"] == "2026-11-20T08:00:00Z"


def test_group_ids_are_stable_across_windows(matrix) -> None:
    a = run_audit(matrix, make_flows(_egress(10)))
    b = run_audit(matrix, make_flows(_egress(20, t=86400, sport=50000)))
    (ga,), (gb,) = a.finding_groups.to_pylist(), b.finding_groups.to_pylist()
    assert ga["group_id"] == gb["group_id"]
    assert set(ga["findings"]) < set(gb["findings"])


def test_text_report_shows_groups_then_five_findings_each(matrix) -> None:
    r = run_audit(matrix, make_flows([*_egress(12), flow(N5, N6, 2381)]))
    text = render(r, "text", width=400)
    assert "Finding groups (2)" in text
    assert "nodes (3 addresses) → internet (12 addresses)" in text
    assert "… 7 more in G1 (--detail)" in text
    assert sum(1 for line in text.splitlines() if "35.201." in line and "│ 111 " in line) == 5
    full = render(r, "text", width=400, detail=True)
    assert "more in G1" not in full
    assert sum(1 for line in full.splitlines() if "35.201." in line and "│ 111 " in line) == 12
    md = render(r, "markdown")
    assert "## Finding groups (2)" in md and "… 7 more in G1 (--detail)" in md
    html = render(r, "html")
    assert html.count("<details><summary><b>G") == 2 and "<script" not in html
    assert html.count("35.201.") >= 12


def test_nearest_rule_only_when_it_shares_a_group_and_is_close(matrix) -> None:
    pma = "10.25.232.155"
    rows = [
        flow(N4, "35.201.4.9", 443),  # internet: no rule is near
        flow(N4, "10.25.1.53", 53, proto=17, direction="service_port"),  # site DNS server
        flow("10.25.233.77", "10.25.233.99", 9999),  # two unknown hosts in the scope
        flow("fe80::1", "fe80::2", 5000, proto=17, sport=5001, direction="first_packet"),
        flow("10.25.233.77", N4, 10250),  # unknown source: kubelet rule shares the responder
        flow(N5, N6, 2381),  # one difference: the port
        flow(N4, pma, 6443),  # reversed: pma → nodes:6443
        flow(N4, N5, 2379, proto=17),  # protocol only
        flow(N4, pma, 9999, proto=17),  # protocol and port: two
        flow("10.25.100.10", N4, 9999, proto=17),  # source and port: two
        flow("10.25.100.10", N4, 9999, proto=132),  # source, protocol and port: three
    ]
    r = run_audit(matrix, make_flows(rows))
    got = {
        (v["src_ip"], v["dst_ip"], v["protocol"], v["dst_port"]): (
            v["nearest_rule"],
            v["differences"],
        )
        for v in r.violations.to_pylist()
    }
    assert got == {
        (N4, "35.201.4.9", 6, 443): (None, "35.201.4.9 is an internet address"),
        (N4, "10.25.1.53", 17, 53): (None, "10.25.1.53 is outside the scope subnets"),
        ("10.25.233.77", "10.25.233.99", 6, 9999): (
            None,
            "10.25.233.77 is in the scope subnets but in no group; "
            "10.25.233.99 is in the scope subnets but in no group",
        ),
        ("fe80::1", "fe80::2", 17, 5000): (
            None,
            "fe80::1 is a link-local address; fe80::2 is a link-local address",
        ),
        ("10.25.233.77", N4, 6, 10250): ("fw-inter-node-k8s", "src 10.25.233.77 not in nodes"),
        (N5, N6, 6, 2381): ("fw-inter-node-k8s", "dport 2381 not in {2379-2380, 6443, 10250}"),
        (N4, pma, 6, 6443): (
            "fw-pma-to-cluster",
            "initiator and responder reversed: rule allows pma_155 → nodes",
        ),
        (N4, N5, 17, 2379): ("fw-inter-node-k8s", "protocol udp not tcp"),
        (N4, pma, 17, 9999): (
            "fw-cluster-to-pma",
            "protocol udp not tcp; dport 9999 not in {443, 30003}",
        ),
        ("10.25.100.10", N4, 17, 9999): (
            "fw-inter-node-px",
            "src 10.25.100.10 not in nodes; dport 9999 not in {9001-9022}",
        ),
        ("10.25.100.10", N4, 132, 9999): (
            None,
            "no rule between admin_workstations and nodes is within two differences of sctp/9999",
        ),
    }
    doc = to_dict(r)
    (inet,) = [v for v in doc["violations"] if v["dst_ip"] == "35.201.4.9"]
    assert inet["nearest_rule"] == {
        "rule_id": None,
        "differences": "35.201.4.9 is an internet address",
    }


def test_unused_overbroad_and_unseen_pairs_are_apart(matrix) -> None:
    rows = [flow(N4, N5, p) for p in (9001, 9003, 9012, 9020)]
    r = run_audit(matrix, make_flows(rows))
    u = r.unused_rules.to_pylist()
    unused = sorted(x["rule_id"] for x in u if x["status"] == "unused")
    partly = [x for x in u if x["status"] == "partly-used"]
    overbroad = sorted((x["rule_id"], x["protocol"]) for x in partly if x["unused_ports"])
    pairs = sorted(x["rule_id"] for x in partly if x["unused_pairs"])
    assert overbroad == [("fw-inter-node-px", 6)]
    assert pairs == [
        "fw-inter-node-px", "px-mgmt-api-9001", "px-node-grpc-9012", "px-replication-9003",
        "px-sdk-gateway-9020",
    ]  # fmt: skip
    s = to_dict(r)["summary"]
    assert s["unused_rules"] == len(unused) and s["partly_used_rules"] == len(partly)
    assert (s["overbroad_rules"], s["unseen_pair_rules"]) == (1, 5)
    assert s["unseen_pairs"] == sum(len(x["unused_pairs"]) for x in partly) == 2 * 5
    text = render(r, "text", width=300)
    assert f"Unused rules ({len(unused)})" in text and "Over-broad rules (1)" in text
    assert "Host pairs never seen: 10 pairs of 5 partly used rules (--detail lists them)" in text
    assert "Host pairs never seen (5)" in render(r, "text", width=300, detail=True)
    md = render(r, "markdown")
    assert "## Host pairs never seen (5 rules)" in md and "`--detail` lists them" in md
    assert "<details><summary>Host pairs never seen: 10 pairs" in render(r, "html")


def test_a_protocol_without_ports_is_a_group_too(matrix) -> None:
    # GRE and ESP from two nodes to the internet: no responder port (NULL); one group per
    # protocol, with its members and top talkers like any other
    gre = {"proto": 47, "sport": None, "direction": "first_packet"}
    esp = {**gre, "proto": 50}
    rows = [
        flow(N4, "35.201.4.9", None, **gre),
        flow(N5, "35.201.4.9", None, by=(9000, 0), **gre),
        flow(N4, "35.201.4.10", None, **esp),
    ]
    r = run_audit(matrix, make_flows(rows))
    got = {(g["protocol"], g["dst_port"]): g for g in r.finding_groups.to_pylist()}
    assert set(got) == {(47, None), (50, None)}
    g = got[(47, None)]
    assert (len(g["findings"]), g["flows"], g["distinct_initiators"]) == (2, 2, 2)
    assert g["top_initiators"] == [N5, N4] and g["top_responders"] == ["35.201.4.9"]
    key = "flowaudit-group-v1|out-of-scope-address|nodes|internet|47|-"
    assert g["group_id"] == hashlib.sha256(key.encode()).hexdigest()[:16]
