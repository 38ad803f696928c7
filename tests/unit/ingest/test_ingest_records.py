"""`flowaudit ingest --format ...` for flow records: CLI, manifest, idempotence, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from testpaths import DATA

from flowaudit import api
from flowaudit.cli import cli
from flowaudit.store import FlowStore

NFCAPD = DATA / "records" / "nfcapd"
HUBBLE = DATA / "records" / "hubble"
NETFLOW = DATA / "netflow" / "pcap"


def run(*args: str) -> object:
    return CliRunner().invoke(cli, ["ingest", *args])


def _kinds(store: Path) -> list[dict[str, object]]:
    q = "SELECT source_kind, count(*) AS n FROM flows GROUP BY 1 ORDER BY 1"
    return api.query(q, store=store).to_pylist()


@pytest.mark.nfdump
def test_auto_detects_records_by_content(tmp_path: Path) -> None:
    store = tmp_path / "s"
    r = run(
        "--store",
        str(store),
        str(NFCAPD / "chrispassas-nfcapd.sample"),
        str(HUBBLE / "hubble-otel-basic-sample-400-tcp-flows.json"),
    )
    assert r.exit_code == 0, r.output
    assert "chrispassas-nfcapd.sample: 3,018 records, 2,551 flows" in r.stderr
    assert _kinds(store) == [
        {"source_kind": "hubble", "n": 400},
        {"source_kind": "nfcapd", "n": 2551},
    ]
    recs = {Path(c.path).name: c for c in FlowStore(store).captures()}
    assert recs["chrispassas-nfcapd.sample"].packets == 3018  # records read
    assert recs["hubble-otel-basic-sample-400-tcp-flows.json"].source_kind == "hubble"
    ids = api.query("SELECT DISTINCT capture_id FROM flows ORDER BY 1", store=store)
    assert sorted(ids.column("capture_id").to_pylist()) == sorted(c.blake3 for c in recs.values())


def test_netflow_inside_a_pcap_is_explicit(tmp_path: Path) -> None:
    pcap = NETFLOW / "graylog-netgraph-netflow5.pcap"
    store = tmp_path / "s"
    # without --format it is a packet capture of export traffic (UDP flows to the collector)
    assert run("--store", str(store), str(pcap)).exit_code == 0
    assert {k["source_kind"] for k in _kinds(store)} == {"pcap"}
    store2 = tmp_path / "s2"
    r = run("--store", str(store2), "--format", "netflow", str(pcap))
    assert r.exit_code == 0, r.output
    assert "graylog-netgraph-netflow5.pcap: 120 records, 67 flows" in r.stderr
    assert _kinds(store2) == [{"source_kind": "netflow5", "n": 67}]


@pytest.mark.nfdump
def test_nfcapd_directory_reads_only_new_files(tmp_path: Path) -> None:
    d = tmp_path / "collector"
    d.mkdir()
    shutil.copy(NFCAPD / "chrispassas-nfcapd-small-lzo", d / "nfcapd.201908121850")
    store = tmp_path / "s"
    r = run("--store", str(store), "--format", "nfcapd", str(d))
    assert r.exit_code == 0, r.output
    assert len(FlowStore(store).captures()) == 1
    shutil.copy(NFCAPD / "chrispassas-nfcapd.sample", d / "nfcapd.202301251835")
    r = run("--store", str(store), "--format", "nfcapd", str(d))
    assert r.exit_code == 0, r.output
    assert "nfcapd.202301251835: 3,018 records" in r.stderr
    assert "nfcapd.201908121850" not in r.stderr  # not read again
    assert len(FlowStore(store).captures()) == 2
    s = api.query("SELECT max(sampling) AS m FROM flows", store=store).to_pylist()
    assert s == [{"m": 3000}]


@pytest.mark.nfdump
def test_corrupt_nfcapd_is_exit_2_and_adds_nothing(tmp_path: Path) -> None:
    store = tmp_path / "s"
    r = run("--store", str(store), str(NFCAPD / "chrispassas-nfcapd-corrupt"))
    assert r.exit_code == 2
    assert "chrispassas-nfcapd-corrupt" in r.stderr and "Traceback" not in r.output
    assert FlowStore(store).captures() == []


def test_unknown_content_is_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("hello\n")
    r = run("--store", str(tmp_path / "s"), str(f))
    assert r.exit_code == 2
    assert "notes.txt: not a pcap/pcapng capture, nfcapd file, Zeek conn.log" in r.stderr
    assert "--format netflow" in r.stderr


def test_record_file_reingest_adds_nothing(tmp_path: Path) -> None:
    f = HUBBLE / "hubble-otel-basic-sample-10-flows.json"
    (a,) = api.ingest(f, tmp_path)
    (b,) = api.ingest(f, tmp_path)
    assert (a.flows, a.already_ingested, b.already_ingested) == (10, False, True)


@pytest.mark.nfdump
def test_empty_nfcapd_warns_and_zero_byte_file_is_exit_2(tmp_path: Path) -> None:
    r = run("--store", str(tmp_path / "s"), str(NFCAPD / "chrispassas-nfcapd-empty"))
    assert r.exit_code == 0
    assert "chrispassas-nfcapd-empty: contains no flow records (nfcapd)" in r.stderr
    assert "chrispassas-nfcapd-empty: 0 records, 0 flows" in r.stderr
    zero = tmp_path / "nfcapd.202611260000"
    zero.write_bytes(b"")
    r = run("--store", str(tmp_path / "s"), "--format", "nfcapd", str(zero))
    assert r.exit_code == 2
    assert "nfcapd.202611260000: not an nfcapd file" in r.stderr
