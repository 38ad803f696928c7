"""The coverage grid (source group × destination service) on the sample, cell by cell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from testpaths import ADMIN, DATA, MIXED

from flowaudit import api
from flowaudit.audit.coverage import MAX_EXTRA_SERVICES, coverage_rows


@pytest.fixture(scope="module")
def result() -> Any:
    return api.audit([MIXED], groups=ADMIN)


def cells(result: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["source"], c["service"]): c for c in result.coverage.to_pylist()}


def test_unapproved_cells_hold_exactly_the_violations(result: Any) -> None:
    got = {k: sorted(c["findings"]) for k, c in cells(result).items() if c["findings"]}
    # every violation lands in exactly one cell
    flat = sorted(f for ids in got.values() for f in ids)
    assert flat == sorted(result.violations.column("finding_id").to_pylist())
    assert len(got) == 12  # the IPv6 ND/mDNS noise is LAN control plane, not a violation
    c = cells(result)
    # unknown host .77 → kubelet on two nodes: one cell, in the approved kubelet column
    assert sorted(c[("unknown (in scope)", "nodes tcp/10250")]["findings"]) == [
        "2f8957eb21288451",
        "619688b64c254500",
    ]
    assert c[("unknown (in scope)", "nodes tcp/10250")]["approved"] is False
    # untagged node → node kubelet in a tagged capture: off-VLAN inside an approved cell
    k = c[("nodes", "nodes tcp/10250")]
    assert (k["status"], k["approved"], k["findings"]) == ("unapproved", True, ["65cf9065bab8c81c"])
    assert k["rules"] == ["k8s-kubelet-10250"]  # the narrowest approved service
    # a port no rule names gets its own column
    assert c[("nodes", "nodes tcp/2381")]["findings"] == ["e000b3c0bf3f3dff"]
    assert c[("nodes", "nodes tcp/2381")]["approved"] is False
    # .155 is placed in its smallest group (pma_155, declared before palette_vip)
    assert c[("pma_155", "nodes tcp/443")]["findings"] == ["57b001c28eaf4df4"]


def test_approved_cells_used_partly_unused(result: Any) -> None:
    c = cells(result)
    statuses = [x["status"] for x in c.values()]
    assert {s: statuses.count(s) for s in set(statuses)} == {
        "used": 35,
        "partly-used": 4,
        "unused": 3,
        "unapproved": 12,
    }
    unused = {k for k, x in c.items() if x["status"] == "unused"}
    assert unused == {
        ("nodes", "nodes udp/51871"),
        ("nodes", "nodes tcp/9010"),
        ("nodes", "nodes tcp/9015"),
    }
    # the firewall's Portworx range: used on some ports only, the rest listed
    px = c[("nodes", "nodes tcp/9001-9022")]
    assert px["status"] == "partly-used"
    assert px["unused_ports"] == "9002, 9004-9011, 9015-9017"
    assert px["rules"] == ["fw-inter-node-px"]
    ssh = c[("admin_workstations", "pma tcp/22")]
    assert (ssh["status"], ssh["rules"]) == ("used", ["pma-ssh-22"])


def test_unconfigured_group_cells(tmp_path: Path) -> None:
    r = api.audit([MIXED])  # admin workstations not supplied
    c = cells(r)
    admin = {k: x["status"] for k, x in c.items() if k[0] == "admin_workstations"}
    assert admin and set(admin.values()) == {"unconfigured"}
    # their traffic now comes from unknown hosts
    assert c[("out of scope", "pma_252 tcp/22")]["status"] == "unapproved"


def test_extra_service_columns_fold_beyond_the_cap(result: Any) -> None:
    m = api.load_matrix(groups=ADMIN)
    base = result.violations.slice(0, 1).to_pylist()[0]
    rows = []
    for i in range(MAX_EXTRA_SERVICES + 10):
        d = dict(base)
        d.update(
            finding_id=f"{i:016x}",
            src_ip="8.8.4.4",
            dst_ip="9.9.9.9",
            protocol=6,
            dst_port=1000 + i,
            src_side="internet",  # the sides the audit gives these addresses
            dst_side="internet",
        )
        rows.append(d)
    got = coverage_rows(m, result.rule_usage, pa.Table.from_pylist(rows))
    extra = [r for r in got if r[2] == "out of scope"]
    services = [r[3] for r in extra]
    assert len(services) == MAX_EXTRA_SERVICES + 1
    assert "out of scope other" in services
    (folded,) = [r for r in extra if r[3] == "out of scope other"]
    assert len(folded[10]) == 10  # the findings past the cap


@pytest.mark.slow
def test_grid_is_the_same_in_every_process() -> None:
    """Placement must not depend on set order (string hashing is salted per process)."""
    code = (
        f"import json, flowaudit; r = flowaudit.audit([{str(MIXED)!r}], groups={ADMIN!r}); "
        "print(json.dumps(r.coverage.to_pylist(), sort_keys=True))"
    )
    outs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        p = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        outs.add(p.stdout)
    assert len(outs) == 1
    assert len(json.loads(outs.pop())) == 54


def test_rules_whose_hosts_never_talked_are_unobserved_not_unused() -> None:
    """Real captures with none of the deployment's hosts: nothing is proven unused."""
    ev = DATA / "evidence"
    r = api.audit([ev / "zeek-http-get.pcap", ev / "tcpdump-dns_udp.pcap"], groups=ADMIN)
    statuses = {c["status"] for c in r.coverage.to_pylist() if c["approved"]}
    assert statuses == {"unobserved"}
    assert not any(r.unused_rules.column("observable").to_pylist())
    outside = [c for c in r.coverage.to_pylist() if not c["approved"]]
    assert {c["source"] for c in outside} == {"out of scope"}
    assert sorted(c["service"] for c in outside) == ["out of scope tcp/80", "out of scope udp/53"]


def test_each_violation_lands_in_one_cell_ported_or_not() -> None:
    """One source cell to two destination cells on the same port, and portless GRE from it
    (port NULL, the matrix names it 47): every finding is listed in exactly one grid cell."""
    from flowrows import flow, make_flows

    from flowaudit.audit.run import run_audit

    unknown = "10.25.233.77"  # in scope, in no group
    rows = [
        flow(unknown, "10.25.233.4", 2381),  # to a node
        flow(unknown, "10.25.233.4", 2381, sport=40001, t=1),
        flow(unknown, "10.25.232.155", 2381),  # to the appliance: another destination cell
        flow(unknown, "10.25.233.5", None, proto=47, sport=None, direction="first_packet"),
    ]
    r = run_audit(api.load_matrix(groups=ADMIN), make_flows(rows))
    flows = {v["finding_id"]: v["flows"] for v in r.violations.to_pylist()}
    assert sorted(flows.values()) == [1, 1, 2]
    listed = [(c["service"], f) for c in r.coverage.to_pylist() for f in c["findings"]]
    assert sorted(f for _, f in listed) == sorted(flows)
    assert sorted(s for s, _ in listed) == ["nodes 47", "nodes tcp/2381", "pma_155 tcp/2381"]
