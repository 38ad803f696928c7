"""Baselines: `--baseline PREVIOUS.json` → changes (new / persisting / resolved) in every format.

Captures: the shipped sample, a generated capture of the same behaviour (other ephemeral
ports, another day), the sample with one violation added (crafted frames) and the sample
with one violation's packets removed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pcaptools import drop, load_generator, read_pcap, records_at, tcp_frame, write_pcap
from testpaths import ADMIN, ADMIN_OPT, MIXED

from flowaudit import api
from flowaudit.cli import cli

# one extra violation: node .4 opens TCP 31337 on node .5, which answers RST (REJ)
EXTRA = (111, "10.25.233.4", "10.25.233.5", 6, 31337)
# one violation of the sample to remove: node .4 → PMA .155 SSH (port-not-approved)
REMOVED = (111, "10.25.233.4", "10.25.232.155", 6, 22)


def violation_id(vlan: int | None, src: str, dst: str, proto: int, port: int | None) -> str:
    """The finding id as ARCHITECTURE.md defines it, computed independently of the SQL."""
    parts = ["flowaudit-violation-v1", "-" if vlan is None else str(vlan), src, dst]
    parts += [str(proto), "-" if port is None else str(port)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def ids(result: Any) -> set[str]:
    return set(result.violations.column("finding_id").to_pylist()) | set(
        result.unused_rules.column("finding_id").to_pylist()
    )


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("baseline") / "previous.json"
    result = CliRunner().invoke(cli, ["audit", str(MIXED), *ADMIN_OPT, "--format", "json"])
    assert result.exit_code == 1, result.output
    out.write_text(result.stdout)  # stderr may say the kernels are being built
    return out, api.audit([MIXED], groups=ADMIN)


@pytest.fixture(scope="module")
def added(tmp_path_factory: pytest.TempPathFactory) -> Path:
    header, records = read_pcap(MIXED)
    vlan, src, dst, _, port = EXTRA
    frames = [
        tcp_frame(vlan, src, dst, 40001, port, 0x02),  # SYN
        tcp_frame(vlan, dst, src, port, 40001, 0x14),  # RST+ACK
    ]
    start = records[len(records) // 2][0]
    path = tmp_path_factory.mktemp("added") / "added.pcap"
    extra = list(records_at(start, frames))
    write_pcap(path, header, sorted(records + extra, key=lambda r: (r[0], r[1])))
    return path


@pytest.fixture(scope="module")
def removed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    header, records = read_pcap(MIXED)
    vlan, a, b, proto, port = REMOVED

    def of_finding(k: tuple[int | None, str, str, int, int, int]) -> bool:
        fwd = k[1:3] == (a, b) and k[5] == port
        rev = k[1:3] == (b, a) and k[4] == port
        return k[0] == vlan and k[3] == proto and (fwd or rev)

    kept = drop(records, of_finding)
    assert 0 < len(records) - len(kept) < 40  # the finding's packets only
    path = tmp_path_factory.mktemp("removed") / "removed.pcap"
    write_pcap(path, header, kept)
    return path


@pytest.mark.slow
def test_same_behaviour_other_ports_and_day_nothing_new(
    tmp_path: Path, baseline: tuple[Path, Any]
) -> None:
    gen = load_generator()
    other = tmp_path / "other-day.pcap"
    gen.generate(
        other, packets=3000, seed=7, scenario="mixed", port_seed=99, start="2026-12-01T17:30:00Z"
    )
    path, before = baseline
    now = api.audit([other], groups=ADMIN, baseline=path)
    assert now.changes is not None
    assert now.window_start != before.window_start
    assert now.changes.new == ()
    assert now.changes.resolved == ()
    assert set(now.changes.persisting) == ids(before)
    assert len(now.changes.persisting) == 14 + before.unused_rules.num_rows


def test_one_added_violation_is_exactly_one_new_id(added: Path, baseline: tuple[Path, Any]) -> None:
    path, before = baseline
    now = api.audit([added], groups=ADMIN, baseline=path)
    assert now.changes is not None
    want = violation_id(*EXTRA)
    assert now.changes.new == (want,)
    assert now.changes.resolved == ()
    assert set(now.changes.persisting) == ids(before)
    # new findings first, marked in the JSON
    assert now.violations.column("finding_id")[0].as_py() == want
    doc = now.to_dict()
    first = doc["violations"][0]
    assert (first["finding_id"], first["change"], first["reason"]) == (
        want,
        "new",
        "port-not-approved",
    )
    assert first["states"]["rejected"] == 1
    assert {v["change"] for v in doc["violations"][1:]} == {"persisting"}
    assert doc["changes"]["new"] == [want] and doc["changes"]["resolved"] == []


def test_one_removed_violation_is_exactly_one_resolved_id(
    removed: Path, baseline: tuple[Path, Any]
) -> None:
    path, before = baseline
    now = api.audit([removed], groups=ADMIN, baseline=path)
    assert now.changes is not None
    gone = violation_id(*REMOVED)
    assert gone in set(before.violations.column("finding_id").to_pylist())
    assert now.changes.resolved == (gone,)
    assert now.changes.new == ()
    assert set(now.changes.persisting) == ids(before) - {gone}
    (detail,) = now.changes.resolved_findings
    assert detail["kind"] == "violation"
    assert (detail["src_ip"], detail["dst_ip"], detail["dst_port"]) == REMOVED[1:3] + (22,)
    assert detail["reason"] == "port-not-approved"


@pytest.mark.slow
def test_cli_fail_on_new_and_every_format_carries_changes(
    added: Path, baseline: tuple[Path, Any], tmp_path: Path
) -> None:
    path, _ = baseline
    runner = CliRunner()
    base = ["audit", *ADMIN_OPT, "--baseline", str(path)]
    # the same capture again: findings, but nothing new → exit 0 with --fail-on new
    same = runner.invoke(cli, [*base, str(MIXED), "--fail-on", "new", "--format", "json"])
    assert same.exit_code == 0, same.output
    changes = json.loads(same.output)["changes"]
    assert changes["new"] == [] and changes["resolved"] == []
    assert changes["baseline"]["file"] == "previous.json"
    assert changes["baseline"]["matrix_changed"] is False
    # plain exit codes still mean "findings"
    assert runner.invoke(cli, [*base, str(MIXED)]).exit_code == 1
    want = violation_id(*EXTRA)
    # the added SYN and RST sit at the second of the sample's middle record (see `added`)
    _, records = read_pcap(MIXED)
    added_at = dt.datetime.fromtimestamp(records[len(records) // 2][0], dt.UTC)
    added_at = added_at.strftime("%Y-%m-%d %H:%M:%S")
    new = runner.invoke(cli, [*base, str(added), "--fail-on", "new"])
    assert new.exit_code == 1
    assert "1 new, 46 persisting, 0 resolved; 1 new finding groups" in new.output
    for fmt in ("text", "markdown", "html", "csv", "json"):
        out = tmp_path / f"report.{fmt}"
        r = runner.invoke(cli, [*base, str(added), "--format", fmt, "-o", str(out)])
        assert r.exit_code == 1, (fmt, r.output)
        text = out.read_text()
        assert want in text, fmt
        if fmt == "text":  # the changes table lists the new id; the findings table has it first
            rows = [line for line in text.splitlines() if line.startswith("│ new")]
            assert [c.strip() for c in rows[0].split("│")[1:3]] == ["new", want]
            assert text.index("New finding groups (1)") < text.index("New and resolved")
            assert "New and resolved findings" in text
        if fmt == "csv":  # the groups first, the new one on top; then the findings
            header, first = text.splitlines()[:2]
            assert header.startswith("kind,change,group,id,reason,who,")
            assert first.startswith("group,new,G1,")
            assert ",port-not-approved,nodes → nodes,tcp/31337,1," in first
            lines = text.splitlines()
            header, first = lines[lines.index("") + 1 : lines.index("") + 3]
            assert header.startswith("kind,change,group,id,")
            assert first.startswith(f"violation,new,G1,{want},")
            assert text.splitlines()[-2:] == [
                "kind,change,id,finding,what,last seen",
                f"change,new,{want},violation,port-not-approved: 10.25.233.4 → 10.25.233.5 "
                f"tcp/31337 vlan 111,{added_at}",
            ]
        elif fmt in ("markdown", "html", "text"):
            assert "1 new, 46 persisting, 0 resolved" in text, fmt


def test_fail_on_new_without_baseline_is_a_usage_error() -> None:
    r = CliRunner().invoke(cli, ["audit", str(MIXED), "--fail-on", "new"])
    assert r.exit_code == 2
    assert "--fail-on new needs --baseline" in r.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"schema_version": 1,\n "violations": [1,]}', "bad.json:2:19: the baseline is not JSON"),
        ('{"violations": []}', "bad.json: not a flowaudit JSON report (no schema_version)"),
        ('{"schema_version": 2, "violations": [], "unused_rules": []}', "schema_version 2"),
        (
            '{"schema_version": 1, "violations": [{"id": 1}], "unused_rules": []}',
            "'violations' must be a list of findings with a finding_id",
        ),
        (b"\xff\xfe", "bad.json: byte 0: the baseline is not UTF-8 text"),
    ],
)
def test_bad_baseline_exits_2_naming_the_file(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    bad = tmp_path / "bad.json"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        bad.write_text(content)
    out = tmp_path / "report.json"
    r = CliRunner().invoke(
        cli, ["audit", str(MIXED), "--baseline", str(bad), "--format", "json", "-o", str(out)]
    )
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert "Traceback" not in r.output
    assert not out.exists()


def test_only_new_keeps_the_new_findings_and_the_whole_picture(
    added: Path, baseline: tuple[Path, Any]
) -> None:
    path, before = baseline
    runner = CliRunner()
    args = ["audit", str(added), *ADMIN_OPT, "--baseline", str(path), "--only-new"]
    r = runner.invoke(cli, [*args, "--format", "json"])
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    assert [v["finding_id"] for v in doc["violations"]] == [violation_id(*EXTRA)]
    assert doc["unused_rules"] == []
    assert doc["summary"]["violations"] == 1
    assert doc["summary"]["by_reason"] == {"port-not-approved": 1}
    assert len(doc["changes"]["persisting"]) == 46  # the changes section stays whole
    assert len(doc["coverage"]) == before.coverage.num_rows + 1  # one more cell: nodes→:31337
    # nothing new → exit 0 and empty tables
    same = runner.invoke(
        cli, ["audit", str(MIXED), *ADMIN_OPT, "--baseline", str(path), "--only-new"]
    )
    assert same.exit_code == 0, same.output
    assert "0 new violations" in same.output
    bad = runner.invoke(cli, ["audit", str(MIXED), "--only-new"])
    assert bad.exit_code == 2 and "--only-new needs --baseline" in bad.output


def test_resolved_ids_are_listed_in_text_and_csv(removed: Path, baseline: tuple[Path, Any]) -> None:
    path, _ = baseline
    gone = violation_id(*REMOVED)
    base = ["audit", str(removed), *ADMIN_OPT, "--baseline", str(path)]
    csv_out = CliRunner().invoke(cli, [*base, "--format", "csv"]).output
    assert csv_out.splitlines()[-1] == (
        f"change,resolved,{gone},violation,port-not-approved: 10.25.233.4 → 10.25.232.155 "
        "tcp/22 vlan 111,2026-11-20 08:00:08"
    )
    text = CliRunner().invoke(cli, base).output
    row = next(line for line in text.splitlines() if gone in line)
    assert [c.strip() for c in row.split("│")[1:4]] == ["resolved", gone, "violation"]
