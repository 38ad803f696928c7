"""End to end on the shipped samples: generated VLAN 111 captures with known ground truth.

Each sample has ``<stem>.truth.jsonl`` (one line per flow the generator made, with its
label: ``approved`` plus the seed row, or the violation reason it was built to show).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner
from testpaths import ADMIN, ADMIN_OPT, APPROVED, DATA, MIXED

from flowaudit import api
from flowaudit.audit.result import AuditResult
from flowaudit.cli import cli


def truth(pcap: Path) -> list[dict[str, Any]]:
    lines = pcap.with_suffix(".truth.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _key(d: dict[str, Any], vlan: str = "vlan") -> tuple[Any, ...]:
    return (d[vlan], d["src_ip"], d["dst_ip"], d["protocol"], d["dst_port"])


@pytest.fixture(scope="module")
def mixed_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("store")
    (res,) = api.ingest(MIXED, store)
    assert res.packets == 3000 and not res.already_ingested
    return store


@pytest.fixture(scope="module")
def mixed_audit(mixed_store: Path) -> AuditResult:
    """The sample's audit, run once: each test below checks another part of it."""
    return api.audit(store=mixed_store, groups=ADMIN)


def test_flows_equal_the_ground_truth(mixed_store: Path) -> None:
    got = api.query("SELECT * FROM flows", store=mixed_store).to_pylist()
    want = truth(MIXED)
    assert len(got) == len(want) == 125
    by_key = {
        (g["vlan_id"], g["src_ip"], g["dst_ip"], g["protocol"], g["src_port"], g["dst_port"]): g
        for g in got
    }
    fields = (
        "src_packets",
        "src_bytes",
        "dst_packets",
        "dst_bytes",
        "src_ip_bytes",
        "dst_ip_bytes",
        "tcp_flags_src",
        "tcp_flags_dst",
        "state",
        "direction",
    )
    for t in want:
        g = by_key[
            (t["vlan"], t["src_ip"], t["dst_ip"], t["protocol"], t["src_port"], t["dst_port"])
        ]
        assert {f: g[f] for f in fields} == {f: t[f] for f in fields}, t
        assert g["first_seen"].isoformat().replace("+00:00", "Z") == t["first_seen"]
        assert g["last_seen"].isoformat().replace("+00:00", "Z") == t["last_seen"]


def test_violations_equal_the_ground_truth(mixed_audit: AuditResult) -> None:
    result = mixed_audit
    want: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    for t in truth(MIXED):
        if t["label"] not in ("approved", "control-plane"):
            want[_key(t)].add(t["label"])
    got = {_key(v, "vlan_id"): v["reason"] for v in result.violations.to_pylist()}
    assert got == {k: v.pop() for k, v in want.items() if len(v) == 1}
    assert len(got) == len(want) == 14
    assert result.stats["by_reason"] == {
        "off-vlan": 2,
        "out-of-scope-address": 2,
        "port-not-approved": 2,
        "protocol-not-approved": 3,
        "reverse-direction": 2,
        "unknown-destination": 1,
        "unknown-source": 2,
    }


def test_control_plane_equals_the_ground_truth(mixed_store: Path, mixed_audit: AuditResult) -> None:
    """The samples' IPv6 link-local noise (ND, mDNS) is listed apart, not as violations."""
    result = mixed_audit
    assert result.control_plane is not None
    cp = [t for t in truth(MIXED) if t["label"] == "control-plane"]
    got = {(c["src_ip"], c["dst_ip"], c["protocol"]): c for c in result.control_plane.to_pylist()}
    assert set(got) == {(t["src_ip"], t["dst_ip"], t["protocol"]) for t in cp}
    for t in cp:
        c = got[(t["src_ip"], t["dst_ip"], t["protocol"])]
        assert c["kind"] == ("mdns" if t["protocol"] == 17 else "ipv6-nd")
        assert (c["flows"], c["packets"]) == (1, t["src_packets"] + t["dst_packets"])
    assert result.stats["control_plane_flows"] == len(cp) == 4
    # --strict: the same conversations are violations with reason control-plane
    strict = api.audit(store=mixed_store, groups=ADMIN, strict=True)
    assert strict.control_plane is not None and strict.control_plane.num_rows == 0
    reasons = {_key(v, "vlan_id"): v["reason"] for v in strict.violations.to_pylist()}
    assert {k for k, r in reasons.items() if r == "control-plane"} == {_key(t) for t in cp}
    assert strict.violations.num_rows == 18


def test_traffic_shape_of_the_sample(mixed_audit: AuditResult) -> None:
    result = mixed_audit
    assert result.traffic_shape is not None
    cols = ("src_side", "dst_side", "flows", "approved_flows", "unapproved_flows")
    rows = [
        tuple(r[c] for c in cols) + (r["control_plane_flows"],)
        for r in result.traffic_shape.to_pylist()
    ]
    assert rows == [
        ("nodes", "pma_155", 17, 15, 2, 0),
        ("nodes", "nodes", 83, 79, 4, 0),
        ("admin_workstations", "pma_155", 7, 5, 2, 0),
        ("pma_155", "nodes", 7, 6, 1, 0),
        ("site", "nodes", 2, 0, 2, 0),
        ("nodes", "site", 1, 0, 1, 0),
        ("admin_workstations", "pma_252", 2, 2, 0, 0),
        ("link-local", "multicast", 4, 0, 0, 4),
        ("nodes", "internet", 2, 0, 2, 0),
    ]
    assert sum(r[2] for r in rows) == result.flows == 125
    # the not-approved flows are exactly the violations' flows
    assert sum(r[4] for r in rows) == result.stats["violation_flows"] == 14


def test_finding_groups_partition_the_violations(mixed_audit: AuditResult) -> None:
    result = mixed_audit
    assert result.finding_groups is not None
    groups = result.finding_groups.to_pylist()
    members = [f for g in groups for f in g["findings"]]
    ids = result.violations.column("finding_id").to_pylist()
    assert sorted(members) == sorted(ids) and len(set(members)) == len(members)
    by_id = {v["finding_id"]: v for v in result.violations.to_pylist()}
    for g in groups:
        for f in g["findings"]:
            v = by_id[f]
            assert v["group_id"] == g["group_id"]
            assert (v["reason"], v["protocol"], v["dst_port"]) == (
                g["reason"], g["protocol"], g["dst_port"]
            )  # fmt: skip
        assert g["flows"] == sum(by_id[f]["flows"] for f in g["findings"])
    keys = ("reason", "src_side", "dst_side", "protocol", "dst_port")
    assert [(*(g[k] for k in keys), len(g["findings"])) for g in groups] == [
        ("unknown-source", "site", "nodes", 6, 10250, 2),
        ("off-vlan", "nodes", "nodes", 6, 10250, 1),
        ("off-vlan", "admin_workstations", "pma_155", 6, 443, 1),
        ("unknown-destination", "nodes", "site", 6, 443, 1),
        ("port-not-approved", "nodes", "nodes", 6, 2381, 1),
        ("protocol-not-approved", "admin_workstations", "pma_155", 1, 0, 1),
        ("protocol-not-approved", "nodes", "nodes", 1, 0, 1),
        ("port-not-approved", "nodes", "pma_155", 6, 22, 1),
        ("out-of-scope-address", "nodes", "internet", 17, 53, 2),
        ("reverse-direction", "nodes", "pma_155", 6, 6443, 1),
        ("protocol-not-approved", "nodes", "nodes", 17, 2379, 1),
        ("reverse-direction", "pma_155", "nodes", 6, 443, 1),
    ]
    assert result.stats["finding_groups"] == 12


def _rule_admits(m: Any, r: Any, t: dict[str, Any]) -> bool:
    """An independent oracle (plain Python, no DuckDB): does rule r admit truth flow t?"""
    from flowaudit.matrix.model import parse_address

    def member(ip: str, groups: tuple[str, ...]) -> bool:
        a = ipaddress.ip_address(ip)
        n = (0xFFFF << 32 | int(a)) if a.version == 4 else int(a)
        specs = [s for g in groups for s in m.groups[g].addresses]
        return any(lo <= n <= hi for (lo, hi), _ in map(parse_address, specs))

    if t["protocol"] not in r.protocols:
        return False
    if not any(lo <= t["dst_port"] <= hi for lo, hi in r.ports):
        return False
    fwd = member(t["src_ip"], r.from_groups) and member(t["dst_ip"], r.to_groups)
    rev = member(t["src_ip"], r.to_groups) and member(t["dst_ip"], r.from_groups)
    return fwd or (r.bidirectional and rev)


def test_unused_rules_follow_the_ground_truth(mixed_audit: AuditResult) -> None:
    result = mixed_audit
    m = api.load_matrix(groups=ADMIN)
    approved = [t for t in truth(MIXED) if t["label"] == "approved"]
    used = {r.id for r in m.rules if any(_rule_admits(m, r, t) for t in approved)}
    unused = {u["rule_id"] for u in result.unused_rules.to_pylist() if u["status"] == "unused"}
    # a rule is reported unused (for every protocol) exactly when no truth flow exercised it
    fully_unused = {r.id for r in m.rules if r.id not in used}
    assert unused == fully_unused
    # and every approved flow's seed row names a rule that is not unused
    for t in approved:
        # the generator names nested headings "Parent / Child"; the matrix keeps the child
        table = t["seed_row"].rpartition(": ")[0]
        names = {table, table.rpartition(" / ")[2]}
        assert any(r.provenance.table in names and r.id in used for r in m.rules), t


def test_approved_only_sample_has_no_violation() -> None:
    result = api.audit([APPROVED], groups=ADMIN)
    assert result.violations.num_rows == 0
    assert result.flows == len(truth(APPROVED))


# ----------------------------------------------------------------------- CLI
def test_cli_audit_json_exit_1_on_findings() -> None:
    r = CliRunner().invoke(cli, ["audit", str(MIXED), *ADMIN_OPT, "--format", "json"])
    assert r.exit_code == 1, r.output
    d = json.loads(r.stdout)
    assert d["schema_version"] == 1 and len(d["violations"]) == 14
    assert d["captures"][0]["name"] == "vlan111-mixed.pcap"


def test_cli_audit_formats(tmp_path: Path) -> None:
    for fmt, marker in (
        ("markdown", "## Traffic outside the approved matrix (14)"),
        ("csv", "kind,group,id,reason"),
        ("html", "<!DOCTYPE html>"),
        ("text", "Traffic outside the approved matrix (14)"),
    ):
        out = tmp_path / f"r.{fmt}"
        r = CliRunner().invoke(
            cli, ["audit", str(MIXED), *ADMIN_OPT, "--format", fmt, "-o", str(out)]
        )
        assert r.exit_code == 1, r.output
        assert marker in out.read_text()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_ingest_then_audit_store_and_reingest(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    runner = CliRunner()
    r = runner.invoke(cli, ["ingest", str(APPROVED), "--store", store])
    assert r.exit_code == 0, r.output
    assert "vlan111-approved.pcap: 1,500 packets, 85 flows" in r.stderr
    r = runner.invoke(cli, ["ingest", str(APPROVED), "--store", store])
    assert r.exit_code == 0 and "already in the store" in r.stderr
    r = runner.invoke(
        cli, ["query", "SELECT count(*) AS n FROM flows", "--store", store, "--format", "csv"]
    )
    assert r.exit_code == 0 and r.stdout == "n\n85\n"
    r = runner.invoke(cli, ["audit", "--store", store, *ADMIN_OPT, "--format", "json"])
    d = json.loads(r.stdout)
    assert d["violations"] == [] and d["window"]["flows"] == 85
    assert r.exit_code == (1 if d["unused_rules"] else 0)


def test_concurrent_ingests_lose_nothing(tmp_path: Path) -> None:
    store = tmp_path / "s"
    cmd = [sys.executable, "-m", "flowaudit", "ingest", "--store", str(store), "-q"]
    procs = [subprocess.Popen([*cmd, str(p)]) for p in (MIXED, APPROVED, MIXED)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    n = api.query("SELECT count(*) AS n FROM flows", store=store).column("n")[0].as_py()
    assert n == 125 + 85
    assert len(api.open_store(store).captures()) == 2
    assert not (store / ".tmp").exists() or list((store / ".tmp").iterdir()) == []


def test_jobs_ingest_many_captures_at_once_into_one_store(tmp_path: Path) -> None:
    """--jobs: worker processes, one store; a capture given twice adds nothing the second
    time; the flows are those of a serial ingest, byte for byte."""
    runner = CliRunner()
    serial, parallel = str(tmp_path / "serial"), str(tmp_path / "parallel")
    inputs = [str(MIXED), str(APPROVED), str(MIXED), str(DATA / "pcaps" / "zeek-ssh.pcap")]
    r = runner.invoke(cli, ["ingest", "--store", parallel, "--jobs", "3", *inputs])
    assert r.exit_code == 0, r.output
    lines = [x for x in r.stderr.splitlines() if not x.startswith("flowaudit: warning:")]
    assert len(lines) == 4 and lines[1].startswith("vlan111-approved.pcap: ")
    # the two copies of the mixed sample race for its lock: whichever comes second (in
    # either input position) adds nothing
    mixed = sorted(x.startswith("vlan111-mixed.pcap: 3,000 packets") for x in (lines[0], lines[2]))
    assert mixed == [False, True]
    assert sum("already in the store" in line for line in lines) == 1
    assert sum("already in the store" in x for x in (lines[0], lines[2])) == 1
    r = runner.invoke(cli, ["ingest", "--store", serial, "--jobs", "1", *inputs])
    assert r.exit_code == 0, r.output
    q = "SELECT * EXCLUDE (date) FROM flows ORDER BY capture_id, flow_id, first_seen"
    assert api.query(q, store=parallel).equals(api.query(q, store=serial))
    assert len(api.open_store(parallel).captures()) == 3
    assert not (Path(parallel) / ".tmp").exists() or not any((Path(parallel) / ".tmp").iterdir())
    # again: everything is known, nothing added
    r = runner.invoke(cli, ["ingest", "--store", parallel, "--jobs", "2", *inputs])
    assert r.exit_code == 0 and r.stderr.count("already in the store") == 4


def test_jobs_failure_is_exit_2_and_keeps_the_other_captures(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all\n" * 50)
    store = tmp_path / "s"
    r = CliRunner().invoke(cli, ["ingest", "--store", str(store), "-j", "2", str(MIXED), str(bad)])
    assert r.exit_code == 2 and "bad.pcap" in r.stderr and "Traceback" not in r.output
    # the good capture committed whole (as in a serial run), nothing half-written
    recs = api.open_store(store).captures()
    assert [Path(rec.path).name for rec in recs] == ["vlan111-mixed.pcap"]
    assert recs[0].flows == 125


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "args, message",
    [
        (["audit", "--store", "{tmp}/nope"], "no flow store here"),
        (["audit", "--store", "{tmp}/empty"], "the flow store is empty"),
        (["audit", "--store", "{tmp}/notastore"], "not a flow store"),
        (["audit", "{tmp}/notacapture.pcap"], "not a pcap or pcapng capture"),
        (
            ["audit", str(MIXED), "--since", "2026-11-21T00:00Z", "--until", "2026-11-20T00:00Z"],
            "is not before --until",
        ),
        (["audit", str(MIXED), "--rules", "{tmp}/bad.yaml"], "bad.yaml:"),
        (["audit", str(MIXED), "--since", "yesterday"], "not an ISO-8601 time"),
        (["query", "DELETE FROM flows", "--store", "{tmp}/empty"], "only one read-only SELECT"),
    ],
)
def test_bad_input_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty" / "manifest").mkdir(parents=True)
    (tmp_path / "notastore").mkdir()
    (tmp_path / "notacapture.pcap").write_bytes(b"GET / HTTP/1.1\r\n" * 10)
    (tmp_path / "bad.yaml").write_text("name: x\nrules: [\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = CliRunner().invoke(cli, argv)
    assert r.exit_code == 2, (r.output, r.exception)
    assert message in r.stderr
    assert "Traceback" not in r.output


def test_ingest_refuses_a_bad_matrix_and_commits_nothing(tmp_path: Path) -> None:
    """The matrix loads while the capture's hash runs; a bad one still stops the ingest
    with exit 2 before anything is committed, also when the capture is already known."""
    (tmp_path / "bad.yaml").write_text("name: x\nrules: [\n")
    store = tmp_path / "s"
    bad = ["--rules", str(tmp_path / "bad.yaml")]
    r = CliRunner().invoke(cli, ["ingest", "-q", "--store", str(store), str(MIXED), *bad])
    assert r.exit_code == 2 and "bad.yaml:" in r.stderr and "Traceback" not in r.output
    assert api.open_store(store).captures() == []
    assert not list(store.glob("flows/*/*.parquet"))
    ok = CliRunner().invoke(cli, ["ingest", "-q", "--store", str(store), str(MIXED)])
    assert ok.exit_code == 0, ok.output
    again = CliRunner().invoke(cli, ["ingest", "-q", "--store", str(store), str(MIXED), *bad])
    assert again.exit_code == 2 and "bad.yaml:" in again.stderr
    assert [rec.flows for rec in api.open_store(store).captures()] == [125]


def test_empty_flows_table_has_schema(tmp_path: Path) -> None:
    (tmp_path / "s" / "manifest").mkdir(parents=True)
    t = api.query("SELECT * FROM flows", store=tmp_path / "s")
    assert isinstance(t, pa.Table) and t.num_rows == 0 and "flow_id" in t.column_names


@pytest.mark.tshark
def test_fast_and_tshark_engines_agree_on_the_samples(tmp_path: Path) -> None:
    cols = (
        "vlan_id, src_ip, dst_ip, protocol, src_port, dst_port, first_seen, last_seen, "
        "src_packets, src_bytes, dst_packets, dst_bytes, tcp_flags_src, tcp_flags_dst, "
        "state, direction, flow_id"
    )
    for sample in (MIXED, APPROVED):
        tables = []
        for engine in ("fast", "tshark"):
            store = tmp_path / f"{sample.stem}-{engine}"
            (res,) = api.ingest(sample, store, engine=engine)
            assert res.reader == engine
            tables.append(
                api.query(f"SELECT {cols} FROM flows ORDER BY flow_id, first_seen", store=store)
            )
        assert tables[0].num_rows == len(truth(sample))
        assert tables[0].equals(tables[1])


def test_same_behaviour_other_ports_and_times_same_finding_ids(tmp_path: Path) -> None:
    """Two generated captures of the same behaviour, other ephemeral ports and another day."""
    from pcaptools import load_generator

    gen = load_generator()
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    gen.generate(a, packets=3000, seed=7, scenario="mixed")
    gen.generate(
        b, packets=3000, seed=7, scenario="mixed", port_seed=99, start="2026-12-01T17:30:00Z"
    )
    sa, sb = tmp_path / "sa", tmp_path / "sb"
    ra = api.audit([a], store=sa, groups=ADMIN)
    rb = api.audit([b], store=sb, groups=ADMIN)
    assert ra.window_start is not None and rb.window_start is not None
    assert rb.window_start - ra.window_start > dt.timedelta(days=10)
    q = "SELECT list(src_port ORDER BY src_port) AS p FROM flows WHERE protocol = 6"
    assert api.query(q, store=sa).to_pylist() != api.query(q, store=sb).to_pylist()
    ids_a = sorted(ra.violations.column("finding_id").to_pylist())
    ids_b = sorted(rb.violations.column("finding_id").to_pylist())
    assert len(ids_a) == 14 and ids_a == ids_b
    assert sorted(ra.unused_rules.column("finding_id").to_pylist()) == sorted(
        rb.unused_rules.column("finding_id").to_pylist()
    )
