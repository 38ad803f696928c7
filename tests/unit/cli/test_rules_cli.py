"""``flowaudit rules check|show|lint``: exit codes and exact output (CliRunner)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from testpaths import DATA, REPO

from flowaudit.cli import cli
from flowaudit.matrix import load_matrix

RULES = DATA / "rules"
SHA = load_matrix().sha256


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, ["rules", *args])
    return r.exit_code, r.stdout, r.stderr


def test_check_shipped_ok() -> None:
    assert run("check") == (
        0,
        f"ok: tmna-vlan111: 41 rules, 6 groups, sha256 {SHA}\n"
        "groups without addresses (supply with --group or an overlay): admin_workstations\n",
        "",
    )


def test_check_with_group_option() -> None:
    sha = load_matrix(groups={"admin_workstations": ["10.1.2.0/24", "10.1.3.7"]}).sha256
    code, out, _ = run("check", "--group", "admin_workstations=10.1.2.0/24,10.1.3.7")
    assert (code, out) == (0, f"ok: tmna-vlan111: 41 rules, 6 groups, sha256 {sha}\n")
    code, out, err = run("check", "--group", "nodes=10.9.9.9")
    assert code == 2 and out == ""
    assert err.startswith("flowaudit: error: --group nodes: group 'nodes' is fixed")
    code, _, err = run("check", "--group", "admin_workstations")
    assert code == 2 and "expected NAME=CIDR[,CIDR]" in err


@pytest.mark.parametrize(
    ("stem", "where"),
    [
        ("bad_cidr", ":7: group 'nodes': bad address or CIDR"),
        ("unknown_group", ":11: rule 'etcd': unknown group 'nodez'"),
        ("unknown_protocol", ":12: rule 'etcd': unknown protocol 'tpc'"),
        ("bad_range", ":13: rule 'etcd': port range '2380-2379' has lo > hi"),
        ("port_out_of_range", ":13: rule 'etcd': port 65536 outside 0-65535"),
        ("unknown_key", ":15: rule 'etcd': unknown key 'direction'"),
        ("duplicate_key", ":14: duplicate key 'ports'"),
        ("duplicate_id", ":16: rule 'etcd': duplicate rule id"),
        ("yaml_syntax", ":11:4: YAML syntax error"),
    ],
)
@pytest.mark.parametrize("command", ["check", "show", "lint"])
def test_broken_files_exit_2_naming_file_and_line(command: str, stem: str, where: str) -> None:
    path = RULES / f"{stem}.yaml"
    code, out, err = run(command, str(path))
    assert code == 2
    assert out == ""
    assert err.startswith(f"flowaudit: error: {path}{where}")


def test_show_table() -> None:
    code, out, err = run("show")
    lines = out.splitlines()
    assert (code, err) == (0, "")
    assert lines[0] == f"matrix tmna-vlan111 sha256 {SHA}"
    assert lines[1].split() == [
        "RULE", "PROTO", "FROM", "TO", "PORTS", "DIRECTION", "ORIGIN", "CONDITION"
    ]  # fmt: skip
    assert len(lines) == 2 + 55
    assert lines[2].split() == [
        "pma-ui-443", "tcp", "admin_workstations", "<unconfigured>", "pma", "10.25.232.155",
        "443", "one-way", "component",
    ]  # fmt: skip
    assert lines[-1].split() == [
        "fw-inter-node-vmo", "tcp", "nodes", "10.25.233.4-10.25.233.6", "nodes",
        "10.25.233.4-10.25.233.6", "49152-49215", "both", "firewall",
    ]  # fmt: skip
    vxlan = next(line for line in lines if line.startswith("cilium-vxlan-8472"))
    assert vxlan.endswith("component  if the VXLAN overlay is used")


def test_show_json() -> None:
    code, out, _ = run("show", "--format", "json", "--group", "admin_workstations=10.1.2.0/24")
    doc = json.loads(out)
    assert code == 0
    assert doc["matrix"] == {
        "name": "tmna-vlan111",
        "sha256": load_matrix(groups={"admin_workstations": ["10.1.2.0/24"]}).sha256,
    }
    assert doc["scope"] == {"vlans": [111], "subnets": ["10.25.233.0/24", "10.25.232.0/24"]}
    assert len(doc["rules"]) == 55
    assert doc["rules"][0] == {
        "rule_id": "pma-ui-443",
        "protocol": 6,
        "src_group": "admin_workstations",
        "src": "10.1.2.0-10.1.2.255",
        "dst_group": "pma",
        "dst": "10.25.232.155",
        "port_lo": 443,
        "port_hi": 443,
        "bidirectional": False,
        "condition": None,
        "origin": "component",
        "provenance": "Palette Management Appliance Ports: 443 TCP/HTTPS Inbound Browser, CLI, "
        "cluster agents Palette UI, API, gRPC",
        "purpose": "Palette UI, API, gRPC (HTTPS)",
    }


def test_lint_json_reports_the_seed_inconsistencies() -> None:
    code, out, _ = run("lint", "--format", "json")
    doc = json.loads(out)
    assert code == 1
    assert doc["summary"] == {
        "findings": 25,
        "by_kind": {
            "missing-firewall-rule": 9,
            "address-mismatch": 5,
            "firewall-wider-than-documented": 1,
            "protocol-mismatch": 2,
            "shadowed-rule": 3,
            "unconfigured-group": 1,
            "conditional-rule": 4,
        },
    }
    missing = {
        (f["rule_ids"][0], f["protocol"], tuple(map(tuple, f["ports"])))
        for f in doc["findings"]
        if f["kind"] == "missing-firewall-rule"
    }
    assert {(rid, port) for rid, _, ((port, _),) in missing} >= {
        ("k8s-scheduler-10259", 10259),
        ("k8s-controller-manager-10257", 10257),
        ("metallb-memberlist-7946", 7946),
        ("cilium-vxlan-8472", 8472),
    }
    wider = next(f for f in doc["findings"] if f["kind"] == "firewall-wider-than-documented")
    assert wider["ports"] == [[9004, 9009], [9011, 9011], [9016, 9017]]
    ssh = next(f for f in doc["findings"] if f["rule_ids"][:1] == ["pma-ssh-22"])
    assert ssh["kind"] == "address-mismatch" and ssh["rule_ids"] == ["pma-ssh-22", "fw-ssh-to-pma"]


def test_lint_text_and_clean_exit_0() -> None:
    code, out, _ = run("lint")
    lines = out.splitlines()
    assert code == 1
    assert lines[-1] == "tmna-vlan111: 25 finding(s)"
    assert lines[0].split("\t")[:4] == [
        "missing-firewall-rule", "cilium-health-4240", "tcp", "4240"
    ]  # fmt: skip
    assert run("lint", str(RULES / "valid_mini.yaml")) == (0, "mini: no findings\n", "")
    code, out, _ = run("lint", "--format", "json", str(RULES / "valid_mini.yaml"))
    assert code == 0 and json.loads(out)["findings"] == []


def test_every_rules_command_has_help() -> None:
    for cmd in ("check", "show", "lint"):
        r = CliRunner().invoke(cli, ["rules", cmd, "--help"])
        assert r.exit_code == 0
        assert "--group NAME=CIDR[,CIDR]" in r.stdout
    assert "exit 0 clean, 1 findings, 2 invalid" in CliRunner().invoke(
        cli, ["rules", "lint", "--help"]
    ).stdout.replace("\n", " ").replace("  ", " ")


def test_rules_command_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\nfrom flowaudit.cli import cli\n"
        "for args in (['rules','check','--help'],['rules','show','--help'],"
        "['rules','lint','--help']):\n"
        "    try:\n        cli.main(args, standalone_mode=True)\n"
        "    except SystemExit as e:\n        assert e.code == 0, (args, e.code)\n"
        "    else:\n        raise AssertionError(f'{args}: no exit')\n"
        "print(' '.join(m for m in ('numpy','pyarrow','duckdb','pyshark','pandas','numba',"
        "'flowaudit.matrix') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[-1].split() == []


@pytest.mark.slow
def test_wheel_carries_the_shipped_matrix(tmp_path: Path) -> None:
    """A built (non-editable) wheel holds rules/ as flowaudit/_rules and loads it from there."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-q", "-w", str(dist), str(REPO)],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = dist.glob("flowaudit-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "flowaudit/_rules/tmna-vlan111.yaml" in names
        assert "flowaudit/_rules/README.md" in names
        z.extractall(site)
    probe = (
        "import flowaudit.matrix as fm; m = fm.load_matrix(); "
        "print(fm.shipped_rules_dir()); print(m.name, m.sha256)"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True,
        cwd=tmp_path, env=env,
    ).stdout.splitlines()  # fmt: skip
    assert out == [str(site / "flowaudit" / "_rules"), f"tmna-vlan111 {SHA}"]
