"""rules propose: proposals approve exactly the selected findings (real stores, real DuckDB)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from flowrows import flow, make_flows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testpaths import ADMIN, ADMIN_OPT, APPROVED, MIXED

from flowaudit import api
from flowaudit.audit.propose import port_ranges, propose
from flowaudit.audit.run import run_audit
from flowaudit.cli import cli
from flowaudit.matrix import load_matrix, shipped_rules_dir
from flowaudit.matrix.merge import merge_text

# every test here audits a sample store, proposes, merges and audits again: slow
pytestmark = pytest.mark.slow

SHIPPED = shipped_rules_dir() / "tmna-vlan111.yaml"
OFF_VLAN = {"65cf9065bab8c81c", "40ea9ad26129288a"}


@pytest.fixture(scope="module")
def mixed_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("mixed") / "store"
    api.ingest([MIXED], store)
    return store


@pytest.fixture(scope="module")
def mixed_ids(mixed_store: Path) -> set[str]:
    result = api.audit(store=mixed_store, groups=ADMIN)
    return set(result.violations.column("finding_id").to_pylist())


def _merge_and_audit(tmp_path: Path, store: Path, proposal_yaml: str) -> tuple[Path, set[str]]:
    prop = tmp_path / "proposal.yaml"
    prop.write_text(proposal_yaml)
    merged = tmp_path / "merged.yaml"
    api.merge_rules(SHIPPED, prop, merged)
    after = api.audit(store=store, rules=merged, groups=ADMIN)
    return merged, set(after.violations.column("finding_id").to_pylist())


def test_propose_all_merge_audit_leaves_only_off_vlan(mixed_store, mixed_ids, tmp_path) -> None:
    # the sample's truth: 14 flows labelled with a violation reason (its 4 IPv6 ND/MLD
    # flows are LAN control plane, apart from the violations), each its own finding
    truth = [json.loads(line) for line in (MIXED.with_suffix(".truth.jsonl")).open()]
    violating = [r for r in truth if r["label"] not in ("approved", "control-plane")]
    assert len(mixed_ids) == len(violating) == 14 and OFF_VLAN <= mixed_ids
    proposal = api.propose_rules(store=mixed_store, groups=ADMIN)
    assert set(proposal.findings) == mixed_ids - OFF_VLAN
    assert {fid for fid, _ in proposal.skipped} == OFF_VLAN
    merged, after = _merge_and_audit(tmp_path, mixed_store, proposal.to_yaml())
    assert after == OFF_VLAN
    runner = CliRunner()
    check = runner.invoke(cli, ["rules", "check", str(merged), *ADMIN_OPT])
    assert check.exit_code == 0, check.output
    lint = runner.invoke(cli, ["rules", "lint", str(merged), *ADMIN_OPT])
    assert lint.exit_code in (0, 1), lint.output


def test_accepted_findings_gone_everything_else_identical(mixed_store, mixed_ids, tmp_path) -> None:
    accepted = ["2f8957eb21288451", "fe11e0e7d5f0aedf", "e72e186073f987aa", "b15d1b4c9e0461fa"]
    proposal = api.propose_rules(store=mixed_store, groups=ADMIN, findings=accepted)
    assert sorted(proposal.findings) == sorted(accepted)
    _, after = _merge_and_audit(tmp_path, mixed_store, proposal.to_yaml())
    assert after == mixed_ids - set(accepted)
    # each rule names the findings it approves, the window, flows and capture digests
    for r in proposal.to_dict()["rules"]:
        prov = r["provenance"]
        assert prov["origin"] == "observed" and set(prov["findings"]) <= set(accepted)
        assert prov["flows"] >= 1 and " .. " in prov["window"]
        assert [len(c) for c in prov["captures"]] == [64]


def test_unknown_source_pair_is_one_rule_to_an_exact_group(mixed_store) -> None:
    proposal = api.propose_rules(
        store=mixed_store, groups=ADMIN, findings=["2f8957eb21288451", "619688b64c254500"]
    )
    (rule,) = proposal.rules
    assert (rule.protocols, rule.ports, rule.bidirectional) == ((6,), ((10250, 10250),), False)
    groups = {g.name: g.addresses for g in proposal.groups}
    assert groups[rule.from_groups[0]] == ("10.25.233.77",)
    # .4 and .6 were reached, .5 was not: not the whole `nodes` group
    assert groups[rule.to_groups[0]] == ("10.25.233.4", "10.25.233.6")


def test_existing_groups_used_where_they_fit(mixed_store) -> None:
    proposal = api.propose_rules(store=mixed_store, groups=ADMIN, findings=["fe11e0e7d5f0aedf"])
    (rule,) = proposal.rules
    assert rule.to_groups == ("pma_155",)  # 10.25.232.155 exactly; the smallest, first declared


def test_role_names_and_named_groups(mixed_store) -> None:
    dns = ["e72e186073f987aa", "7700428a88263ab2"]
    proposal = api.propose_rules(store=mixed_store, groups=ADMIN, findings=dns)
    names = sorted(g.name for g in proposal.groups)
    assert "internet" in names
    named = api.propose_rules(
        store=mixed_store,
        groups={**ADMIN, "public_dns": ["1.1.1.1/32", "8.8.8.8/32"]},
        findings=dns,
    )
    assert {r.to_groups for r in named.rules} == {("public_dns",)}


def test_bad_input_exits_2(mixed_store, tmp_path) -> None:
    runner = CliRunner()
    base = ["rules", "propose", "--store", str(mixed_store), *ADMIN_OPT]
    r = runner.invoke(cli, [*base, "--findings", "0123456789abcdef"])
    assert r.exit_code == 2 and "unknown finding id: 0123456789abcdef" in r.output
    r = runner.invoke(cli, [*base, "--findings", "40ea9ad26129288a"])
    assert r.exit_code == 2 and "off-vlan" in r.output
    r = runner.invoke(cli, [*base, "--all", "--group", "nodes=10.0.0.0/8"])
    assert r.exit_code == 2 and "conflicting group names" in r.output
    r = runner.invoke(cli, [*base])
    assert r.exit_code == 2 and "--findings ID[,ID], --group-id ID[,ID] or --all" in r.output
    out = tmp_path / "p.yaml"
    r = runner.invoke(cli, [*base, "--findings", "fe11e0e7d5f0aedf", "-o", str(out)])
    assert r.exit_code == 0, r.output
    other = tmp_path / "other.yaml"
    other.write_text(out.read_text().replace("proposal: tmna-vlan111", "proposal: another"))
    r = runner.invoke(cli, ["rules", "merge", str(SHIPPED), str(other), "-o", str(tmp_path / "m")])
    assert r.exit_code == 2 and "the proposal is for matrix 'another'" in r.output
    assert not (tmp_path / "m").exists()
    clash = tmp_path / "clash.yaml"
    clash.write_text(out.read_text().replace("observed_1", "nodes"))
    r = runner.invoke(cli, ["rules", "merge", str(SHIPPED), str(clash), "-o", str(tmp_path / "m")])
    assert r.exit_code == 2 and "conflicting group names: 'nodes'" in r.output


def test_bootstrap_from_the_approved_capture(tmp_path) -> None:
    out = tmp_path / "bootstrap.yaml"
    runner = CliRunner()
    r = runner.invoke(cli, ["rules", "propose", "--no-rules", "--name", "vlan111", str(APPROVED),
                            "-o", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    check = runner.invoke(cli, ["rules", "check", str(out)])
    assert check.exit_code == 0, check.output
    audit = runner.invoke(cli, ["audit", str(APPROVED), "--rules", str(out), "--format", "json"])
    report = json.loads(audit.stdout)
    assert report["violations"] == [] and report["window"]["flows"] == 85
    m = load_matrix(out)
    assert m.name == "vlan111" and m.scope.vlans == (111,)
    assert all(r.origin == "observed" for r in m.rules)
    # a strict subset of the seed's matrix (rules/README.md has the comparison table)
    change = api.diff_rules(SHIPPED, out, groups=ADMIN)
    assert change.access and {a["change"] for a in change.access} == {"revoked"}


def test_port_ranges_only_over_observed_ports() -> None:
    assert port_ranges([2379, 2380, 2382]) == ((2379, 2380), (2382, 2382))
    assert port_ranges([2379, 2380, 2382], gap=1) == ((2379, 2382),)
    assert port_ranges([443]) == ((443, 443),)


# ------------------------------------------------------------- property test
POOL = [f"10.0.0.{i}" for i in range(1, 9)] + ["192.0.2.9"]
BASE = """\
name: prop
scope:
  vlans: [111]
  subnets: [10.0.0.0/24]
groups:
  pair:  # a group a proposal may use when both addresses were observed
    addresses: [10.0.0.1-10.0.0.2]
  five:
    addresses: [10.0.0.5]
rules: []
"""

flows_strategy = st.lists(
    st.tuples(
        st.integers(0, len(POOL) - 1),
        st.integers(0, len(POOL) - 1),
        st.sampled_from([6, 17, 47]),
        st.sampled_from([80, 81, 83, 443, 444]),
        st.sampled_from(["syn", "first_packet"]),
    )
    .filter(lambda t: t[0] != t[1])
    .map(lambda t: t if t[2] != 47 else (*t[:3], None, t[4])),  # GRE: no ports
    min_size=1,
    max_size=12,
)


def _unit(ip: str, agg: int | None) -> str:
    if agg is None:
        return ip
    return str(ipaddress.ip_network(f"{ip}/{agg}", strict=False))


def _approved_tuples(m, rule_ids):
    out = set()
    for r in m.rules:
        if r.id not in rule_ids:
            continue
        src = [str(a) for g in r.from_groups for a in _addresses(m.groups[g])]
        dst = [str(a) for g in r.to_groups for a in _addresses(m.groups[g])]
        pairs = {(s, d) for s in src for d in dst}
        if r.bidirectional:
            pairs |= {(d, s) for s, d in pairs}
        for s, d in pairs:
            for proto in r.protocols:
                if proto == 47:  # no ports: a GRE flow's port counts as 0 (rules/README.md)
                    out |= {(s, d, proto, 0)} if any(lo == 0 for lo, _ in r.ports) else set()
                    continue
                for lo, hi in r.ports:
                    out |= {(s, d, proto, p) for p in range(lo, hi + 1)}
    return out


def _addresses(g):
    for text in g.addresses:
        net = ipaddress.ip_network(text) if "-" not in text else None
        if net is not None:
            yield from (net if net.num_addresses > 1 else [net.network_address])
        else:
            a, b = (ipaddress.ip_address(x) for x in text.split("-"))
            yield from (ipaddress.ip_address(n) for n in range(int(a), int(b) + 1))


@pytest.mark.slow
# three tenths of the profile's examples (15 in CI, 600 under `thorough`): each one
# proposes, writes and audits twice over
@settings(
    max_examples=max(10, settings.default.max_examples * 3 // 10),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    flows=flows_strategy,
    agg=st.sampled_from([None, None, 30]),
    gap=st.sampled_from([0, 0, 1]),
)
def test_proposal_approves_selected_and_nothing_unobserved(tmp_path, flows, agg, gap) -> None:
    base_path = tmp_path / "base.yaml"
    base_path.write_text(BASE)
    base = load_matrix(base_path)
    rows = [
        flow(
            POOL[s],
            POOL[d],
            port,
            proto=proto,
            sport=None if port is None else 40000,
            direction=direction,
            t=float(i),
        )  # fmt: skip
        for i, (s, d, proto, port, direction) in enumerate(flows)
    ]
    table = make_flows(rows)
    result = run_audit(base, table)
    proposal = propose(base, result, None, aggregate=agg, port_gap=gap)
    prop = tmp_path / "proposal.yaml"
    prop.write_text(proposal.to_yaml())
    _, merged = merge_text(base_path, prop)
    # every selected flow is approved
    assert run_audit(merged.matrix, table).violations.num_rows == 0
    # nothing that was not observed, within the aggregation and port gap the flags allow
    seen: dict[tuple[str, str, int], set[int]] = {}
    for s, d, proto, port, _ in flows:
        key = (_unit(POOL[s], agg), _unit(POOL[d], agg), proto)
        seen.setdefault(key, set()).add(0 if port is None else port)
    allowed = {
        (s, d, proto, p)
        for (s, d, proto), ports in seen.items()
        for lo, hi in port_ranges(ports, gap)
        for p in range(lo, hi + 1)
    }
    for s, d, proto, p in _approved_tuples(merged.matrix, {r.id for r in proposal.rules}):
        assert (_unit(s, agg), _unit(d, agg), proto, p) in allowed, (s, d, proto, p)


EXPECTED = """\
# Proposed by `flowaudit rules propose` from observed traffic. Review every rule:
# give it a purpose, and merge with `flowaudit rules merge BASE THIS -o NEW`.
proposal: tmna-vlan111
description: rules approving 3 findings (flowaudit rules propose)
groups:
  observed_1:
    description: observed initiators (part of nodes); name its role
    addresses: [10.25.233.4]
  observed_2:
    description: observed initiators; name its role
    addresses: [10.25.233.77]
  observed_3:
    description: observed responders (part of nodes); name its role
    addresses: [10.25.233.4, 10.25.233.6]
rules:
  - id: observed-tcp-22
    from: observed_1
    to: pma_155
    protocol: tcp
    ports: 22
    purpose: "observed tcp 22: observed_1 → pma_155 (review: name the service)"
    provenance:
      origin: observed
      findings: [fe11e0e7d5f0aedf]
      window: 2026-11-20T08:00:08.582025Z .. 2026-11-20T08:00:08.585413Z
      flows: 1
      captures: [f1e26702f281f3d8657e91f4cb7a0a1acd268c5db902a078975de1a8ce37ec31]
  - id: observed-tcp-10250
    from: observed_2
    to: observed_3
    protocol: tcp
    ports: 10250
    purpose: "observed tcp 10250: observed_2 → observed_3 (review: name the service)"
    provenance:
      origin: observed
      findings: [2f8957eb21288451, 619688b64c254500]
      window: 2026-11-20T08:00:20.725162Z .. 2026-11-20T08:00:23.051399Z
      flows: 2
      captures: [f1e26702f281f3d8657e91f4cb7a0a1acd268c5db902a078975de1a8ce37ec31]
"""


def test_propose_cli_prints_the_proposal(mixed_store) -> None:
    ids = "2f8957eb21288451,619688b64c254500,fe11e0e7d5f0aedf"
    args = ["rules", "propose", "--store", str(mixed_store), *ADMIN_OPT, "--findings", ids]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert r.stdout == EXPECTED


def test_a_finding_group_is_proposed_as_its_findings(mixed_store, mixed_ids, tmp_path) -> None:
    """--group-id takes a group of the report (here the unknown-source pair's): exactly its
    findings are approved; a prefix works; an unknown id is exit 2."""
    audit = api.audit(store=mixed_store, groups=ADMIN)
    assert audit.finding_groups is not None
    groups = audit.finding_groups.select(["group_id", "reason", "findings"]).to_pylist()
    group = next(g for g in groups if g["reason"] == "unknown-source")
    proposal = api.propose_rules(store=mixed_store, groups=ADMIN, group_ids=[group["group_id"][:8]])
    assert sorted(proposal.findings) == sorted(group["findings"])
    _, after = _merge_and_audit(tmp_path, mixed_store, proposal.to_yaml())
    assert after == mixed_ids - set(group["findings"])
    r = CliRunner().invoke(
        cli, ["rules", "propose", "--store", str(mixed_store), *ADMIN_OPT, "--group-id", "ffffff"]
    )
    assert r.exit_code == 2 and "group id 'ffffff' matches no finding group" in r.output


def test_a_protocol_without_ports_is_proposed_as_a_rule_without_ports(tmp_path) -> None:
    """VRRP adverts between two hosts (no ports, no handshake) and a tcp flow without a
    port: the VRRP finding becomes a rule of protocol 112 with `ports: any` (the default of
    rules of protocols without ports), the portless tcp one is skipped with the reason."""
    base_path = tmp_path / "base.yaml"
    base_path.write_text(BASE)
    base = load_matrix(base_path)
    rows = [
        flow("10.0.0.3", "10.0.0.4", None, proto=112, sport=None, direction="first_packet"),
        flow("10.0.0.6", "10.0.0.7", None, proto=6, sport=None, direction="first_packet", t=1),
    ]
    result = run_audit(base, make_flows(rows))
    proposal = propose(base, result, None)
    (rule,) = [r.to_dict() for r in proposal.rules]
    assert (rule["id"], rule["protocol"], rule["ports"]) == ("observed-112", "112", "any")
    assert rule["purpose"].startswith("observed 112: ")
    ((_, why),) = proposal.skipped
    assert why == "no responder port was recorded: a tcp rule needs one"
    prop = tmp_path / "proposal.yaml"
    prop.write_text(proposal.to_yaml())
    _, merged = merge_text(base_path, prop)
    (v,) = run_audit(merged.matrix, make_flows(rows)).violations.to_pylist()
    assert (v["src_ip"], v["protocol"]) == ("10.0.0.6", 6)
