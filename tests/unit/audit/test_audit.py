"""The audit engine on flow tables built in code: real DuckDB, the shipped matrix."""

from __future__ import annotations

import datetime as dt

import pytest
from flowrows import T0, flow, make_flows

from flowaudit.audit.run import run_audit
from flowaudit.matrix import load_matrix
from flowaudit.report.json_ import result_to_dict as to_dict

ADMIN = {"admin_workstations": ["10.25.100.0/24"]}
N4, N5, N6 = "10.25.233.4", "10.25.233.5", "10.25.233.6"
PMA, PMA_SSH = "10.25.232.155", "10.25.232.252"


@pytest.fixture(scope="module")
def matrix():
    return load_matrix(groups=ADMIN)


def _violations(result):
    return {
        (v["src_ip"], v["dst_ip"], v["protocol"], v["dst_port"], v["vlan_id"]): v
        for v in result.violations.to_pylist()
    }


def test_approved_traffic_gives_no_violation(matrix) -> None:
    rows = [
        flow(N4, PMA, 443),
        flow(N5, PMA, 30003),
        flow(PMA, N6, 6443),
        flow(N4, N5, 2379),
        flow(N5, N4, 2380),
        flow(N6, N4, 9002, proto=17),
        flow("10.25.100.10", PMA, 5080),
        flow("10.25.100.11", PMA_SSH, 22),
    ]
    r = run_audit(matrix, make_flows(rows))
    assert r.violations.num_rows == 0
    assert r.flows == len(rows)


def test_every_reason_code(matrix) -> None:
    rows = [
        flow(N5, N6, 2381),  # port-not-approved
        flow(N4, PMA, 6443),  # reverse-direction (rule is pma → nodes:6443)
        flow("10.25.233.77", N4, 10250),  # unknown-source
        flow(N4, "10.25.233.99", 443),  # unknown-destination
        flow(N4, N5, 2379, proto=17),  # protocol-not-approved (etcd is tcp)
        flow(N4, N5, 0, proto=1, sport=8, state="SF"),  # icmp echo: protocol-not-approved
        flow(N4, N5, 2380, vlan=112),  # off-vlan, although port and hosts are approved
        flow(N4, "8.8.8.8", 53, proto=17, direction="service_port"),  # out-of-scope-address
        flow("fe80::1", "ff02::fb", 5353, proto=17, sport=5353, direction="first_packet"),
    ]
    r = run_audit(matrix, make_flows(rows))
    v = _violations(r)
    assert {k: x["reason"] for k, x in v.items()} == {
        (N5, N6, 6, 2381, 111): "port-not-approved",
        (N4, PMA, 6, 6443, 111): "reverse-direction",
        ("10.25.233.77", N4, 6, 10250, 111): "unknown-source",
        (N4, "10.25.233.99", 6, 443, 111): "unknown-destination",
        (N4, N5, 17, 2379, 111): "protocol-not-approved",
        (N4, N5, 1, 0, 111): "protocol-not-approved",
        (N4, N5, 6, 2380, 112): "off-vlan",
        (N4, "8.8.8.8", 17, 53, 111): "out-of-scope-address",
        # mDNS to ff02::fb is LAN control plane: listed apart, not a violation
    }
    assert [(c["kind"], c["src_ip"], c["dst_ip"]) for c in r.control_plane.to_pylist()] == [
        ("mdns", "fe80::1", "ff02::fb")
    ]
    assert v[(N5, N6, 6, 2381, 111)]["nearest_rule"] == "fw-inter-node-k8s"
    assert v[(N5, N6, 6, 2381, 111)]["differences"] == "dport 2381 not in {2379-2380, 6443, 10250}"
    assert v[(N4, PMA, 6, 6443, 111)]["nearest_rule"] == "fw-pma-to-cluster"
    assert v[(N4, PMA, 6, 6443, 111)]["differences"].startswith("initiator and responder reversed")
    assert v[(N4, N5, 17, 2379, 111)]["differences"] == "protocol udp not tcp"
    assert v[(N4, N5, 6, 2380, 112)]["differences"] == "vlan 112 not in scope [111]"
    # DNS from an ephemeral port to 53: the direction is certain
    assert v[(N4, "8.8.8.8", 17, 53, 111)]["direction_uncertain"] is False
    assert r.stats["by_reason"] == {
        "off-vlan": 1,
        "out-of-scope-address": 1,
        "port-not-approved": 1,
        "protocol-not-approved": 2,
        "reverse-direction": 1,
        "unknown-destination": 1,
        "unknown-source": 1,
    }


def test_state_mix_and_grouping(matrix) -> None:
    rows = [
        flow(N5, N6, 2381, sport=40001, state="S0", pk=(3, 0), by=(222, 0)),
        flow(N5, N6, 2381, sport=40002, state="REJ", pk=(1, 1), by=(74, 60), t=5),
        flow(N5, N6, 2381, sport=40003, state="SF", t=9),
        flow(N5, N6, 2381, sport=40004, state="OTH", direction="service_port", t=12),
    ]
    (v,) = run_audit(matrix, make_flows(rows)).violations.to_pylist()
    assert (v["flows"], v["packets"], v["bytes"]) == (4, 3 + 2 + 9 + 9, 222 + 134 + 1100 + 1100)
    assert (v["attempted"], v["rejected"], v["established"], v["midstream"]) == (1, 1, 1, 1)
    assert v["first_seen"] == T0
    assert v["last_seen"] == T0 + dt.timedelta(seconds=13)


def test_midstream_flow_tried_both_ways(matrix) -> None:
    # an etcd peer session seen mid-stream with the responder recorded as initiator
    rows = [flow(N5, N4, 45000, sport=2380, direction="first_packet", state="OTH")]
    r = run_audit(matrix, make_flows(rows))
    assert r.violations.num_rows == 0
    used = {u["rule_id"] for u in r.unused_rules.to_pylist() if u["status"] == "partly-used"}
    assert "k8s-etcd-2379-2380" in used


def test_certain_direction_is_not_reversed(matrix) -> None:
    # the same tuple with a SYN seen: the initiator is known, port 45000 is not approved
    rows = [flow(N5, N4, 45000, sport=2380, direction="syn")]
    (v,) = run_audit(matrix, make_flows(rows)).violations.to_pylist()
    assert v["reason"] == "port-not-approved"
    assert v["direction_uncertain"] is False


@pytest.mark.parametrize(
    ("proto", "sport", "dport", "direction", "uncertain"),
    [
        (17, 40000, 53, "service_port", False),  # DNS: ephemeral → well known
        (17, 51000, 2379, "service_port", False),  # ephemeral → a port the matrix names
        (6, 40000, 22, "service_port", False),  # mid-stream TCP, ephemeral → well known
        (6, 40000, 2381, "service_port", True),  # 2381: neither well known nor in the matrix
        (17, 53, 40000, "first_packet", True),  # the answer seen first: well known → ephemeral
        (17, 7946, 7947, "first_packet", True),  # service port → other port: ambiguous
        (17, 40001, 40000, "first_packet", True),  # ephemeral ↔ ephemeral
        (17, 2379, 2380, "first_packet", True),  # service ↔ service
        (1, 8, 0, "first_packet", False),  # ICMP echo request → reply
        (1, 0, 8, "first_packet", True),  # the reply side seen as initiator
        (58, 128, 129, "first_packet", False),  # ICMPv6 echo
        (58, 3, 0, "first_packet", True),  # time exceeded: no request/response pair
    ],
)
def test_direction_is_certain_only_when_the_ports_say_so(
    matrix, proto: int, sport: int, dport: int, direction: str, uncertain: bool
) -> None:
    (v,) = run_audit(
        matrix,
        make_flows([flow(N4, "8.8.4.4", dport, proto=proto, sport=sport, direction=direction)]),
    ).violations.to_pylist()
    assert v["direction_uncertain"] is uncertain


def test_unused_and_partly_used(matrix) -> None:
    rows = [flow(N4, N5, p) for p in (9001, 9003, 9012, 9020)]
    r = run_audit(matrix, make_flows(rows))
    u = {(x["rule_id"], x["protocol"]): x for x in r.unused_rules.to_pylist()}
    px = u[("fw-inter-node-px", 6)]
    assert px["status"] == "partly-used"
    assert px["unused_ports"] == [[9002, 9002], [9004, 9011], [9013, 9019], [9021, 9022]]
    assert sum(hi - lo + 1 for lo, hi in px["unused_ports"]) == 18
    # bidirectional inter-node rule: 3 unordered pairs, 4↔5 used
    assert px["unused_pairs"] == [[N4, N6], [N5, N6]]
    assert u[("fw-inter-node-px", 17)]["status"] == "unused"
    assert ("px-mgmt-api-9001", 6) in u  # used by one pair only: partly used
    assert u[("px-mgmt-api-9001", 6)]["status"] == "partly-used"
    assert u[("px-mgmt-api-9001", 6)]["unused_ports"] == []
    vx = u[("cilium-vxlan-8472", 17)]
    assert vx["status"] == "unused"
    assert vx["condition"] is not None and "conditional rule" in vx["evidence"]
    ssh = u[("fw-ssh-to-pma", 6)]
    assert ssh["observable"] is False
    assert "not observable" in ssh["evidence"]
    assert "window 2026-11-20T08:00:00Z .. 2026-11-20T08:00:01Z" in ssh["evidence"]


def test_unconfigured_group_is_not_observable() -> None:
    m = load_matrix()  # admin workstations not supplied
    r = run_audit(m, make_flows([flow("10.25.100.10", PMA, 443)]))
    (v,) = r.violations.to_pylist()
    assert v["reason"] == "out-of-scope-address"
    assert "admin_workstations has no addresses" in v["differences"]
    u = {x["rule_id"]: x for x in r.unused_rules.to_pylist()}
    assert u["fw-admin-to-pma"]["observable"] is False
    assert "admin_workstations" in u["fw-admin-to-pma"]["evidence"]


def test_finding_ids_are_stable_across_ports_and_times(matrix) -> None:
    a = [flow(N5, N6, 2381, sport=40001), flow(N4, "10.25.233.99", 443, sport=50000)]
    b = [flow(N5, N6, 2381, sport=51234, t=86400 * 3), flow(N4, "10.25.233.99", 443, sport=33333)]
    ra, rb = run_audit(matrix, make_flows(a)), run_audit(matrix, make_flows(b))
    ids_a = sorted(ra.violations.column("finding_id").to_pylist())
    ids_b = sorted(rb.violations.column("finding_id").to_pylist())
    assert ids_a == ids_b and len(set(ids_a)) == 2
    ua = sorted(ra.unused_rules.column("finding_id").to_pylist())
    ub = sorted(rb.unused_rules.column("finding_id").to_pylist())
    assert ua == ub


def test_window_filters_flows(matrix) -> None:
    rows = [flow(N5, N6, 2381, t=0), flow(N5, N6, 2382, t=3600)]
    r = run_audit(matrix, make_flows(rows), since=T0 + dt.timedelta(minutes=30))
    assert [v["dst_port"] for v in r.violations.to_pylist()] == [2382]
    assert r.flows == 1
    assert r.window_start == T0 + dt.timedelta(minutes=30)


def test_empty_flows_is_an_empty_result(matrix) -> None:
    r = run_audit(matrix, make_flows([]))
    assert r.violations.num_rows == 0 and r.flows == 0
    assert r.window_start is None
    assert all(u["status"] == "unused" for u in r.unused_rules.to_pylist())


def test_sampled_counts_are_flagged(matrix) -> None:
    r = run_audit(matrix, make_flows([flow(N5, N6, 2381, sampling=1000)]))
    assert r.sampled is True
    assert to_dict(r)["summary"]["counts_note"] == "packet and byte counts are sampled estimates"


def test_json_contract_keys(matrix) -> None:
    d = to_dict(run_audit(matrix, make_flows([flow(N5, N6, 2381)])))
    assert d["schema_version"] == 1
    assert set(d) >= {"schema_version", "matrix", "window", "violations", "unused_rules", "summary"}
    assert set(d["matrix"]) == {"name", "sha256"}
    assert set(d["window"]) == {"start", "end", "flows"}
    (v,) = d["violations"]
    assert set(v) >= {
        "finding_id",
        "reason",
        "src_ip",
        "dst_ip",
        "protocol",
        "dst_port",
        "vlan_id",
        "flows",
        "packets",
        "bytes",
        "first_seen",
        "last_seen",
        "states",
        "nearest_rule",
    }
    assert v["protocol"] == 6 and v["first_seen"] == "2026-11-20T08:00:00Z"
    u = d["unused_rules"][0]
    assert set(u) >= {"finding_id", "rule_id", "status", "protocol", "ports", "unused_ports"}


def test_untagged_flows(matrix) -> None:
    # a capture with no tags at all is the scope VLAN (access-port SPAN)
    assert run_audit(matrix, make_flows([flow(N4, N5, 2379, vlan=None)])).violations.num_rows == 0
    # in a capture that has VLAN 111 tags, untagged frames are the trunk's native VLAN
    rows = [flow(N4, N5, 2379), flow(N5, N4, 10250, vlan=None, t=2)]
    (v,) = run_audit(matrix, make_flows(rows)).violations.to_pylist()
    assert (v["reason"], v["vlan_id"], v["dst_port"]) == ("off-vlan", None, 10250)
    assert v["differences"].startswith("untagged (native VLAN)")


def test_counters_beyond_int64_saturate_instead_of_failing_the_audit() -> None:
    """A corrupt record may carry a counter near 2**64 (NetFlow, Zeek): the sums are
    HUGEINT and saturate at the BIGINT maximum; the audit still reports the flow."""
    top = 2**64 - 1
    matrix = load_matrix(groups=ADMIN)
    flows = make_flows(
        [flow(N5, N6, 2381, pk=(top, top), by=(top, 7)), flow(N5, N6, 2381, t=5.0, pk=(1, 1))]
    )
    (v,) = run_audit(matrix, flows).violations.to_pylist()
    assert (v["flows"], v["packets"], v["bytes"]) == (2, 2**63 - 1, 2**63 - 1)


MINI = """\
name: mini
scope:
  subnets: [10.25.233.0/24]
groups:
  nodes: {addresses: [10.25.233.4-10.25.233.6]}
rules: RULES
"""
ETCD = """
  - id: etcd
    from: nodes
    to: nodes
    protocol: tcp
    ports: 2379-2380
    purpose: etcd
    provenance: {table: T, row: "1", origin: component}
"""


def test_scope_without_vlans_accepts_every_tag_but_not_the_native_vlan(tmp_path) -> None:
    p = tmp_path / "mini.yaml"
    p.write_text(MINI.replace("RULES", ETCD))
    m = load_matrix(p)
    rows = [flow(N4, N5, 2379, vlan=999), flow(N4, N5, 2380, vlan=None, sport=40001)]
    (v,) = run_audit(m, make_flows(rows)).violations.to_pylist()
    assert (v["dst_port"], v["vlan_id"], v["reason"], v["native_vlan"]) == (
        2380,
        None,
        "off-vlan",
        True,
    )


def test_a_matrix_without_rules_reports_every_flow(tmp_path) -> None:
    p = tmp_path / "mini.yaml"
    p.write_text(MINI.replace("RULES", "[]"))
    (v,) = run_audit(load_matrix(p), make_flows([flow(N4, N5, 2379)])).violations.to_pylist()
    assert (v["reason"], v["nearest_rule"], v["differences"]) == (
        "port-not-approved",
        None,
        "the matrix has no rules",
    )


@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 700])
def test_python_rows_load_whole_across_insert_chunks(n: int) -> None:
    """register_rows binds up to 256 rows per INSERT: every row arrives exactly once,
    whatever the count (nulls and text included; the engine does not keep row order)."""
    import pyarrow as pa

    from flowaudit.audit.engine import Engine

    schema = pa.schema([("i", pa.int64()), ("s", pa.string()), ("x", pa.int32())])
    rows = [(i, f"row {i}", None if i % 3 else i) for i in range(n)]
    eng = Engine()
    try:
        got = eng.table_from_rows(schema, rows)
    finally:
        eng.close()
    assert got.schema == schema
    assert sorted(zip(*(got.column(c).to_pylist() for c in "isx"), strict=True)) == rows


PORTLESS = """
  - id: vrrp
    from: a
    to: b
    protocol: 112
    purpose: VRRP adverts
    provenance: {table: T, row: "1", origin: component}
  - id: gre
    from: b
    to: c
    protocol: 47
    ports: any
    purpose: GRE tunnel
    provenance: {table: T, row: "2", origin: component}
"""


def test_rules_of_protocols_without_ports_admit_their_flows(tmp_path) -> None:
    """rules/README.md: `ports` is required for tcp/udp/sctp only; a rule of another
    protocol without it allows any port. GRE, ESP and VRRP flows carry no ports (null in
    the flow table), so such a rule admits every flow of its protocol between its groups,
    in either orientation when the initiator is uncertain; an exporter's certain
    direction against the rule is `reverse-direction`."""
    p = tmp_path / "portless.yaml"
    groups = "groups:\n  a: {addresses: [10.25.233.4]}\n  b: {addresses: [10.25.233.5]}\n"
    groups += "  c: {addresses: [10.25.233.6]}\n"
    p.write_text(MINI.replace("groups:\n  nodes: {addresses: [10.25.233.4-10.25.233.6]}\n", groups)
                 .replace("RULES", PORTLESS))  # fmt: skip
    m = load_matrix(p)
    up = "first_packet"  # no handshake: the initiator is uncertain
    rows = [
        flow(N4, N5, None, proto=112, sport=None, direction=up),  # vrrp forward
        flow(N6, N5, None, proto=47, sport=None, direction=up),  # gre seen from c first
        flow(N5, N4, None, proto=112, sport=None, direction="exporter", t=5),  # certain, reversed
        flow(N4, N5, None, proto=50, sport=None, direction=up),  # esp: no rule of it
    ]
    r = run_audit(m, make_flows(rows))
    got = {(v["src_ip"], v["dst_ip"], v["protocol"], v["dst_port"]): v["reason"]
           for v in r.violations.to_pylist()}  # fmt: skip
    assert got == {
        (N5, N4, 112, None): "reverse-direction",
        (N4, N5, 50, None): "protocol-not-approved",
    }
    assert r.unused_rules.to_pylist() == []
