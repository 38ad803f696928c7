"""rules diff and rules merge on the shipped matrix and hand-edited copies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from testpaths import ADMIN_OPT, MIXED

from flowaudit import api
from flowaudit.cli import cli
from flowaudit.errors import RulesError
from flowaudit.matrix import load_matrix, shipped_rules_dir
from flowaudit.matrix.diff import diff_matrices

SHIPPED = shipped_rules_dir() / "tmna-vlan111.yaml"

PROPOSAL = """\
proposal: tmna-vlan111
groups:
  observed_1:
    description: the node that talks to the appliance on ssh
    addresses: [10.25.233.4]
rules:
  - id: observed-tcp-22
    from: observed_1
    to: pma_155
    protocol: tcp
    ports: 22
    purpose: node to appliance ssh
    provenance:
      origin: observed
      findings: [fe11e0e7d5f0aedf]
      window: 2026-11-20T08:00:08.582025Z .. 2026-11-20T08:00:08.585413Z
      flows: 1
      captures: [e48bee4361ac371c037ad45baa45162e2974f621b6af8538a3b92943b97d214b]
"""


def _edited(tmp_path: Path, old: str, new: str) -> Path:
    text = SHIPPED.read_text()
    assert text.count(old) == 1
    out = tmp_path / "edited.yaml"
    out.write_text(text.replace(old, new))
    return out


def test_diff_of_the_shipped_matrix_with_itself_is_empty() -> None:
    r = CliRunner().invoke(cli, ["rules", "diff", str(SHIPPED), str(SHIPPED)])
    assert r.exit_code == 0, r.output
    assert "no change: both matrices allow the same traffic" in r.output
    d = api.diff_rules(SHIPPED, SHIPPED)
    assert d.empty and d.to_dict()["access"] == [] and d.to_dict()["rules"] == []


def test_diff_lists_exactly_a_port_edit(tmp_path) -> None:
    # kubelet moves to 10251; 10250 stays allowed by the firewall rule fw-inter-node-k8s
    edited = _edited(tmp_path, "    ports: 10250\n", "    ports: 10251\n")
    d = diff_matrices(load_matrix(SHIPPED), load_matrix(edited))
    assert d.groups == ()
    assert d.rules == (
        {
            "rule_id": "k8s-kubelet-10250",
            "change": "changed",
            "fields": ["ports"],
            "provenance": "Inter-Node Communication (Kubernetes): 10250 TCP Kubelet API",
        },
    )
    (row,) = d.access
    assert row["change"] == "allowed" and row["protocol"] == 6 and row["ports"] == [[10251, 10251]]
    assert row["source"] == row["destination"] == ["10.25.233.4-10.25.233.6"]
    assert row["rules"] == ["k8s-kubelet-10250"]
    r = CliRunner().invoke(cli, ["rules", "diff", str(SHIPPED), str(edited), "--format", "json"])
    assert r.exit_code == 1
    assert json.loads(r.output)["access"] == list(d.access)


def test_diff_group_and_provenance_edit(tmp_path) -> None:
    text = SHIPPED.read_text()
    text = text.replace("addresses: [10.25.232.252]", "addresses: [10.25.232.253]")
    text = text.replace("      row: 10259 TCP kube-scheduler", "      row: 10259 TCP scheduler")
    edited = tmp_path / "edited.yaml"
    edited.write_text(text)
    d = diff_matrices(load_matrix(SHIPPED), load_matrix(edited))
    assert [(g["group"], g["change"], g["old"], g["new"]) for g in d.groups] == [
        ("pma_252", "changed", ["10.25.232.252"], ["10.25.232.253"])
    ]
    assert [(r["rule_id"], r["change"]) for r in d.rules] == [("k8s-scheduler-10259", "provenance")]
    # fw-ssh-to-pma follows the address; .252 stays reachable on 22 through `pma`
    assert [(a["change"], a["source"], a["destination"], a["ports"]) for a in d.access] == [
        ("allowed", ["<admin_workstations>"], ["10.25.232.253"], [[22, 22]])
    ]
    md = CliRunner().invoke(
        cli, ["rules", "diff", str(SHIPPED), str(edited), "--format", "markdown"]
    )
    assert md.exit_code == 1
    assert "### Groups whose addresses change (1)" in md.output
    assert "| pma_252 | changed | 10.25.232.252 | 10.25.232.253 |" in md.output


@pytest.mark.slow
def test_diff_with_a_store_lists_verdict_changes(tmp_path) -> None:
    store = tmp_path / "store"
    api.ingest([MIXED], store)
    proposal = tmp_path / "p.yaml"
    proposal.write_text(PROPOSAL)
    merged = tmp_path / "merged.yaml"
    api.merge_rules(SHIPPED, proposal, merged)
    args = ["rules", "diff", str(SHIPPED), str(merged), "--store", str(store), *ADMIN_OPT]
    r = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert r.exit_code == 1, r.output
    verdicts = json.loads(r.output)["verdicts"]
    assert [(v["verdict"], v["finding_id"], v["reason"]) for v in verdicts] == [
        ("approved", "fe11e0e7d5f0aedf", "port-not-approved")
    ]
    text = CliRunner().invoke(cli, args)
    assert "Observed findings whose verdict changes (1):" in text.output


def test_merge_keeps_the_base_comments_and_order(tmp_path) -> None:
    proposal = tmp_path / "p.yaml"
    proposal.write_text(PROPOSAL)
    out = tmp_path / "merged.yaml"
    r = CliRunner().invoke(cli, ["rules", "merge", str(SHIPPED), str(proposal), "-o", str(out)])
    assert r.exit_code == 0, r.output
    base_lines = SHIPPED.read_text().splitlines()
    merged_lines = out.read_text().splitlines()
    added = [line for line in merged_lines if line not in base_lines]
    # the base is a subsequence of the merged file: nothing of it dropped or reordered
    it = iter(merged_lines)
    assert all(line in it for line in base_lines)
    assert "  observed_1:" in added and "  - id: observed-tcp-22" in added
    m = load_matrix(out)
    assert m.rules[-1].id == "observed-tcp-22" and list(m.groups)[-1] == "observed_1"
    assert m.rules[-1].provenance.findings == ("fe11e0e7d5f0aedf",)
    assert CliRunner().invoke(cli, ["rules", "check", str(out)]).exit_code == 0
    assert CliRunner().invoke(cli, ["rules", "lint", str(out)]).exit_code in (0, 1)


def test_merge_into_an_empty_flow_style_matrix(tmp_path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(
        "# a new site\nname: tmna-vlan111\nscope: {vlans: [111]}\ngroups: {}\nrules: []  # none\n"
    )
    proposal = tmp_path / "p.yaml"
    proposal.write_text(
        PROPOSAL.replace("to: pma_155", "to: appliance").replace(
            "groups:\n", "groups:\n  appliance:\n    addresses: [10.25.232.155]\n"
        )
    )
    out = tmp_path / "m.yaml"
    api.merge_rules(base, proposal, out)
    text = out.read_text()
    assert text.startswith("# a new site\n") and "# none" in text
    m = load_matrix(out)
    assert [r.id for r in m.rules] == ["observed-tcp-22"]
    assert sorted(m.groups) == ["appliance", "observed_1"]


def test_merge_refuses_a_rule_id_the_base_has(tmp_path) -> None:
    proposal = tmp_path / "p.yaml"
    proposal.write_text(PROPOSAL.replace("id: observed-tcp-22", "id: pma-ssh-22"))
    with pytest.raises(RulesError, match="rule id 'pma-ssh-22' is already in 'tmna-vlan111'"):
        api.merge_rules(SHIPPED, proposal, tmp_path / "m.yaml")
    assert not (tmp_path / "m.yaml").exists()


def test_a_proposal_is_not_a_matrix(tmp_path) -> None:
    proposal = tmp_path / "p.yaml"
    proposal.write_text(PROPOSAL)
    r = CliRunner().invoke(cli, ["rules", "check", str(proposal)])
    assert r.exit_code == 2 and "merge it first" in r.output


def test_merge_base_must_be_the_matrix_file(tmp_path) -> None:
    proposal = tmp_path / "p.yaml"
    proposal.write_text(PROPOSAL)
    overlay = shipped_rules_dir() / "site-overlay.example.yaml"
    r = CliRunner().invoke(cli, ["rules", "merge", str(overlay), str(proposal), "-o", "x.yaml"])
    assert r.exit_code == 2 and "BASE must be a matrix file" in r.output


BLOCKY = """\
name: tmna-vlan111
scope:
  vlans: [111]
groups:
  pma_155:
    addresses: [10.25.232.155]
    description: >-
      the appliance,
      folded

# ---- rules ----
rules:
- id: a
  from: pma_155
  to: pma_155
  protocol: tcp
  ports: 1
  purpose: x
  provenance:
    table: t
    row: |
      literal row
      two lines
    origin: component
# trailing comment
"""


def test_merge_after_block_scalars_and_an_indentless_list(tmp_path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(BLOCKY)
    proposal = tmp_path / "p.yaml"
    proposal.write_text(PROPOSAL)
    out = tmp_path / "m.yaml"
    api.merge_rules(base, proposal, out)
    lines = out.read_text().splitlines()
    # the new group follows the folded description, before the blank line and the comment
    at = lines.index("      folded")
    assert lines[at + 1 : at + 2] == ["  observed_1:"]
    assert lines[lines.index("# ---- rules ----") + 1] == "rules:"
    # the new rule follows the literal row, at the list's own (zero) indentation
    at = lines.index("    origin: component")
    assert lines[at + 1] == "- id: observed-tcp-22" and lines[-1] == "# trailing comment"
    m = load_matrix(out)
    assert m.rule("a").provenance.row == "literal row\ntwo lines"
    assert [r.id for r in m.rules] == ["a", "observed-tcp-22"]


@pytest.mark.parametrize(
    ("provenance", "message"),
    [
        ("{origin: observed, flows: -1}", "provenance.flows must be a count"),
        ("{origin: observed, findings: abc}", "provenance.findings must be a list of text"),
        ("{origin: component, findings: [x], table: t, row: r}", "unknown key 'findings'"),
        ("{origin: component}", "provenance.table must name the seed table"),
        ("{origin: observed, table: t}", "provenance.row must be the row text or number"),
    ],
)
def test_observed_provenance_is_validated(tmp_path, provenance, message) -> None:
    m = tmp_path / "m.yaml"
    m.write_text(
        "name: t\nscope: {vlans: [1]}\ngroups: {g: {addresses: [10.0.0.1]}}\nrules:\n"
        f"  - {{id: r, from: g, to: g, protocol: tcp, ports: 1, purpose: p,\n"
        f"     provenance: {provenance}}}\n"
    )
    r = CliRunner().invoke(cli, ["rules", "check", str(m)])
    assert r.exit_code == 2 and message in r.output, r.output


def test_observed_provenance_without_table_loads(tmp_path) -> None:
    m = tmp_path / "m.yaml"
    m.write_text(
        "name: t\nscope: {vlans: [1]}\ngroups: {g: {addresses: [10.0.0.1]}}\nrules:\n"
        "  - {id: r, from: g, to: g, protocol: tcp, ports: 1, purpose: p,\n"
        "     provenance: {origin: observed, findings: [ab], window: w, flows: 2, captures: []}}\n"
    )
    rule = load_matrix(m).rule("r")
    assert rule.origin == "observed" and rule.provenance.findings == ("ab",)
    assert str(rule.provenance) == "observed: 2 flows in w; findings ab"
