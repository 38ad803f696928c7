"""Ingest end to end: captures → store, broken files, the manifest, atomicity."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from testpaths import DATA

from flowaudit import api
from flowaudit.cli import cli
from flowaudit.errors import CaptureError
from flowaudit.store import FlowStore

PCAPS = DATA / "pcaps"


def ingest_cli(store: Path, *captures: Path) -> object:
    return CliRunner().invoke(cli, ["ingest", "--store", str(store), *map(str, captures)])


def test_manifest_records_the_capture(tmp_path: Path) -> None:
    (res,) = api.ingest(PCAPS / "zeek-ssh.pcap", tmp_path)
    assert (res.packets, res.flows, res.skipped, res.reader) == (1797, 25, 0, "fast")
    (rec,) = FlowStore(tmp_path).captures()
    assert rec.blake3 == res.blake3 and len(rec.blake3) == 64
    assert (rec.packets, rec.flows, rec.source_kind) == (1797, 25, "pcap")
    assert rec.first_seen is not None and rec.first_seen.startswith("2011-")
    data = json.loads((tmp_path / "manifest" / f"{rec.blake3}.json").read_text())
    assert data["flowaudit_version"] == "0.1.0"
    # Hive partitions by the flows' first-seen date, one file per chunk and date
    assert all(f.startswith("flows/date=") for f in rec.files)
    flows = api.query(
        "SELECT count(*) AS n, count(DISTINCT capture_id) AS c FROM flows", store=tmp_path
    ).to_pylist()
    assert flows == [{"n": 25, "c": 1}]


def test_gzip_capture(tmp_path: Path) -> None:
    (res,) = api.ingest(PCAPS / "zeek-echo-connections.pcap.gz", tmp_path)
    assert (res.packets, res.flows) == (82582, 500)


@pytest.mark.parametrize(
    "name, packets, flows, skipped",
    [
        ("zeek-empty.pcap", 0, 0, 0),
        ("tcpdump-empty.pcapng", 0, 0, 0),
        ("zeek-trunc-hdr.pcap", 1, 0, 1),
        ("zeek-ip4-trunc.pcap", 1, 0, 1),
    ],
)
def test_empty_and_truncated_headers(
    tmp_path: Path, name: str, packets: int, flows: int, skipped: int
) -> None:
    r = ingest_cli(tmp_path / "s", PCAPS / name)
    assert r.exit_code == 0, r.output
    assert f"{name}: {packets:,} packets, {flows:,} flows" in r.stderr
    assert f"{skipped:,} skipped" in r.stderr


def test_cut_mid_record_keeps_what_was_read(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((PCAPS / "zeek-ssh.pcap").read_bytes()[:5000])
    r = ingest_cli(tmp_path / "s", cut)
    assert r.exit_code == 0, r.output
    assert "warning: " in r.stderr and "cut.pcap: truncated at byte 4586" in r.stderr
    assert "(22 packets read)" in r.stderr
    assert "cut.pcap: 22 packets, 1 flows" in r.stderr
    (rec,) = FlowStore(tmp_path / "s").captures()
    assert rec.packets == 22 and any("truncated at byte 4586" in w for w in rec.warnings)


def test_nothing_readable_is_exit_2_and_adds_nothing(tmp_path: Path) -> None:
    r = ingest_cli(tmp_path / "s", PCAPS / "ndpi-fuzz-2021-10-13.cut-short.pcap")
    assert r.exit_code == 2
    assert "truncated at byte 24" in r.stderr and "Traceback" not in r.output
    assert FlowStore(tmp_path / "s").captures() == []


@pytest.mark.parametrize("content", [b"", b"\x00" * 100, b"not a capture at all\n" * 50])
def test_not_a_capture_is_exit_2(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(content)
    r = ingest_cli(tmp_path / "s", bad)
    assert r.exit_code == 2
    assert "bad.pcap" in r.stderr
    assert "byte 0" in r.stderr or "offset 0" in r.stderr


def test_bad_timestamps_are_kept_with_a_warning(tmp_path: Path) -> None:
    r = ingest_cli(tmp_path / "s", PCAPS / "tcpdump-timestamp_invalid_micro.pcap")
    assert r.exit_code == 0
    assert "sub-second timestamp field" in r.stderr
    assert "3 packets" in r.stderr


@pytest.mark.tshark
def test_auto_engine_falls_back_to_tshark_for_undecoded_link_types(tmp_path: Path) -> None:
    nflog = DATA / "tshark" / "zeek-nflog-http.pcap"
    (res,) = api.ingest(nflog, tmp_path)
    assert (res.reader, res.packets, res.flows, res.skipped) == ("tshark", 13, 1, 0)


def test_unsupported_link_type_is_counted(tmp_path: Path) -> None:
    r = ingest_cli(tmp_path / "s", PCAPS / "tcpdump-unsupported-link-type-160.pcap")
    assert r.exit_code == 0
    assert "1 packets, 0 flows" in r.stderr and "1 skipped" in r.stderr


def test_failed_ingest_leaves_nothing_visible(tmp_path: Path) -> None:
    store = FlowStore(tmp_path / "s")

    def boom(done: int, total: int) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        api.ingest(PCAPS / "zeek-ssh.pcap", store, progress=boom)
    assert store.captures() == []
    assert list((tmp_path / "s" / "flows").rglob("*.parquet")) == []
    assert not (tmp_path / "s" / ".tmp").exists() or not any((tmp_path / "s" / ".tmp").iterdir())
    # and a second attempt ingests normally
    (res,) = api.ingest(PCAPS / "zeek-ssh.pcap", store)
    assert res.flows == 25 and not res.already_ingested


def test_missing_flow_file_is_reported(tmp_path: Path) -> None:
    api.ingest(PCAPS / "zeek-ssh.pcap", tmp_path)
    for f in (tmp_path / "flows").rglob("*.parquet"):
        f.unlink()
    r = CliRunner().invoke(cli, ["audit", "--store", str(tmp_path)])
    assert r.exit_code == 2 and "missing" in r.stderr


def test_capture_error_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.pcapng"
    shutil.copy(PCAPS / "zeek-empty.pcap", bad)
    bad.write_bytes(bad.read_bytes()[:10])
    with pytest.raises(CaptureError, match="x.pcapng"):
        api.ingest(bad, tmp_path / "s")


def test_many_spills_in_the_background_lose_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowrows import flow, make_flows

    import flowaudit.store as store_mod
    from flowaudit.store import CaptureRecord

    monkeypatch.setattr(store_mod, "FLOW_ROWS_PER_FILE", 100)
    store = FlowStore(tmp_path)
    writer = store.begin(capture_id=lambda: "c" * 64)
    for chunk in range(5):  # 5 tables of 120 flows, a day apart: 5 spills, 5+ files
        rows = [flow("10.25.233.4", "10.25.233.5", 2379, sport=1000 + i, t=chunk * 86400 + i)
                for i in range(120)]  # fmt: skip
        writer.add(make_flows(rows))
    rec = CaptureRecord(
        blake3="c" * 64, path="x", size=0, source_kind="pcap", reader="test", packets=0,
        flows=0, skipped=0, first_seen=None, last_seen=None, flowaudit_version="t",
        ingested_at="2026-11-26T00:00:00Z",
    )  # fmt: skip
    assert writer.commit(rec)
    (got,) = store.captures()
    assert len(got.files) == 5 and got.flows == 600
    assert got.first_seen == "2026-11-20T08:00:00Z"
    q = "SELECT count(*) AS n, count(DISTINCT capture_id) AS c, min(capture_id) AS id FROM flows"
    assert api.query(q, store=tmp_path).to_pylist() == [{"n": 600, "c": 1, "id": "c" * 64}]
    assert not (tmp_path / ".tmp").exists() or not any((tmp_path / ".tmp").iterdir())


def test_decoding_ahead_keeps_order_and_passes_failures_both_ways() -> None:
    import threading

    from flowaudit.ingest import _decoded_ahead

    assert list(_decoded_ahead(iter(range(100)))) == list(range(100))

    def broken() -> Iterator[int]:
        yield 1
        raise CaptureError("x.pcap: truncated at byte 99")

    with pytest.raises(CaptureError, match="byte 99"):
        list(_decoded_ahead(broken()))
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            closed.set()

    gen = _decoded_ahead(endless())
    assert next(gen) == 1
    gen.close()  # the consumer failed: the reader stops and closes its source
    assert closed.is_set()
    assert not any(t.name == "flowaudit-decode" for t in threading.enumerate())
