"""The audit's Python decisions around the SQL (``flowaudit/audit/run.py``), each against a
plain-Python statement of the documented rule: host pairs of partly used rules (expanded
only for groups of at most 16 addresses, ARCHITECTURE.md), the evidence, observability,
order and ids of unused rules, what differs, and the result's counts. Written for the
surviving mutants of the mutmut run recorded in tests/MUTATION.md. Each test runs its own
audit (no module-scoped fixture): mutmut runs for a mutant only the tests during which the
mutated function ran."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flowrows import T0, flow, make_flows
from testpaths import ADMIN, MIXED

from flowaudit.audit.run import run_audit
from flowaudit.matrix import load_matrix
from flowaudit.matrix.model import Matrix

PROV = 'provenance: {table: T, row: "1", origin: component}'


def _matrix(tmp_path: Path, groups: dict[str, list[str] | None], rules: list[str]) -> Matrix:
    """A matrix on VLAN 111 and 10.25.233.0/24 with these groups (None: needs
    configuration) and rules (YAML mappings, one per string, without the provenance)."""
    lines = ["name: mini", "scope:", "  vlans: [111]", "  subnets: [10.25.233.0/24]", "groups:"]
    for name, addrs in groups.items():
        if addrs is None:
            lines.append(f"  {name}: {{needs_configuration: true, addresses: []}}")
        else:
            lines.append(f"  {name}: {{addresses: [{', '.join(addrs)}]}}")
    lines.append("rules:")
    for r in rules:
        lines.append(f"  - {{{r}, {PROV}}}")
    p = tmp_path / "mini.yaml"
    p.write_text("\n".join(lines) + "\n")
    return load_matrix(p)


def _hosts(spec: str) -> list[str]:
    """Every address of ``a.b.c.d-a.b.c.e`` or one address, in order."""
    lo, _, hi = spec.partition("-")
    a, b = int(ipaddress.ip_address(lo)), int(ipaddress.ip_address(hi or lo))
    return [str(ipaddress.ip_address(n)) for n in range(a, b + 1)]


def _unused(result: Any) -> dict[tuple[str, int], dict[str, Any]]:
    return {(u["rule_id"], u["protocol"]): u for u in result.unused_rules.to_pylist()}


def _pairs_oracle(
    src: list[str], dst: list[str], used: set[tuple[str, str]], bidirectional: bool
) -> list[list[str]]:
    """The host pairs of a rule that carried no traffic: every (initiator, responder) of
    its groups but a host with itself; for a bidirectional rule an unordered pair, listed
    once, and used when either orientation was."""
    out: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for a in src:
        for b in dst:
            if a == b:
                continue
            if bidirectional:
                key = frozenset((a, b))
                if key in seen or (a, b) in used or (b, a) in used:
                    continue
                seen.add(key)
            elif (a, b) in used:
                continue
            out.append([a, b])
    return out


# ------------------------------------------------------------------ host pairs


A16, B17 = "10.25.233.10-10.25.233.25", "10.25.233.30-10.25.233.46"
S9A, S9B = "10.25.233.50-10.25.233.58", "10.25.233.60-10.25.233.68"
T4, T5, T6 = "10.25.233.4", "10.25.233.5", "10.25.233.6"


@pytest.fixture
def pair_audit(tmp_path: Path) -> tuple[Matrix, Any]:
    m = _matrix(
        tmp_path,
        {
            "a16": [A16],
            "b17": [B17],
            "split18": [S9A, S9B],
            "two": [T4, T5],
            "three": [f"{T4}-{T6}"],
        },
        [
            "id: r16, from: a16, to: two, protocol: tcp, ports: 443, purpose: p",
            "id: r17, from: b17, to: two, protocol: tcp, ports: 443, purpose: p",
            "id: r18, from: split18, to: two, protocol: tcp, ports: 443, purpose: p",
            "id: uni, from: three, to: three, protocol: tcp, ports: 2379, purpose: p",
            "id: bi, from: three, to: three, protocol: tcp, ports: 7000, purpose: p,"
            " bidirectional: true",
        ],
    )
    rows = [
        flow("10.25.233.10", T4, 443, sport=40001),
        flow("10.25.233.30", T4, 443, sport=40002),
        flow("10.25.233.50", T4, 443, sport=40003),
        flow(T4, T5, 2379, sport=40004),
        flow(T6, T4, 7000, sport=40005),
    ]
    return m, run_audit(m, make_flows(rows))


def test_pairs_are_expanded_for_a_group_of_exactly_16_addresses(pair_audit) -> None:
    _, r = pair_audit
    u = _unused(r)[("r16", 6)]
    want = _pairs_oracle(_hosts(A16), [T4, T5], {("10.25.233.10", T4)}, False)
    assert len(want) == 16 * 2 - 1
    assert (u["status"], u["unused_ports"], u["unused_pairs"]) == ("partly-used", [], want)


def test_pairs_are_not_expanded_beyond_16_addresses(pair_audit) -> None:
    """17 addresses in one range, or 18 in two ranges of 9: no pairs, and port 443 was
    used, so the rules are not listed at all."""
    m, r = pair_audit
    assert len(_hosts(B17)) == 17 and len(_hosts(S9A)) + len(_hosts(S9B)) == 18
    u = _unused(r)
    assert ("r17", 6) not in u and ("r18", 6) not in u
    listed = {k[0] for k in u}
    assert listed == {"r16", "uni", "bi"}
    assert {x.id for x in m.rules} == listed | {"r17", "r18"}


def test_pairs_of_one_group_to_itself(pair_audit) -> None:
    """A rule from a group to itself: never a host with itself; a bidirectional one lists
    each unordered pair once and counts a flow either way as its pair's use."""
    _, r = pair_audit
    u = _unused(r)
    three = [T4, T5, T6]
    uni = _pairs_oracle(three, three, {(T4, T5)}, False)
    bi = _pairs_oracle(three, three, {(T6, T4)}, True)
    assert uni == [[T4, T6], [T5, T4], [T5, T6], [T6, T4], [T6, T5]]
    assert bi == [[T4, T5], [T5, T6]]
    assert u[("uni", 6)]["unused_pairs"] == uni
    assert u[("bi", 6)]["unused_pairs"] == bi
    assert (u[("uni", 6)]["flows"], u[("bi", 6)]["flows"]) == (1, 1)
    assert u[("uni", 6)]["status"] == u[("bi", 6)]["status"] == "partly-used"


# ------------------------------------------------------------- unused rules' verdicts


def _evidence(window: str, flows: int, note: str, condition: str | None = None) -> str:
    """The evidence of an unused-rule verdict as DESIGN.md lists it: the window observed,
    how many flows were audited, and whether the rule's traffic was observable at all."""
    text = f"window {window}; {flows:,} flows audited; {note}"
    return text + (
        f"; conditional rule ({condition}): confirm before removing" if condition else ""
    )


NEVER_SEEN = (
    "not observable: no traffic at all between these hosts was captured; "
    "the capture point may not see it"
)


@pytest.fixture
def verdicts(tmp_path: Path) -> tuple[Matrix, Any, list[dict[str, Any]]]:
    m = _matrix(
        tmp_path,
        {
            "web": [T4],
            "db": [T5],
            "solo": [T6],
            "lone": ["10.25.233.9"],
            "ghost": None,
            "phantom": None,
        },
        [
            # used on 5432 and 5440: partly used, ports 5433-5439 never seen
            "id: db-a, from: web, to: db, protocol: tcp, ports: 5432-5440, purpose: p",
            # never used, but web and db talked (on other ports): observable
            "id: db-b, from: web, to: db, protocol: [udp, tcp], ports: 6000, purpose: p,"
            " condition: if enabled",
            # lone never talked to anyone: unused, not observable
            "id: lone, from: lone, to: db, protocol: tcp, ports: 22, purpose: p",
            # unconfigured groups: not observable, both named
            "id: gone, from: ghost, to: phantom, protocol: udp, ports: 53, purpose: p",
            # tcp used by its only pair on its only port (not listed), udp unused
            "id: full, from: db, to: web, protocol: [tcp, udp], ports: 9000, purpose: p",
            # solo and db talked once, on another port: unused, observable
            "id: solo, from: solo, to: db, protocol: tcp, ports: 1234, purpose: p",
            # ICMP used: its "ports" (type/code) are never reported unused
            "id: ping, from: web, to: db, protocol: icmp, purpose: p",
        ],
    )
    rows = [
        flow(T4, T5, 5432, sport=40001, t=10),
        flow(T4, T5, 5432, sport=40002, t=20),
        flow(T4, T5, 5432, sport=40003, t=30, dur=5),
        flow(T4, T5, 5440, sport=40008, t=15),
        flow(T5, T4, 9000, sport=40004, t=12),
        flow(T5, T4, 9000, sport=40005, t=13),
        flow(T4, "10.25.233.77", 80, sport=40006, t=14),  # another host: not between the rules'
        flow(T6, T5, 80, sport=40007, t=16),
        flow(T4, T5, 0, proto=1, sport=8, t=17),
    ]
    r = run_audit(m, make_flows(rows))
    return m, r, rows


def test_unused_rules_evidence_and_observability(verdicts) -> None:
    m, r, rows = verdicts
    u = _unused(r)
    window = "2026-11-20T08:00:10Z .. 2026-11-20T08:00:35Z"
    # flows between web and db on any port and protocol, either orientation
    between = sum(1 for f in rows if {f["src_ip"], f["dst_ip"]} == {T4, T5})
    assert between == 7
    n = len(rows)
    a = u[("db-a", 6)]
    assert (a["status"], a["flows"], a["observable"]) == ("partly-used", 4, True)
    assert a["unused_ports"] == [[5433, 5439]] and a["unused_pairs"] == []
    assert a["evidence"] == _evidence(
        window, n, f"{between} flows between these hosts on other ports/protocols"
    )
    for proto in (6, 17):
        b = u[("db-b", proto)]
        assert (b["status"], b["flows"], b["observable"]) == ("unused", 0, True)
        assert (b["ports"], b["unused_ports"], b["unused_pairs"]) == ([[6000, 6000]],) * 2 + ([],)
        assert b["condition"] == "if enabled"
        assert b["evidence"] == _evidence(
            window, n, f"{between} flows between these hosts on other ports/protocols", "if enabled"
        )
    lone = u[("lone", 6)]
    assert (lone["status"], lone["observable"]) == ("unused", False)
    assert lone["evidence"] == _evidence(window, n, NEVER_SEEN)
    gone = u[("gone", 17)]
    assert (gone["status"], gone["observable"]) == ("unused", False)
    assert gone["evidence"] == _evidence(
        window,
        n,
        "not observable: group ghost, phantom has no addresses "
        "(supply them with --group or a site overlay)",
    )
    full = u[("full", 17)]
    assert (full["status"], full["flows"], full["observable"]) == ("unused", 0, True)
    assert ("full", 6) not in u and ("ping", 1) not in u
    solo = u[("solo", 6)]
    assert (solo["status"], solo["observable"]) == ("unused", True)
    assert solo["evidence"] == _evidence(
        window, n, "1 flows between these hosts on other ports/protocols"
    )
    for x in u.values():
        rule = m.rule(x["rule_id"])
        assert (x["origin"], x["purpose"], x["provenance"]) == (
            rule.origin,
            "p",
            str(rule.provenance),
        )
        assert x["origin"] == "component"


def test_unused_rules_order_ids_and_counts(verdicts) -> None:
    """Unused rules first, then partly used, each by rule id then protocol; ids are the
    sha256 prefix of (rule id, protocol) only (ARCHITECTURE.md, finding ids)."""
    _, r, _ = verdicts
    got = r.unused_rules.to_pylist()
    keys = [(x["status"], x["rule_id"], x["protocol"]) for x in got]
    assert keys == [
        ("unused", "db-b", 6),
        ("unused", "db-b", 17),
        ("unused", "full", 17),
        ("unused", "gone", 17),
        ("unused", "lone", 6),
        ("unused", "solo", 6),
        ("partly-used", "db-a", 6),
    ]
    for x in got:
        key = f"flowaudit-rule-v1|{x['rule_id']}|{x['protocol']}".encode()
        assert x["finding_id"] == hashlib.sha256(key).hexdigest()[:16]
    assert (r.stats["unused"], r.stats["partly_used"], r.stats["overbroad"]) == (6, 1, 1)


def test_unused_rules_of_an_empty_window(tmp_path: Path) -> None:
    m = _matrix(
        tmp_path,
        {"web": [T4], "db": [T5]},
        ["id: a, from: web, to: db, protocol: tcp, ports: 80-81, purpose: p"],
    )
    (u,) = run_audit(m, make_flows([])).unused_rules.to_pylist()
    assert (u["status"], u["flows"], u["unused_ports"], u["observable"]) == (
        "unused",
        0,
        [[80, 81]],
        False,
    )
    assert u["evidence"] == _evidence("no traffic .. no traffic", 0, NEVER_SEEN)


# ------------------------------------------------------------------ what differs
LONE, U7, U8 = "10.25.233.9", "10.25.233.7", "10.25.233.8"  # U7, U8: in scope, no group


@pytest.fixture
def differs(tmp_path: Path) -> dict[tuple[Any, ...], Any]:
    m = _matrix(
        tmp_path,
        {
            "web": [T4],
            "db": [T5],
            "other": [T6],
            "lone": [LONE],
            "ghost": None,
            "phantom": None,
        },
        [
            "id: app, from: [ghost, phantom, web], to: db, protocol: tcp, ports: 5432, purpose: p",
            "id: multi, from: web, to: db, protocol: [tcp, udp], ports: 7000-7001, purpose: p",
            "id: rr, from: [lone, web], to: [lone, other], protocol: tcp, ports: 8443, purpose: p",
        ],
    )
    rows = [
        flow(LONE, T5, 5432, sport=40001),  # source outside the rule's groups
        flow(T4, U7, 5432, sport=40002),  # destination outside
        flow(T4, T5, 7000, proto=132, sport=40003),  # sctp: another protocol
        flow(LONE, T4, 8443, sport=40004),  # rr admits web -> lone: reversed
        flow(T4, U8, 8443, sport=40005),  # destination outside two groups
        flow(T4, LONE, 0, proto=1, sport=8, state="SF", direction="first_packet"),
        flow(T4, T5, 7002, sport=40006, vlan=112),  # off-VLAN and a port outside 7000-7001
        flow(T4, T5, 7003, sport=40007, vlan=None),  # untagged in a tagged capture
    ]
    r = run_audit(m, make_flows(rows))
    return {(v["src_ip"], v["dst_ip"], v["dst_port"]): v for v in r.violations.to_pylist()}


def test_what_differs_names_the_groups_and_the_unconfigured_ones(differs) -> None:
    """'src/dst IP not in GROUPS', with the groups of the nearest rule that have no
    addresses named once, in the rule's order (DESIGN.md: the nearest rule with what
    differs; ARCHITECTURE.md: unconfigured groups are named)."""
    v = differs
    src = v[(LONE, T5, 5432)]
    assert src["nearest_rule"] == "app"
    assert src["differences"] == (
        f"src {LONE} not in ghost/phantom/web (ghost, phantom has no addresses: supply --group)"
    )
    dst = v[(T4, U7, 5432)]
    assert (dst["nearest_rule"], dst["differences"]) == ("app", f"dst {U7} not in db")
    sctp = v[(T4, T5, 7000)]
    assert (sctp["nearest_rule"], sctp["differences"]) == ("multi", "protocol sctp not tcp/udp")
    two = v[(T4, U8, 8443)]
    assert (two["nearest_rule"], two["differences"]) == ("rr", f"dst {U8} not in lone/other")


def test_what_differs_when_the_rule_admits_the_other_orientation(differs) -> None:
    """lone -> web: the initiator is in the rule's `from` and also in its `to`, the
    responder only in `from`: the rule admits web -> lone, so initiator and responder are
    reversed (not "dst not in")."""
    v = differs[(LONE, T4, 8443)]
    assert (v["reason"], v["nearest_rule"]) == ("reverse-direction", "rr")
    assert v["differences"] == "initiator and responder reversed: rule allows lone/web → lone/other"


def test_what_differs_for_icmp_is_never_a_port(differs) -> None:
    """ICMP "ports" are type and code: the protocol differs, no dport part."""
    v = differs[(T4, LONE, 0)]
    assert (v["nearest_rule"], v["differences"]) == ("rr", "protocol icmp not tcp")


def test_what_differs_joins_the_vlan_and_the_rule_parts(differs) -> None:
    tagged = differs[(T4, T5, 7002)]
    assert (tagged["reason"], tagged["nearest_rule"]) == ("off-vlan", "multi")
    assert tagged["differences"] == "vlan 112 not in scope [111]; dport 7002 not in {7000-7001}"
    native = differs[(T4, T5, 7003)]
    assert (native["reason"], native["vlan_id"], native["nearest_rule"]) == (
        "off-vlan",
        None,
        "multi",
    )
    assert native["differences"] == (
        "untagged (native VLAN) in a capture of tagged traffic; scope [111]; "
        "dport 7003 not in {7000-7001}"
    )


P1, P2 = "10.99.0.1", "10.99.0.2"  # RFC 1918, outside the scope subnets
ISO1, ISO2 = "10.25.233.20", "10.25.233.21"


@pytest.fixture
def no_rule(tmp_path: Path) -> dict[tuple[Any, ...], Any]:
    m = _matrix(
        tmp_path,
        {
            "web": [T4],
            "db": [T5],
            "iso1": [ISO1],
            "iso2": [ISO2],
            "ghost": None,
            "phantom": None,
        },
        [
            "id: gone, from: ghost, to: phantom, protocol: udp, ports: 53, purpose: p",
            "id: adm0, from: ghost, to: db, protocol: tcp, ports: 3306, purpose: p",
            "id: adm2, from: [ghost, phantom], to: db, protocol: tcp, ports: 22, purpose: p",
            "id: adm, from: ghost, to: db, protocol: tcp, ports: 22, purpose: p",
            "id: zero, from: phantom, to: db, protocol: tcp, ports: 0, purpose: p",
            "id: push, from: db, to: phantom, protocol: tcp, ports: 9999, purpose: p",
            "id: push2, from: db, to: ghost, protocol: tcp, ports: 9999, purpose: p",
            "id: web-db, from: web, to: db, protocol: tcp, ports: 443, purpose: p",
        ],
    )
    rows = [
        flow(P1, T5, 22, sport=40001),
        flow(P1, T5, 23, sport=40002),
        flow(P1, T5, 22, proto=17, sport=40003),
        flow(P1, T5, 0, sport=40004),
        flow(T5, P2, 9999, sport=40005),
        flow("35.201.4.9", "239.1.1.1", 5000, proto=17, sport=40006),
        flow(ISO1, ISO2, 8080, sport=40007),
        flow(ISO1, ISO2, None, proto=47, sport=None, direction="first_packet"),
    ]
    r = run_audit(m, make_flows(rows))
    return {
        (v["src_ip"], v["dst_ip"], v["protocol"], v["dst_port"]): v
        for v in r.violations.to_pylist()
    }


def test_what_differs_without_a_near_rule(no_rule) -> None:
    """No candidate rule (ARCHITECTURE.md, "Nearest rule, honestly"): the address class of
    each host outside every group, initiator first, else "no rule between SIDES is within
    two differences of PROTO/PORT"; then the unconfigured groups of the rules that would
    admit the flow from the other end (protocol and port those of the rule), each once."""
    private = "{} is outside the scope subnets"
    supply = "{} has no addresses: supply --group"
    want = {
        # adm2 then adm admit it from ghost/phantom: ghost, phantom (ghost once)
        (P1, T5, 6, 22): [private.format(P1), supply.format("ghost, phantom")],
        (P1, T5, 6, 23): [private.format(P1)],  # no rule's port
        (P1, T5, 17, 22): [private.format(P1)],  # no rule's protocol
        (P1, T5, 6, 0): [private.format(P1), supply.format("phantom")],  # port 0 is a port
        # db initiates: push and push2 would admit it towards phantom, ghost
        (T5, P2, 6, 9999): [private.format(P2), supply.format("phantom, ghost")],
        ("35.201.4.9", "239.1.1.1", 17, 5000): [
            "35.201.4.9 is an internet address",
            "239.1.1.1 is a multicast address",
        ],
        (ISO1, ISO2, 6, 8080): [
            "no rule between iso1 and iso2 is within two differences of tcp/8080"
        ],
        (ISO1, ISO2, 47, None): ["no rule between iso1 and iso2 is within two differences of 47/-"],
    }
    assert {k: (v["nearest_rule"], v["differences"]) for k, v in no_rule.items()} == {
        k: (None, "; ".join(parts)) for k, parts in want.items()
    }


# ------------------------------------------------------------------ the result


def test_result_window_counts_and_limits(tmp_path: Path) -> None:
    """The result's window, counts and limits of sight, against a plain statement: a flow
    is in [since, until) when it ends at or after ``since`` and starts before ``until``;
    WireGuard is UDP to or from 51820/51871, ESP is protocol 50 (encrypted.sql); LAN
    control plane (mDNS to ff02::fb) is listed apart, one row per conversation."""
    m = _matrix(tmp_path, {"web": [T4], "db": [T5]}, [
        "id: https, from: web, to: db, protocol: tcp, ports: 443, purpose: p"
    ])  # fmt: skip
    mdns = {"proto": 17, "sport": 5353, "direction": "first_packet"}
    rows = [
        flow(T4, T5, 443, sport=40001, t=0),  # before the window
        flow(T4, T5, 443, sport=40002, t=100),
        flow(T4, T5, 51820, proto=17, sport=40003, t=110, by=(1000, 24)),
        flow(T4, T5, None, proto=50, sport=None, t=120, by=(300, 0), direction="first_packet"),
        flow(T4, T5, 51820, proto=17, sport=40004, t=500),  # after it
        flow("fe80::1", "ff02::fb", 5353, t=130, **mdns),
        flow("fe80::1", "ff02::fb", 5353, t=131, **mdns),
    ]
    since, until = T0 + dt.timedelta(seconds=50), T0 + dt.timedelta(seconds=300)
    inside = [f for f in rows if f["last_seen"] >= since and f["first_seen"] < until]
    assert len(inside) == 5
    captures = [{"name": "x.pcap", "blake3": "0" * 64, "packets": 1, "flows": 7}]
    r = run_audit(m, make_flows(rows), since=since, until=until, captures=captures)
    assert (r.window_start, r.window_end, r.flows) == (since, until, len(inside))
    assert (r.matrix_name, r.rules_digest, r.captures) == ("mini", m.sha256, tuple(captures))
    assert r.sampled is False

    def size(f: dict[str, Any]) -> int:
        return f["src_bytes"] + f["dst_bytes"]

    wg = [f for f in inside if f["protocol"] == 17 and 51820 in (f["src_port"], f["dst_port"])]
    esp = [f for f in inside if f["protocol"] == 50]
    assert r.encrypted == {
        "wireguard_flows": len(wg),
        "wireguard_bytes": sum(map(size, wg)),
        "esp_flows": len(esp),
        "esp_bytes": sum(map(size, esp)),
        "flows": len(inside),
        "bytes": sum(map(size, inside)),
    }
    assert (len(wg), len(esp)) == (1, 1)
    conversations = {(f["src_ip"], f["dst_ip"], f["protocol"], f["dst_port"]) for f in inside}
    assert r.stats["conversations"] == len(conversations) == 4
    assert (r.stats["control_plane"], r.stats["control_plane_flows"]) == (1, 2)
    assert (r.stats["overlay"], r.stats["overlay_flows"], r.stats["overlay_not_approved"]) == (
        0,
        0,
        0,
    )
    assert r.stats["strict"] is False
    # without a window: the flows' own first start and last end
    whole = run_audit(m, make_flows(rows))
    assert (whole.window_start, whole.window_end, whole.flows) == (
        min(f["first_seen"] for f in rows),
        max(f["last_seen"] for f in rows),
        len(rows),
    )
    assert whole.encrypted["wireguard_flows"] == 2


def test_encrypted_traffic_at_the_window_bounds(tmp_path: Path) -> None:
    """The window is [since, until): a WireGuard or ESP flow that ends exactly at ``since``
    is in it, one that starts exactly at ``until`` is not; the limits of sight count the
    same flows as the audit."""
    m = _matrix(tmp_path, {"web": [T4], "db": [T5]}, [
        "id: https, from: web, to: db, protocol: tcp, ports: 443, purpose: p"
    ])  # fmt: skip
    esp = {"proto": 50, "sport": None, "direction": "first_packet"}
    rows = [
        flow(T4, T5, 51871, proto=17, sport=40001, t=49, dur=1, by=(100, 10)),  # ends at since
        flow(T4, T5, None, t=49, dur=1, by=(200, 20), **esp),  # ends at since
        flow(T4, T5, 51871, proto=17, sport=40002, t=300, by=(400, 40)),  # starts at until
        flow(T4, T5, None, t=300, by=(800, 80), **esp),  # starts at until
    ]
    since, until = T0 + dt.timedelta(seconds=50), T0 + dt.timedelta(seconds=300)
    r = run_audit(m, make_flows(rows), since=since, until=until)
    assert r.flows == 2
    assert r.encrypted == {
        "wireguard_flows": 1,
        "wireguard_bytes": 110,
        "esp_flows": 1,
        "esp_bytes": 220,
        "flows": 2,
        "bytes": 330,
    }


def test_sampling_of_one_is_not_sampled(tmp_path: Path) -> None:
    m = _matrix(tmp_path, {"web": [T4], "db": [T5]}, [
        "id: https, from: web, to: db, protocol: tcp, ports: 443, purpose: p"
    ])  # fmt: skip
    one = run_audit(m, make_flows([flow(T4, T5, 443, sampling=1)]))
    two = run_audit(m, make_flows([flow(T4, T5, 443, sampling=1), flow(T4, T5, 80, sampling=2)]))
    assert (one.sampled, two.sampled) == (False, True)


def test_strict_control_plane_violation_says_why_no_rule_applies(tmp_path: Path) -> None:
    """--strict reports LAN control plane as violations (reason ``control-plane``, first in
    the precedence, ARCHITECTURE.md) without a nearest rule: what differs says that it is
    link-scoped and that no port matrix governs it, not an address class."""
    m = _matrix(tmp_path, {"web": [T4], "db": [T5]}, [
        "id: https, from: web, to: db, protocol: tcp, ports: 443, purpose: p"
    ])  # fmt: skip
    rows = [flow("fe80::1", "ff02::fb", 5353, proto=17, sport=5353, direction="first_packet")]
    (v,) = run_audit(m, make_flows(rows), strict=True).violations.to_pylist()
    assert (v["reason"], v["nearest_rule"], v["differences"]) == (
        "control-plane",
        None,
        "LAN control plane (--strict): link-scoped, no port matrix governs it",
    )


# ------------------------------------------------------------ audit_source (captures)


def _truth(pcap: Path) -> list[dict[str, Any]]:
    return [json.loads(s) for s in pcap.with_suffix(".truth.jsonl").read_text().splitlines()]


def test_audit_source_ingests_the_captures_it_is_given(tmp_path: Path) -> None:
    """Captures are ingested into the store given (else a temporary one) and exactly they
    are audited, by default not --strict: flows, violations and control plane as the
    generator's ground truth labels them; each capture listed with its record."""
    from flowaudit.audit.run import audit_source
    from flowaudit.store import FlowStore

    want = _truth(MIXED)
    m = load_matrix(groups=ADMIN)
    store = FlowStore(tmp_path / "store")
    calls: list[tuple[int, int]] = []
    r, records = audit_source(
        m, [MIXED], store=store, progress=lambda done, total: calls.append((done, total))
    )
    # the progress reporter given is told of the capture's bytes
    assert calls and {t for _, t in calls} == {MIXED.stat().st_size}
    # ingested with the matrix's service ports: each flow's initiator decided as the
    # ground truth says (a flow to a service port of the matrix is "service_port")
    import pyarrow.parquet as pq

    flows = [f for p in store.flow_files() for f in pq.read_table(p).to_pylist()]
    cols = ("src_ip", "dst_ip", "protocol", "src_port", "dst_port")
    direction = {(f["vlan_id"], *(f[c] for c in cols)): f["direction"] for f in flows}
    assert direction == {(t["vlan"], *(t[c] for c in cols)): t["direction"] for t in want}
    assert "service_port" in direction.values()
    assert [c.blake3 for c in store.captures()] == [x.blake3 for x in records]
    (rec,) = records
    assert (rec.flows, r.flows) == (len(want), len(want))
    assert r.captures == (
        {
            "name": MIXED.name,
            "blake3": rec.blake3,
            "packets": rec.packets,
            "flows": len(want),
            "source_kind": "pcap",
        },
    )
    labels = Counter(t["label"] for t in want)
    assert r.stats["strict"] is False
    assert r.stats["control_plane_flows"] == labels.pop("control-plane")
    labels.pop("approved")
    assert r.stats["by_reason"] == dict(labels)
    # without a store: a temporary one, the same audit
    again, _ = audit_source(m, [MIXED])
    assert again.violations.equals(r.violations) and again.flows == r.flows


def test_audit_source_refuses_an_empty_window(tmp_path: Path) -> None:
    from flowaudit.audit.run import audit_source
    from flowaudit.errors import UsageError

    m = load_matrix(groups=ADMIN)
    at = T0 + dt.timedelta(seconds=1)
    with pytest.raises(UsageError) as e:
        audit_source(m, [MIXED], since=at, until=at)
    assert str(e.value) == f"--since {at.isoformat()} is not before --until {at.isoformat()}"
    later, _ = audit_source(m, [MIXED], since=T0 + dt.timedelta(seconds=30))
    first = min(dt.datetime.fromisoformat(t["first_seen"]) for t in _truth(MIXED))
    assert later.window_start == T0 + dt.timedelta(seconds=30) > first


def test_what_differs_for_an_icmp_rule_limited_to_some_codes(tmp_path: Path) -> None:
    """An ICMP rule may list "ports": matches.sql compares them with the flow's responder
    "port", the ICMP code (Community ID mapping). A flow outside them is a violation on
    the rule's own hosts and protocol; what differs names the code, not "matches in the
    other orientation only" (it matches in neither). Bug found by the mutation run."""
    m = _matrix(tmp_path, {"web": [T4], "db": [T5]}, [
        "id: ping, from: web, to: db, protocol: icmp, ports: 2048, purpose: p"
    ])  # fmt: skip
    rows = [flow(T4, T5, 0, proto=1, sport=8), flow(T4, T5, 2048, proto=1, sport=8, t=1)]
    (v,) = run_audit(m, make_flows(rows)).violations.to_pylist()
    assert (v["dst_port"], v["reason"], v["nearest_rule"]) == (0, "port-not-approved", "ping")
    assert v["differences"] == "icmp code 0 not in {2048}"


def test_the_highest_ports_are_audited(tmp_path: Path) -> None:
    """Every port 0-65535 has its bit in the service-port lookup: a flow from or to 65535
    is audited like any other (65535 is no service port here: the direction stays as the
    flow builder decided, and the port is not approved)."""
    m = _matrix(tmp_path, {"web": [T4], "db": [T5]}, [
        "id: https, from: web, to: db, protocol: tcp, ports: [443, 8443, 9000-9001], purpose: p"
    ])  # fmt: skip
    rows = [flow(T4, T5, 65535, sport=40000), flow(T4, T5, 443, sport=65535, t=1)]
    r = run_audit(m, make_flows(rows))
    assert [(v["dst_port"], v["reason"]) for v in r.violations.to_pylist()] == [
        (65535, "port-not-approved")
    ]
