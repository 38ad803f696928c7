"""The Spark backend gives the DuckDB backend's report: the same SQL files, transpiled.

Each audit runs on both backends over the same store; the JSON report (as a dict) must be
equal whole: finding ids, counts, reasons, nearest rules, unused and partly-used rules,
finding groups, coverage, traffic shape. The samples' ground truth pins that the reports
are not trivially equal (both empty).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from testpaths import ADMIN, ADMIN_OPT, APPROVED, DATA, MIXED

from flowaudit import api
from flowaudit.cli import cli

pytestmark = pytest.mark.spark

NETFLOW = [
    DATA / "netflow" / "pcap" / name
    for name in (
        "pmacct-111-IPFIXv10-NFv9-IPv6-IPv4-mix_sources.traffic-00.pcap",
        "graylog-nprobe-netflow9.pcap",
        "ndpi-netflowv9.pcap",
    )
]


def _both(spark: Any, **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    duck = api.audit(**kw).to_dict()
    on_spark = api.audit(backend="spark", spark=spark, **kw).to_dict()
    return duck, on_spark


def _flows_by_reason(report: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in report["violations"]:
        out[v["reason"]] = out.get(v["reason"], 0) + v["flows"]
    return out


def _truth_holds(report: dict[str, Any], capture: Path) -> None:
    """The report counts the sample's flows, and its findings are the generator's labels."""
    truth = json.loads(capture.with_suffix(".truth.summary.json").read_text())
    assert report["window"]["flows"] == truth["flows"]
    want = {k: n for k, n in truth["labels"].items() if k not in ("approved", "control-plane")}
    assert _flows_by_reason(report) == want


def test_mixed_sample_same_report(spark: Any, tmp_path: Path) -> None:
    """(The approved sample, the report without findings, is compared whole in
    test_store_uri_reads_the_files_there: one Spark audit there serves both.)"""
    store = tmp_path / "store"
    api.ingest(MIXED, store)
    duck, on_spark = _both(spark, store=store, groups=ADMIN)
    assert on_spark == duck
    _truth_holds(on_spark, MIXED)
    assert len(on_spark["violations"]) > 10 and on_spark["finding_groups"]
    assert {u["status"] for u in on_spark["unused_rules"]} == {"unused", "partly-used"}


def test_one_million_flows_same_report(spark: Any, store_1m: Path) -> None:
    from benchscripts import load_bench

    duck, on_spark = _both(spark, store=store_1m, groups=ADMIN)
    assert on_spark == duck
    assert on_spark["window"]["flows"] == 1_000_000
    # the builder's ground truth: its last four patterns are the violations, nothing else
    bench = load_bench("bench_audit")
    want = {(bench.HOSTS[s], bench.HOSTS[d], p, port) for s, d, p, port, _ in bench.PATTERNS[-4:]}
    got = {(v["src_ip"], v["dst_ip"], v["protocol"], v["dst_port"]) for v in on_spark["violations"]}
    assert got == want
    assert all(v["flows"] > 1000 for v in on_spark["violations"])


def test_cli_backend_spark_writes_the_duckdb_report(spark: Any, tmp_path: Path) -> None:
    """The same JSON bytes; --since/--until reach Spark as bound timestamps (a window
    inside the capture: some of its flows, not all)."""
    # the CLI's session is the running one (getOrCreate): no second JVM
    out = {}
    window = ["--since", "2026-11-20T08:00:10Z", "--until", "2026-11-20T08:00:40Z"]
    for backend in ("duckdb", "spark"):
        res = CliRunner().invoke(
            cli,
            ["audit", str(MIXED), *ADMIN_OPT, *window, "--format", "json", "-o",
             str(tmp_path / f"{backend}.json"), "--backend", backend],
        )  # fmt: skip
        assert res.exit_code == 1, res.output  # findings
        out[backend] = (tmp_path / f"{backend}.json").read_text()
    assert out["spark"] == out["duckdb"]
    truth = json.loads(MIXED.with_suffix(".truth.summary.json").read_text())
    assert 0 < json.loads(out["spark"])["window"]["flows"] < truth["flows"]


def test_query_backend_spark(spark: Any, tmp_path: Path) -> None:
    store = tmp_path / "store"
    api.ingest(MIXED, store)
    sql = (
        "SELECT protocol, dst_port, count(*) AS n, sum(src_bytes) AS b FROM flows "
        "WHERE vlan_id = 111 GROUP BY ALL ORDER BY n DESC, protocol, dst_port NULLS FIRST"
    )
    duck = api.query(sql, store=store).to_pylist()
    on_spark = api.query(sql, store=store, backend="spark", spark=spark).to_pylist()
    assert on_spark == duck and len(duck) > 5
    rules = "SELECT rule_id, count(*) AS n FROM rules GROUP BY rule_id ORDER BY rule_id"
    assert api.query(rules, store=store, backend="spark", spark=spark).to_pylist() == (
        api.query(rules, store=store).to_pylist()
    )


@pytest.fixture(scope="module")
def approved_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store for the refused queries (each checks it left the store as it was)."""
    store = tmp_path_factory.mktemp("approved") / "store"
    api.ingest(APPROVED, store)
    return store


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM parquet.`/etc/passwd`",
        "SELECT * FROM flowaudit_other_view",
        "SELECT reflect('java.lang.System', 'exit', 1)",
        "SELECT java_method('java.lang.Runtime', 'getRuntime')",
        "SELECT TRANSFORM(flow_id) USING 'cat' AS (x) FROM flows",
        "DROP VIEW flows",
        "SELECT 1; SELECT 2",
    ],
)
def test_query_backend_spark_refuses(spark: Any, approved_store: Path, sql: str) -> None:
    from flowaudit.errors import UsageError

    def files() -> set[tuple[str, int, int]]:
        return {
            (str(p), p.stat().st_size, p.stat().st_mtime_ns)
            for p in approved_store.rglob("*")
            if p.is_file()
        }

    before = files()
    with pytest.raises(UsageError):
        api.query(sql, store=approved_store, backend="spark", spark=spark)
    assert files() == before  # the store the next refused query gets is the same


def test_uncommitted_files_are_never_read(spark: Any, tmp_path: Path) -> None:
    """A flow file no manifest lists (a crashed ingest) is never read: the file list is
    the manifests', not a glob of the directory."""
    import shutil

    store = tmp_path / "store"
    api.ingest(APPROVED, store)
    (f,) = api.open_store(store).flow_files()
    shutil.copy(f, f.with_name("orphan-" + f.name))
    n = "SELECT count(*) AS n FROM flows"
    assert api.query(n, store=store, backend="spark", spark=spark).to_pylist() == (
        api.query(n, store=store).to_pylist()
    )


def test_duckdb_path_imports_no_spark(tmp_path: Path) -> None:
    import subprocess

    code = (
        "import sys, flowaudit\n"
        f"flowaudit.audit([{str(APPROVED)!r}], groups={ADMIN!r})\n"
        "bad = [m for m in ('pyspark', 'py4j', 'sqlglot', 'flowaudit.spark') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


def test_store_uri_reads_the_files_there(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FLOWAUDIT_SPARK_STORE_URI: the manifests (and the checks of the files they list) are
    local, the rows are read at the URI under the same relative paths (file:// here,
    hdfs:// or s3a:// on a cluster). The copy at the URI holds the approved sample's flows
    under the mixed sample's file name, so the report shows which was read: all of it is
    DuckDB's report of the approved sample (the report without findings, on both backends)
    but the captures, which are the local manifests'."""
    import shutil

    mixed, approved = tmp_path / "mixed", tmp_path / "approved"
    api.ingest(MIXED, mixed)
    api.ingest(APPROVED, approved)
    remote = tmp_path / "remote"
    shutil.copytree(mixed, remote)
    (m_file,) = api.open_store(mixed).flow_files()
    (a_file,) = api.open_store(approved).flow_files()
    shutil.copy(a_file, remote / m_file.relative_to(mixed))
    monkeypatch.setenv("FLOWAUDIT_SPARK_STORE_URI", remote.as_uri())
    on_spark = api.audit(store=mixed, groups=ADMIN, backend="spark", spark=spark).to_dict()
    want = api.audit(store=approved, groups=ADMIN).to_dict()
    local = api.audit(store=mixed, groups=ADMIN).to_dict()
    assert on_spark.pop("captures") == local["captures"] != want.pop("captures")
    assert on_spark == want
    _truth_holds(on_spark, APPROVED)
    assert not on_spark["violations"] and on_spark["window"]["flows"] != local["window"]["flows"]


def test_netflow_and_tunnels_same_report(spark: Any, tmp_path: Path) -> None:
    """NetFlow v9/IPFIX records, and VXLAN, GRE and ESP captures, in one store audited with a
    pod allow list: the findings of the exported flows, the overlay section, its findings and
    the encryption limit are the same on both backends (one Spark audit for both kinds)."""
    store = tmp_path / "store"
    for p in NETFLOW:
        api.ingest(p, store, format="netflow")
    overlay = DATA / "overlay"
    for name in ("ndpi-vxlan.pcap", "zeek-gre-sample.pcap", "zeek-ip6_esp.pcap"):
        api.ingest(overlay / name, store)
    rules = tmp_path / "pods.yaml"
    rules.write_text(
        (DATA / "rules" / "vtep-pods.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    duck, on_spark = _both(spark, store=store, rules=rules)
    assert on_spark == duck
    kinds = {c["source_kind"] for c in duck["captures"]}
    assert kinds >= {"netflow9", "pcap"}
    netflow = {c["blake3"] for c in duck["captures"] if c["source_kind"] != "pcap"}
    exported = sum(c["flows"] for c in duck["captures"] if c["blake3"] in netflow)
    # every exported flow is a finding: none has an address in the lab's 192.168.22.0/24
    assert exported > 100 and _flows_by_reason(duck)["out-of-scope-address"] >= exported
    assert len(duck["violations"]) > 10
    assert {o["tunnel"] for o in duck["overlay"]} == {"vxlan", "gre"}
    assert [o["reason"] for o in duck["overlay"]].count("overlay-not-approved") >= 1
    assert duck["encrypted"]["esp_flows"] == 12
