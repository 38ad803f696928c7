"""The audit's Python decisions around the SQL (``flowaudit/audit/run.py``), each against a
plain-Python statement of the documented rule: host pairs of partly used rules (expanded
only for groups of at most 16 addresses, ARCHITECTURE.md), the evidence, observability,
order and ids of unused rules, what differs, and the result's counts. Written for the
surviving mutants of the mutmut run recorded in tests/MUTATION.md."""

from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path
from typing import Any

import pytest
from flowrows import flow, make_flows

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


@pytest.fixture(scope="module")
def pair_audit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Matrix, Any]:
    m = _matrix(
        tmp_path_factory.mktemp("pairs"),
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


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Matrix, Any, list[dict[str, Any]]]:
    m = _matrix(
        tmp_path_factory.mktemp("verdicts"),
        {"web": [T4], "db": [T5], "lone": ["10.25.233.9"], "ghost": None, "phantom": None},
        [
            # used on 5432 only: partly used, ports 5433-5440 never seen
            "id: db-a, from: web, to: db, protocol: tcp, ports: 5432-5440, purpose: p",
            # never used, but web and db talked (on other ports): observable
            "id: db-b, from: web, to: db, protocol: [udp, tcp], ports: 6000, purpose: p,"
            " condition: if enabled",
            # lone never talked to anyone: unused, not observable
            "id: lone, from: lone, to: db, protocol: tcp, ports: 22, purpose: p",
            # unconfigured groups: not observable, both named
            "id: gone, from: ghost, to: phantom, protocol: udp, ports: 53, purpose: p",
            # used by its only pair on its only port: not listed
            "id: full, from: db, to: web, protocol: udp, ports: 9000, purpose: p",
        ],
    )
    rows = [
        flow(T4, T5, 5432, sport=40001, t=10),
        flow(T4, T5, 5432, sport=40002, t=20),
        flow(T4, T5, 5432, sport=40003, t=30, dur=5),
        flow(T5, T4, 9000, sport=40004, proto=17, t=12),
        flow(T5, T4, 9000, sport=40005, proto=17, t=13),
        flow(T4, "10.25.233.77", 80, sport=40006, t=14),  # another host: not between the rules'
    ]
    r = run_audit(m, make_flows(rows))
    return m, r, rows


def test_unused_rules_evidence_and_observability(verdicts) -> None:
    m, r, rows = verdicts
    u = _unused(r)
    window = "2026-11-20T08:00:10Z .. 2026-11-20T08:00:35Z"
    # flows between web and db on any port and protocol, either orientation
    between = sum(1 for f in rows if {f["src_ip"], f["dst_ip"]} == {T4, T5})
    assert between == 5
    n = len(rows)
    a = u[("db-a", 6)]
    assert (a["status"], a["flows"], a["observable"]) == ("partly-used", 3, True)
    assert a["unused_ports"] == [[5433, 5440]] and a["unused_pairs"] == []
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
    assert ("full", 17) not in u
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
        ("unused", "gone", 17),
        ("unused", "lone", 6),
        ("partly-used", "db-a", 6),
    ]
    for x in got:
        key = f"flowaudit-rule-v1|{x['rule_id']}|{x['protocol']}".encode()
        assert x["finding_id"] == hashlib.sha256(key).hexdigest()[:16]
    assert (r.stats["unused"], r.stats["partly_used"], r.stats["overbroad"]) == (4, 1, 1)


# ------------------------------------------------------------------ what differs
LONE = "10.25.233.9"


@pytest.fixture(scope="module")
def differs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Matrix, dict[tuple[Any, ...], Any]]:
    m = _matrix(
        tmp_path_factory.mktemp("differs"),
        {"web": [T4], "db": [T5], "lone": [LONE], "ghost": None, "phantom": None},
        [
            "id: app, from: [ghost, phantom, web], to: db, protocol: tcp, ports: 5432, purpose: p",
            "id: multi, from: web, to: db, protocol: [tcp, udp], ports: 7000-7001, purpose: p",
        ],
    )
    rows = [
        flow(LONE, T5, 5432, sport=40001),  # source outside the rule's groups
        flow(T4, LONE, 5432, sport=40002),  # destination outside
        flow(T4, T5, 7000, proto=132, sport=40003),  # sctp: another protocol
    ]
    r = run_audit(m, make_flows(rows))
    return m, {(v["src_ip"], v["dst_ip"], v["dst_port"]): v for v in r.violations.to_pylist()}


def test_what_differs_names_the_groups_and_the_unconfigured_ones(differs) -> None:
    """'src/dst IP not in GROUPS', with the groups of the nearest rule that have no
    addresses named once, in the rule's order (DESIGN.md: the nearest rule with what
    differs; ARCHITECTURE.md: unconfigured groups are named)."""
    _, v = differs
    src = v[(LONE, T5, 5432)]
    assert src["nearest_rule"] == "app"
    assert src["differences"] == (
        f"src {LONE} not in ghost/phantom/web (ghost, phantom has no addresses: supply --group)"
    )
    dst = v[(T4, LONE, 5432)]
    assert (dst["nearest_rule"], dst["differences"]) == ("app", f"dst {LONE} not in db")
    sctp = v[(T4, T5, 7000)]
    assert (sctp["nearest_rule"], sctp["differences"]) == ("multi", "protocol sctp not tcp/udp")
