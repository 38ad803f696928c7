"""The audit's verdict on any set of flows against a plain-Python statement of the rules.

Flows are drawn from small pools (addresses in and out of groups, scope and the port
space; scope and foreign VLANs, untagged flows; tcp/udp/icmp; certain and uncertain
initiators), so one flow often has several reasons at once (an outside address on a
foreign VLAN, an unknown host on a reversed port). They go through the real audit
(``run_audit`` on a ``make_flows`` table, real DuckDB); the oracle below is written from
ARCHITECTURE.md ("Reason precedence", "Untagged traffic", "Scope addresses", "Uncertain
initiators") and rules/README.md (what a rule admits), not from the SQL.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from flowrows import flow, make_flows
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from flowaudit.audit.run import run_audit
from flowaudit.matrix import Matrix, load_matrix

pytestmark = pytest.mark.slow

MATRIX = """\
name: props
scope:
  vlans: [111]
  subnets: [10.1.0.0/24]
groups:
  web: {addresses: [10.1.0.1-10.1.0.3]}
  app: {addresses: [10.1.0.10-10.1.0.12]}
  admin: {addresses: [192.168.5.5]}
rules:
  - id: web-app
    from: web
    to: app
    protocol: tcp
    ports: [443, 8000-8010]
    purpose: p1
    provenance: {table: T, row: "1", origin: component}
  - id: app-dns
    from: app
    to: web
    protocol: udp
    ports: 53
    purpose: p2
    provenance: {table: T, row: "2", origin: component}
  - id: admin-ssh
    from: admin
    to: [web, app]
    protocol: tcp
    ports: 22
    purpose: p3
    provenance: {table: T, row: "3", origin: component}
  - id: web-app-stream
    from: web
    to: app
    protocol: udp
    ports: 5000-5001
    purpose: p5
    provenance: {table: T, row: "5", origin: component}
  - id: admin-app-mgmt
    from: admin
    to: app
    protocol: tcp
    ports: 9000
    bidirectional: true
    purpose: p6
    provenance: {table: T, row: "6", origin: component}
  - id: app-admin-api
    from: app
    to: admin
    protocol: tcp
    ports: 8443
    purpose: p7
    provenance: {table: T, row: "7", origin: component}
  - id: web-peers
    from: web
    to: web
    protocol: [tcp, udp]
    ports: 2379-2380
    bidirectional: true
    purpose: p4
    provenance: {table: T, row: "4", origin: component}
  - id: app-web-gre
    from: app
    to: web
    protocol: 47
    purpose: p8
    provenance: {table: T, row: "8", origin: component}
"""

# the matrix above, restated for the oracle
SCOPE_VLANS = {111}
SUBNET = ipaddress.ip_network("10.1.0.0/24")
GROUPS = {
    "web": {f"10.1.0.{i}" for i in (1, 2, 3)},
    "app": {f"10.1.0.{i}" for i in (10, 11, 12)},
    "admin": {"192.168.5.5"},
}
# (protocols, ports, from, to, bidirectional), in rule-id order below
RULE_IDS = ["web-app", "app-dns", "admin-ssh", "web-app-stream", "admin-app-mgmt", "app-admin-api",
            "web-peers", "app-web-gre"]  # fmt: skip
RULES = [
    ({6}, [(443, 443), (8000, 8010)], {"web"}, {"app"}, False),
    ({17}, [(53, 53)], {"app"}, {"web"}, False),
    ({6}, [(22, 22)], {"admin"}, {"web", "app"}, False),
    ({17}, [(5000, 5001)], {"web"}, {"app"}, False),
    ({6}, [(9000, 9000)], {"admin"}, {"app"}, True),
    ({6}, [(8443, 8443)], {"app"}, {"admin"}, False),
    ({6, 17}, [(2379, 2380)], {"web"}, {"web"}, True),
    ({47}, [(0, 65535)], {"app"}, {"web"}, False),  # no `ports`: any (rules/README.md)
]

ADDRESSES = [
    "10.1.0.1", "10.1.0.3", "10.1.0.10", "10.1.0.12",  # web, app
    "192.168.5.5",  # admin: outside the subnet, in scope as a group member
    "10.1.0.50", "10.1.0.51",  # in the subnet, in no group
    "8.8.8.8", "10.1.1.1", "2001:db8::1",  # outside scope
]  # fmt: skip
PORTS = [
    22,
    53,
    443,
    442,
    444,
    5000,
    5001,
    8443,
    9000,
    7999,
    8000,
    8010,
    8011,
    2379,
    2380,
    2381,
    40000,
]


def in_group(ip: str, names: set[str]) -> bool:
    return any(ip in GROUPS[g] for g in names)


def known(ip: str) -> bool:
    return in_group(ip, set(GROUPS))


def in_scope(ip: str) -> bool:
    a = ipaddress.ip_address(ip)
    return (a.version == 4 and a in SUBNET) or known(ip)


def port_in(port: int | None, ranges: list[tuple[int, int]]) -> bool:
    """A protocol without ports (GRE: port NULL) counts as port 0 (matches.sql), so a rule
    of it with `ports: any` (rules/README.md: the default outside tcp/udp/sctp) admits it."""
    p = 0 if port is None else port
    return any(lo <= p <= hi for lo, hi in ranges)


def admits(rule: tuple[Any, ...], proto: int, init: str, resp: str, port: int) -> bool:
    """rules/README.md: protocol one of the rule's, initiator in from, responder in to,
    responder port in ports; or the reverse, for bidirectional rules."""
    protos, ports, frm, to, bidir = rule
    if proto not in protos or not port_in(port, ports):
        return False
    fwd = in_group(init, frm) and in_group(resp, to)
    rev = bidir and in_group(init, to) and in_group(resp, frm)
    return fwd or rev


def admitted_by(rule: tuple[Any, ...], f: dict[str, Any], capture_tagged: bool) -> bool:
    native = f["vlan_id"] is None and capture_tagged
    if native or (f["vlan_id"] is not None and f["vlan_id"] not in SCOPE_VLANS):
        return False  # off-VLAN traffic is always a finding
    p, s, d = f["protocol"], f["src_ip"], f["dst_ip"]
    if admits(rule, p, s, d, f["dst_port"]):
        return True
    # an uncertain initiator is also tried the other way round, on the initiator's port
    uncertain = f["direction"] not in ("syn", "exporter")
    return uncertain and admits(rule, p, d, s, f["src_port"])


def matched(f: dict[str, Any], capture_tagged: bool) -> bool:
    return any(admitted_by(r, f, capture_tagged) for r in RULES)


def reason(key: tuple[Any, ...], native: bool) -> str:
    """ARCHITECTURE.md "Reason precedence", one reason per finding, first that applies."""
    vlan, src, dst, proto, port = key
    if native or (vlan is not None and vlan not in SCOPE_VLANS):
        return "off-vlan"
    if not in_scope(src) or not in_scope(dst):
        return "out-of-scope-address"
    if not known(src):
        return "unknown-source"
    if not known(dst):
        return "unknown-destination"
    if any(p == proto and port_in(port, ports) and in_group(src, to) and in_group(dst, frm)
           for protos, ports, frm, to, _ in RULES for p in protos):  # fmt: skip
        return "reverse-direction"
    pair = [r for r in RULES if in_group(src, r[2]) and in_group(dst, r[3])]
    other_protocol = any(proto not in r[0] and port_in(port, r[1]) for r in pair)
    if other_protocol or (pair and not any(proto in r[0] for r in pair)):
        return "protocol-not-approved"
    return "port-not-approved"


#: the matrix's service ports: every port of a TCP/UDP rule (the audit's service_ports)
SERVICE = {p for protos, ports, *_ in RULES if protos & {6, 17}
           for lo, hi in ports for p in range(lo, hi + 1)}  # fmt: skip


def certain(r: dict[str, Any]) -> bool:
    """ARCHITECTURE.md "Uncertain initiators": the flow builder saw the initiator (syn,
    exporter); or TCP/UDP/SCTP from an ephemeral port (>= 1024, no service port) to a
    well-known (< 1024) or service port; or ICMP from the sender of a request type (echo,
    timestamp, information, address mask; ICMPv6 echo)."""
    if r["direction"] in ("syn", "exporter"):
        return True
    sp, dp = r["src_port"], r["dst_port"]
    if r["protocol"] in (6, 17, 132) and sp is not None and dp is not None:
        return sp >= 1024 and sp not in SERVICE and (dp < 1024 or dp in SERVICE)
    if r["protocol"] == 1:
        return sp in (8, 13, 15, 17)
    return r["protocol"] == 58 and sp == 128


def nearest(key: tuple[Any, ...]) -> str | None:
    """ARCHITECTURE.md "Nearest rule, honestly": a rule is a candidate only when both hosts
    are in scope, it shares the initiator's or the responder's group in one orientation and
    differs there in at most two of (source, destination, protocol, port) — the swapped
    orientation counts one more, the port counts only for TCP/UDP/SCTP. Among candidates the
    least weighted distance wins (a host outside the rule's group 4, initiator and responder
    swapped 1, another protocol 1, a port outside the rule's ports 2), ties by distance to
    the rule's ports, then rule id. No candidate: no nearest rule."""
    _, src, dst, proto, port = key
    if not (in_scope(src) and in_scope(dst)):
        return None
    port = port or 0  # no port (GRE) is measured as port 0
    ported = proto in (6, 17, 132)
    best = []
    for rid, (protos, ports, frm, to, _) in zip(RULE_IDS, RULES, strict=True):
        fs, fd = in_group(src, frm), in_group(dst, to)
        rs, rd = in_group(src, to), in_group(dst, frm)
        hosts = min(4 * (not fs) + 4 * (not fd), 1 + 4 * (not rs) + 4 * (not rd))
        for p in protos:
            for lo, hi in ports:
                inside = lo <= port <= hi
                other = (p != proto) + (ported and not inside)
                forward = (fs or fd) and (not fs) + (not fd) + other <= 2
                swapped = (rs or rd) and 1 + (not rs) + (not rd) + other <= 2
                if not (forward or swapped):
                    continue
                score = hosts + (p != proto) + 2 * (not inside)
                best.append((score, 0 if inside else min(abs(port - lo), abs(port - hi)), rid))
    return min(best)[2] if best else None


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    p: Path = tmp_path_factory.mktemp("props") / "props.yaml"
    p.write_text(MATRIX)
    return load_matrix(p)


@st.composite
def flow_rows(draw: st.DrawFn) -> dict[str, Any]:
    # group members twice as often: most findings then get past the address checks
    pool = st.sampled_from([*ADDRESSES, *ADDRESSES[:5], "10.1.0.50"])
    src = draw(pool)
    dst = draw(pool.filter(lambda a: a != src))
    proto = draw(st.sampled_from([6, 17, 1, 47]))
    direction = draw(st.sampled_from(["syn", "service_port", "first_packet"]))
    if proto == 1:
        return {"src": src, "dst": dst, "dport": 0, "proto": 1, "sport": 8, "direction": direction}
    if proto == 47:  # GRE: no ports at all
        return {"src": src, "dst": dst, "dport": None, "proto": 47, "sport": None,
                "direction": direction}  # fmt: skip
    return {
        "src": src,
        "dst": dst,
        "dport": draw(st.sampled_from(PORTS)),
        "proto": proto,
        "sport": draw(st.sampled_from([40000, *PORTS])),
        "direction": direction,
    }


@st.composite
def near_rule_rows(draw: st.DrawFn) -> dict[str, Any]:
    """A flow a rule admits, or the same with one thing changed (reversed, protocol, port,
    one end)."""
    protos, ports, frm, to, _ = draw(st.sampled_from(RULES))
    init = draw(st.sampled_from(sorted(set().union(*(GROUPS[g] for g in frm)))))
    resp = draw(st.sampled_from(sorted(set().union(*(GROUPS[g] for g in to)) - {init})))
    lo, hi = draw(st.sampled_from(ports))
    port = draw(st.sampled_from(sorted({lo, hi})))
    proto = draw(st.sampled_from(sorted(protos)))
    changes = ["none", "swap", "protocol", "below", "above", "stranger", "outsider", "member"]
    change = draw(st.sampled_from(changes))
    if change in ("stranger", "outsider", "member"):  # one end: in the subnet but in no
        # group, outside the scope, or a host of another (or the same) group
        other = {"stranger": "10.1.0.50", "outsider": "8.8.8.8"}.get(change)
        other = other or draw(st.sampled_from(sorted(set().union(*GROUPS.values()))))
        init, resp = draw(st.sampled_from([(other, resp), (init, other)]))
        if init == resp:
            init = "10.1.0.51"
    elif change == "swap":
        init, resp = resp, init
    elif change == "protocol":
        proto = {6: 17, 17: 6, 47: 50}[proto]  # tcp <-> udp, gre -> esp
    elif change == "below":
        port = lo - 1
    elif change == "above":
        port = hi + 1
    direction = draw(st.sampled_from(["syn", "syn", "first_packet"]))
    sport = draw(st.sampled_from([40000, port]))
    if draw(st.integers(0, 5)) == 0:  # seen from the responder's side, mid-stream
        init, resp, port, sport, direction = resp, init, 40000, port, "first_packet"
    if proto in (47, 50):  # GRE, ESP: no ports at all
        port = sport = None
    return {"src": init, "dst": resp, "dport": port, "proto": proto, "sport": sport,
            "direction": direction}  # fmt: skip


FLOWS = st.lists(
    st.tuples(
        st.one_of(flow_rows(), near_rule_rows()),
        st.sampled_from([111, 111, 111, 111, 112, None]),
    ),
    min_size=1,
    max_size=8,
)


def rows_of(drawn: list[tuple[dict[str, Any], int | None]]) -> list[dict[str, Any]]:
    rows = []
    for i, (f, vlan) in enumerate(drawn):
        args = {k: v for k, v in f.items() if k not in ("src", "dst", "dport")}
        rows.append(flow(f["src"], f["dst"], f["dport"], vlan=vlan, t=float(i), **args))
    return rows


# half the profile's examples (25 in CI, the mutation runs' count, which kills every
# non-equivalent SQL mutant; 1000 under `thorough`), besides the examples below
@settings(max_examples=max(25, settings.default.max_examples // 2))
@given(drawn=FLOWS)
# two reasons at once: an outside address on a foreign VLAN is off-vlan first
@example(drawn=[({"src": "10.1.0.1", "dst": "8.8.8.8", "dport": 53, "proto": 17,
                  "sport": 40000, "direction": "syn"}, 112)])  # fmt: skip
# untagged beside tagged traffic: native VLAN, off-vlan although rule and hosts match
@example(drawn=[({"src": "10.1.0.1", "dst": "10.1.0.10", "dport": 443, "proto": 6,
                  "sport": 40000, "direction": "syn"}, None),
                ({"src": "10.1.0.1", "dst": "10.1.0.10", "dport": 443, "proto": 6,
                  "sport": 40001, "direction": "syn"}, 111)])  # fmt: skip
# an unknown source on a reversed port: unknown-source comes before reverse-direction
@example(drawn=[({"src": "10.1.0.50", "dst": "10.1.0.1", "dport": 443, "proto": 6,
                  "sport": 40000, "direction": "syn"}, 111)])  # fmt: skip
# a known host that is no rule's responder, to a rule's initiator on its port: not reversed
@example(drawn=[({"src": "192.168.5.5", "dst": "10.1.0.1", "dport": 443, "proto": 6,
                  "sport": 40000, "direction": "syn"}, 111)])  # fmt: skip
# the pair has a udp rule, and a tcp rule holds this port: protocol-not-approved
@example(drawn=[({"src": "10.1.0.1", "dst": "10.1.0.10", "dport": 8010, "proto": 17,
                  "sport": 40000, "direction": "syn"}, 111)])  # fmt: skip
# another protocol's rule holds the port, but for other hosts: port-not-approved
@example(drawn=[({"src": "192.168.5.5", "dst": "10.1.0.10", "dport": 5000, "proto": 6,
                  "sport": 40000, "direction": "syn"}, 111),
                ({"src": "10.1.0.12", "dst": "10.1.0.10", "dport": 5000, "proto": 6,
                  "sport": 40000, "direction": "syn"}, 111)])  # fmt: skip
# mid-stream flows seen from the responder: matched the other way round only when the
# rule admits that (a bidirectional rule's reverse needs both of its groups)
@example(drawn=[({"src": "10.1.0.10", "dst": "10.1.0.1", "dport": 40000, "proto": 6,
                  "sport": 443, "direction": "first_packet"}, 111),
                ({"src": "192.168.5.5", "dst": "10.1.0.1", "dport": 40000, "proto": 6,
                  "sport": 9000, "direction": "first_packet"}, 111),
                ({"src": "10.1.0.10", "dst": "192.168.5.5", "dport": 40000, "proto": 6,
                  "sport": 9000, "direction": "first_packet"}, 111),
                ({"src": "192.168.5.5", "dst": "10.1.0.10", "dport": 40000, "proto": 6,
                  "sport": 9000, "direction": "first_packet"}, 111)])  # fmt: skip
# a bidirectional rule's responder initiates: matched (either side may initiate)
@example(drawn=[({"src": "10.1.0.10", "dst": "192.168.5.5", "dport": 9000, "proto": 6,
                  "sport": 40000, "direction": "syn"}, 111)])  # fmt: skip
# the pair's rules are udp only, the initiator's tcp rule is for other hosts
@example(drawn=[({"src": "10.1.0.10", "dst": "10.1.0.1", "dport": 7999, "proto": 6,
                  "sport": 40000, "direction": "syn"}, 111)])  # fmt: skip
# the pair has rules, none of this protocol (the GRE rule's any-port would make app -> web
# protocol-not-approved whatever): app -> admin udp, app has a udp rule to other hosts;
# admin -> web udp, web is another host's udp responder
@example(drawn=[({"src": "10.1.0.10", "dst": "192.168.5.5", "dport": 7999, "proto": 17,
                  "sport": 40000, "direction": "syn"}, 111),
                ({"src": "192.168.5.5", "dst": "10.1.0.1", "dport": 7999, "proto": 17,
                  "sport": 40000, "direction": "syn"}, 111)])  # fmt: skip
# an unknown host and a rule's initiator, or its responder, on that rule's protocol and
# port: the rule shares one group with the finding, the other way round (its nearest rule)
@example(drawn=[({"src": "10.1.0.50", "dst": "10.1.0.10", "dport": 53, "proto": 17,
                  "sport": 40000, "direction": "syn"}, 111),
                ({"src": "10.1.0.1", "dst": "10.1.0.50", "dport": 53, "proto": 17,
                  "sport": 40000, "direction": "syn"}, 111)])  # fmt: skip
# both ends unknown: unknown-source comes before unknown-destination
@example(drawn=[({"src": "10.1.0.50", "dst": "10.1.0.51", "dport": 443, "proto": 6,
                  "sport": 40000, "direction": "syn"}, 111)])  # fmt: skip
# reversed and on another protocol's port at once: reverse-direction first
@example(drawn=[({"src": "10.1.0.10", "dst": "10.1.0.1", "dport": 443, "proto": 6,
                  "sport": 40000, "direction": "syn"}, 111)])  # fmt: skip
# udp seen mid-stream from a tcp rule's responder, on the rule's port: the other way round
# it would match but for the protocol (matches.sql's reversed branch compares it too)
@example(drawn=[({"src": "10.1.0.10", "dst": "10.1.0.1", "dport": 40000, "proto": 17,
                  "sport": 443, "direction": "first_packet"}, 111)])  # fmt: skip
# a rule of a protocol without ports (GRE, no `ports`: any): its flows match, the other way
# round too when the initiator is uncertain; a certain reversed one is reverse-direction
@example(drawn=[({"src": "10.1.0.10", "dst": "10.1.0.1", "dport": None, "proto": 47,
                  "sport": None, "direction": "first_packet"}, 111),
                ({"src": "10.1.0.2", "dst": "10.1.0.11", "dport": None, "proto": 47,
                  "sport": None, "direction": "first_packet"}, 111),
                ({"src": "10.1.0.3", "dst": "10.1.0.12", "dport": None, "proto": 47,
                  "sport": None, "direction": "syn"}, 111),
                ({"src": "10.1.0.10", "dst": "10.1.0.3", "dport": None, "proto": 50,
                  "sport": None, "direction": "first_packet"}, 111)])  # fmt: skip
# findings that differ in one part of their key only (port, protocol, VLAN, source or
# destination cell) with the same reason and nearest rule: each is one finding, worded once
@example(drawn=[({"src": "10.1.0.1", "dst": "10.1.0.10", "dport": 7999, "proto": 6,
                  "sport": 40000, "direction": "syn"}, 111),
                ({"src": "10.1.0.1", "dst": "10.1.0.10", "dport": 8011, "proto": 6,
                  "sport": 40000, "direction": "syn"}, 111),
                ({"src": "10.1.0.1", "dst": "10.1.0.3", "dport": 2381, "proto": 6,
                  "sport": 40000, "direction": "syn"}, 111),
                ({"src": "10.1.0.1", "dst": "10.1.0.3", "dport": 2381, "proto": 17,
                  "sport": 40000, "direction": "syn"}, 111),
                ({"src": "10.1.0.1", "dst": "10.1.0.10", "dport": 40000, "proto": 6,
                  "sport": 40001, "direction": "syn"}, 112),
                ({"src": "10.1.0.1", "dst": "10.1.0.10", "dport": 40000, "proto": 6,
                  "sport": 40001, "direction": "syn"}, None),
                ({"src": "8.8.8.8", "dst": "10.1.0.10", "dport": 443, "proto": 6,
                  "sport": 40000, "direction": "syn"}, 111),
                ({"src": "10.1.1.1", "dst": "10.1.0.10", "dport": 443, "proto": 6,
                  "sport": 40000, "direction": "syn"}, 111),
                ({"src": "10.1.0.10", "dst": "8.8.8.8", "dport": 443, "proto": 6,
                  "sport": 40000, "direction": "syn"}, 111),
                ({"src": "10.1.0.10", "dst": "10.1.1.1", "dport": 443, "proto": 6,
                  "sport": 40000, "direction": "syn"}, 111)])  # fmt: skip
def test_findings_and_reasons_follow_the_documented_precedence(
    matrix: Matrix, drawn: list[tuple[dict[str, Any], int | None]]
) -> None:
    rows = rows_of(drawn)
    tagged = any(r["vlan_id"] is not None for r in rows)
    expected: dict[tuple[Any, ...], int] = defaultdict(int)
    uncertain: dict[tuple[Any, ...], bool] = defaultdict(bool)
    for r in rows:
        if not matched(r, tagged):
            key = (r["vlan_id"], r["src_ip"], r["dst_ip"], r["protocol"], r["dst_port"])
            expected[key] += 1
            uncertain[key] |= not certain(r)

    result = run_audit(matrix, make_flows(rows))
    got = {
        (v["vlan_id"], v["src_ip"], v["dst_ip"], v["protocol"], v["dst_port"]): v
        for v in result.violations.to_pylist()
    }
    assert set(got) == set(expected)
    assert result.violations.num_rows == len(got)  # one row per finding key
    for key, v in got.items():
        native = key[0] is None and tagged
        assert v["reason"] == reason(key, native), key
        event(v["reason"])  # --hypothesis-show-statistics: how often each reason is drawn
        assert v["native_vlan"] is native
        assert v["nearest_rule"] == nearest(key), key
        assert v["flows"] == expected[key]
        assert v["direction_uncertain"] is uncertain[key]
    assert result.flows == len(rows)

    # unused and partly used rules, per (rule, protocol): how many flows the rule admits
    # (each flow once per rule), and how many flows its hosts exchanged at all (either way,
    # any port or protocol): "unused" is proven only when they talked
    unused = {(u["rule_id"], u["protocol"]): u for u in result.unused_rules.to_pylist()}
    for rid, rule in zip(RULE_IDS, RULES, strict=True):
        protos, _, frm, to, _ = rule
        between = sum(
            (in_group(r["src_ip"], frm) and in_group(r["dst_ip"], to))
            or (in_group(r["src_ip"], to) and in_group(r["dst_ip"], frm))
            for r in rows
        )
        for p in protos:
            n = sum(r["protocol"] == p and admitted_by(rule, r, tagged) for r in rows)
            u = unused.get((rid, p))
            if n == 0:
                assert u is not None and u["status"] == "unused", (rid, p)
            elif u is not None:
                assert u["status"] == "partly-used", (rid, p)
            if u is not None:
                assert u["flows"] == n, (rid, p)
                assert u["observable"] is (between > 0), (rid, p)
                if between:
                    assert f"{between:,} flows between these hosts" in u["evidence"]
