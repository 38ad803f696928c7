"""The coverage grid's approved cells against an oracle written for the test.

The oracle knows only the matrix file (groups as ``ipaddress`` networks, rules as written)
and the sample's ground truth (``vlan111-mixed.truth.jsonl``: every flow with its true
initiator and its label, written by the generator), not the audit's SQL, flows or usage
tables. For each approved cell (source group, destination group, protocol, the rule's ports)
it decides from the truth's approved flows which ports carried traffic, hence used,
partly used (and which ports not), or unused; then the audit's grid must say the same.
"""

from __future__ import annotations

import ipaddress
import json
from collections import defaultdict
from typing import Any

import pytest
from testpaths import ADMIN, MIXED

from flowaudit import api

PORTED = {6, 17, 132}


def _networks(matrix: Any) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list[tuple[int, int]]] = {}
    for name, g in matrix.groups.items():
        spans = []
        for a in (*g.addresses, *ADMIN.get(name, ())):
            if "-" in a:
                lo, hi = (int(ipaddress.ip_address(x)) for x in a.split("-"))
            else:
                net = ipaddress.ip_network(a)
                lo, hi = int(net[0]), int(net[-1])
            spans.append((lo, hi))
        out[name] = spans
    return out


def _member(ip: str, spans: list[tuple[int, int]]) -> bool:
    a = ipaddress.ip_address(ip)
    if a.version != 4:
        return False  # the matrix's groups are IPv4
    n = int(a)
    return any(lo <= n <= hi for lo, hi in spans)


def _oracle(matrix: Any) -> dict[tuple[str, str, int, tuple[tuple[int, int], ...]], str]:
    nets = _networks(matrix)
    truth = [json.loads(x) for x in MIXED.with_suffix(".truth.jsonl").read_text().splitlines()]
    approved = [f for f in truth if f["label"] == "approved"]
    used: dict[tuple[str, str, int, tuple[tuple[int, int], ...]], set[int]] = defaultdict(set)
    for r in matrix.rules:
        sides = [(r.from_groups, r.to_groups)]
        if r.bidirectional and r.from_groups != r.to_groups:
            sides.append((r.to_groups, r.from_groups))
        for proto in r.protocols:
            ports = tuple(r.ports) if proto in PORTED else ()
            for froms, tos in sides:
                for g in froms:
                    for h in tos:
                        cell = (g, h, proto, ports)
                        used.setdefault(cell, set())
                        for f in approved:
                            if f["protocol"] != proto or not (
                                _member(f["src_ip"], nets[g]) and _member(f["dst_ip"], nets[h])
                            ):
                                continue
                            p = f["dst_port"]
                            if not ports:
                                used[cell].add(-1)
                            elif any(lo <= p <= hi for lo, hi in ports):
                                used[cell].add(p)

    # a finding lands in its hosts' smallest groups (declaration order on ties) and the
    # narrowest approved service holding its port: that cell shows it (unapproved)
    def place(ip: str) -> str | None:
        inside = [g for g in nets if nets[g] and _member(ip, nets[g])]
        size = {g: sum(hi - lo + 1 for lo, hi in nets[g]) for g in inside}
        order = list(nets)
        return min(inside, key=lambda g: (size[g], order.index(g))) if inside else None

    flagged = set()
    for f in truth:
        if f["label"] in ("approved", "control-plane"):
            continue
        g, h = place(f["src_ip"]), place(f["dst_ip"])
        fits = [
            c
            for c in used
            if c[0] == g and c[1] == h and c[2] == f["protocol"]
            and (not c[3] or any(lo <= f["dst_port"] <= hi for lo, hi in c[3]))
        ]  # fmt: skip
        if fits:
            flagged.add(min(fits, key=lambda c: (sum(hi - lo + 1 for lo, hi in c[3]), c[3])))
    status = {}
    for (g, h, proto, ports), seen in used.items():
        if not nets[g] or not nets[h]:
            continue  # a group the site has not configured
        if not seen:
            status[(g, h, proto, ports)] = "unused"
        elif ports and sum(hi - lo + 1 for lo, hi in ports) > len(seen):
            status[(g, h, proto, ports)] = "partly-used"
        else:
            status[(g, h, proto, ports)] = "used"
        if (g, h, proto, ports) in flagged:
            status[(g, h, proto, ports)] = "unapproved"
    return status


@pytest.fixture(scope="module")
def grid() -> tuple[Any, list[dict[str, Any]]]:
    report = api.audit([MIXED], groups=ADMIN)
    return api.load_matrix(groups=ADMIN), report.coverage.to_pylist()


def test_approved_cells_agree_with_the_truth_oracle(grid: tuple[Any, list[dict[str, Any]]]) -> None:
    from flowaudit.matrix.model import ports_text, protocol_name

    matrix, cells = grid
    want = _oracle(matrix)
    by_key = {}
    for (g, h, proto, ports), st in want.items():
        label = f"{h} {protocol_name(proto)}" + (f"/{ports_text(ports)}" if ports else "")
        by_key[(g, label)] = st
    got = {(c["source"], c["service"]): c["status"] for c in cells if c["approved"]}
    # every approved cell the oracle knows is in the grid, and the other way round
    assert set(got) == set(by_key)
    assert got == by_key
    counts: dict[str, int] = defaultdict(int)
    for st in by_key.values():
        counts[st] += 1
    # the numbers test_coverage.py pins, here from the truth: 35 used, 4 partly used, 3
    # unused; 2 approved cells also hold a finding, both off-VLAN: an untagged node → kubelet
    # flow and an admin workstation's 443 to the appliance on VLAN 112
    assert dict(counts) == {"used": 35, "partly-used": 4, "unused": 3, "unapproved": 2}
