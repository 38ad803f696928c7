"""Evidence slices: each finding's pcap holds exactly its flows' packets (re-ingested),
frame bytes unchanged; pcapng and gzip inputs; errors exit 2 and leave nothing behind."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import duckdb
import numpy as np
import pytest
from click.testing import CliRunner
from testpaths import DATA, MIXED

from flowaudit import api
from flowaudit.errors import UsageError
from flowaudit.evidence.slicer import (
    SlicePart,
    count_records,
    iter_records,
    write_slice,
)
from flowaudit.evidence.write import (
    EvidenceResult,
    EvidenceSource,
    resolve_finding,
    write_evidence,
)
from flowaudit.kernels.layout import FRAG_FIRST, FRAG_HAS_L4, FRAG_IS_FRAGMENT
from flowaudit.packets.batch import ReadStats
from flowaudit.packets.pcap import iter_packets, read_all
from flowaudit.report.json_ import violation_dicts

EV = DATA / "evidence"
GROUPS = {"admin_workstations": ["10.25.100.10", "10.25.100.11"]}


def _store_flows(slice_path: Path, store: Path) -> list[tuple[Any, ...]]:
    api.ingest(slice_path, store)
    files = [str(f) for f in api.open_store(store).flow_files()]
    if not files:
        return []
    sql = (
        "SELECT flow_id, src_packets, dst_packets, src_bytes, dst_bytes, state "
        "FROM read_parquet($p) ORDER BY ALL"
    )
    return duckdb.connect().sql(sql, params={"p": files}).fetchall()


def _check_exact(src: EvidenceSource, out: Path, work: Path) -> list[EvidenceResult]:
    """Slice every violation; prove by re-ingest that each slice is exactly its flows."""
    results = []
    viols = {v["finding_id"]: v for v in violation_dicts(src.result)}
    for fid, v in viols.items():
        res = src.write(fid, out, enrich=False)
        doc = json.loads(res.manifest_path.read_text())
        flows = doc["flows"]
        want = sorted(
            (f["flow_id"], f["src_packets"], f["dst_packets"], f["src_bytes"], f["dst_bytes"],
             f["state"]) for f in flows
        )  # fmt: skip
        assert _store_flows(res.pcap_path, work / fid) == want, fid
        packets = sum(f["src_packets"] + f["dst_packets"] for f in flows)
        assert len(flows) == v["flows"] == res.flows
        assert packets == v["packets"] == res.packets == doc["slice"]["packets"]
        assert sum(f["src_bytes"] + f["dst_bytes"] for f in flows) == v["bytes"]
        assert count_records(res.pcap_path) == packets  # no other packet in the slice
        assert doc["finding"] == v
        assert doc["slice"]["sha256"] == hashlib.sha256(res.pcap_path.read_bytes()).hexdigest()
        assert doc["slice"]["size"] == res.pcap_path.stat().st_size
        results.append(res)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp file left
    return results


def _records(path: Path) -> list[bytes]:
    return [r.data or b"" for r in iter_records(path)]


def _subsequence(part: list[bytes], whole: list[bytes]) -> bool:
    it = iter(whole)
    return all(any(x == y for y in it) for x in part)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EvidenceSource, Path]]:
    out = tmp_path_factory.mktemp("mixed-evidence")
    with EvidenceSource([MIXED], groups=GROUPS) as src:
        yield src, out


@pytest.mark.slow
def test_every_violation_of_the_sample_is_sliced_exactly(
    mixed: tuple[EvidenceSource, Path], tmp_path: Path
) -> None:
    src, out = mixed
    results = _check_exact(src, out, tmp_path)
    assert len(results) == 14
    assert sum(r.packets for r in results) == 186
    # VLAN tags and all: every slice's frames are the capture's frames, bytes unchanged
    whole = _records(MIXED)
    for r in results:
        assert _subsequence(_records(r.pcap_path), whole), r.finding_id
    doc = json.loads(results[0].manifest_path.read_text())
    # the capture id (BLAKE3) and, for tools that know only it, the SHA-256
    assert doc["captures"][0]["blake3"] == blake3.blake3(MIXED.read_bytes()).hexdigest()
    assert doc["captures"][0]["sha256"] == hashlib.sha256(MIXED.read_bytes()).hexdigest()
    assert doc["matrix"]["sha256"] == src.result.rules_digest
    assert doc["slice"]["format"] == "pcap" and doc["slice"]["link_types"][0]["id"] == 1
    assert doc["first_packet"] <= doc["last_packet"]
    assert doc["enrichment"] is None and "disabled" in doc["enrichment_note"]


@pytest.mark.slow
def test_gzip_input_gives_the_same_slice_bytes(
    mixed: tuple[EvidenceSource, Path], tmp_path: Path
) -> None:
    src, out = mixed
    gz = tmp_path / "vlan111-mixed.pcap.gz"
    with open(MIXED, "rb") as f, gzip.open(gz, "wb") as g:
        shutil.copyfileobj(f, g)
    picks = ["2f8957eb21288451", "40ea9ad26129288a", "e97d64a229afdfb5"]  # 111, 112, ICMP
    with EvidenceSource([gz], groups=GROUPS) as gsrc:
        for fid in picks:
            plain = src.write(fid, out, enrich=False)
            zipped = gsrc.write(fid, tmp_path / "gz", enrich=False)
            assert zipped.pcap_path.read_bytes() == plain.pcap_path.read_bytes()


@pytest.mark.parametrize(
    ("name", "findings", "packets", "tail_fragments"),
    [("ndpi-dns_fragmented.pcap", 13, 66, 7), ("zeek-ipv4-fragmented-4.pcap", 2, 6, 3)],
)
@pytest.mark.slow
def test_fragmented_flows_keep_their_later_fragments(
    tmp_path: Path, name: str, findings: int, packets: int, tail_fragments: int
) -> None:
    with EvidenceSource([EV / name]) as src:
        results = _check_exact(src, tmp_path / "out", tmp_path)
    assert len(results) == findings
    assert sum(r.packets for r in results) == packets
    tails = 0
    for r in results:
        fr = read_all(r.pcap_path)["frag"].astype(np.int64)
        is_tail = ((fr & FRAG_IS_FRAGMENT) != 0) & (
            ((fr & FRAG_FIRST) == 0) | ((fr & FRAG_HAS_L4) == 0)
        )
        tails += int(is_tail.sum())
    assert tails == tail_fragments  # every non-first fragment of the capture


@pytest.mark.parametrize(
    ("name", "findings", "packets"),
    [("ptcpdump-tcp.comments.pcapng", 1, 24), ("zeek-ldap-modify-request.many-idbs.pcapng", 2, 17)],
)
def test_pcapng_input_becomes_classic_pcap_with_the_same_times_and_bytes(
    tmp_path: Path, name: str, findings: int, packets: int
) -> None:
    cap = EV / name
    with EvidenceSource([cap]) as src:
        results = _check_exact(src, tmp_path / "out", tmp_path)
    assert len(results) == findings and sum(r.packets for r in results) == packets
    orig = read_all(cap)
    whole = _records(cap)
    for r in results:
        assert r.pcap_path.read_bytes()[:4] == bytes.fromhex("4d3cb2a1")  # ns pcap, LE
        ts = read_all(r.pcap_path)["ts_ns"]
        assert set(ts.tolist()) <= set(orig["ts_ns"].tolist())
        assert _subsequence(_records(r.pcap_path), whole)
    if findings == 1:  # the whole capture is the finding: identical ns times, in order
        assert np.array_equal(read_all(results[0].pcap_path)["ts_ns"], orig["ts_ns"])


def test_qinq_tags_are_kept_byte_for_byte(tmp_path: Path) -> None:
    cap = EV / "zeek-pppoe-over-qinq.pcap"
    with EvidenceSource([cap]) as src:
        (res,) = _check_exact(src, tmp_path / "out", tmp_path)
    assert res.packets == 86
    assert _records(res.pcap_path) == _records(cap)
    assert set(read_all(res.pcap_path)["vlan"].tolist()) == {3704}


def test_records_of_two_link_types_are_written_as_pcapng(tmp_path: Path) -> None:
    eth, sll = EV / "zeek-http-get.pcap", EV / "tcpdump-tcp-handshake-nano.sll.pcap"
    parts = []
    for cap in (eth, sll):
        b = read_all(cap)
        n = len(b)
        parts.append(SlicePart(cap, list(range(n)), b["ts_ns"].tolist(), b["wire_len"].tolist()))
    out = tmp_path / "mixed.pcapng"
    with open(out, "wb") as f:
        info = write_slice(f, parts)
    assert (info.format, info.link_types, info.packets) == ("pcapng", (1, 113), 17)
    st = ReadStats()
    got = read_all(out, st)
    assert st.link_types == {1, 113} and st.frames == 17
    want = np.concatenate([read_all(eth)["ts_ns"], read_all(sll)["ts_ns"]])
    assert np.array_equal(got["ts_ns"], want)
    assert _records(out) == _records(eth) + _records(sll)


def test_record_walker_counts_what_the_reader_reads() -> None:
    for cap in [MIXED, *sorted(EV.glob("*.pcap*"))]:
        st = ReadStats()
        for _ in iter_packets(cap, st):
            pass
        assert count_records(cap) == st.frames, cap.name


# ------------------------------------------------------------------------- errors
def _cli() -> Any:
    import click

    from flowaudit.cli import cli
    from flowaudit.cli.evidence_cmd import evidence

    group = click.Group(commands={"evidence": evidence}) if "evidence" not in cli.commands else cli
    return group


def _run(*args: str) -> Any:
    return CliRunner().invoke(_cli(), ["evidence", *args])


def test_cli_writes_the_slice_and_prints_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "new" / "dir"
    r = _run("e000b3c0", "--capture", str(MIXED), "-o", str(out), "--no-enrich",
             "--group", "admin_workstations=10.25.100.10,10.25.100.11")  # fmt: skip
    assert r.exit_code == 0, r.output
    fid = "e000b3c0bf3f3dff"
    assert r.output.splitlines()[0] == f"{out}/{fid}.pcap (25 packets, 1 flows)"
    assert sorted(p.name for p in out.iterdir()) == [f"{fid}.json", f"{fid}.pcap"]


@pytest.mark.slow
@pytest.mark.tshark
def test_cli_all_equals_one_finding_at_a_time(tmp_path: Path) -> None:
    """--all: one audit, one capture walk, one tshark pass; the same files as one by one."""
    group = ["--group", "admin_workstations=10.25.100.10,10.25.100.11"]
    r = _run("--all", "--capture", str(MIXED), "-o", str(tmp_path / "all"), *group)
    assert r.exit_code == 0, r.output
    ids = sorted(api.audit([MIXED], groups=GROUPS).violations.column("finding_id").to_pylist())
    assert sorted(p.stem for p in (tmp_path / "all").glob("*.pcap")) == ids
    assert len(list((tmp_path / "all").glob("*.json"))) == 14
    for fid in ("e72e186073f987aa", "fe11e0e7d5f0aedf", "e97d64a229afdfb5"):
        one = _run(fid, "--capture", str(MIXED), "-o", str(tmp_path / fid), *group)
        assert one.exit_code == 0, one.output
        for ext in ("pcap", "json"):
            a = (tmp_path / "all" / f"{fid}.{ext}").read_bytes()
            b = (tmp_path / fid / f"{fid}.{ext}").read_bytes()
            assert a == b, (fid, ext)
    doc = json.loads((tmp_path / "all" / "e72e186073f987aa.json").read_text())
    assert doc["enrichment"] == {"dns_names": ["registry.k8s.io"]}
    assert "e72e186073f987aa.pcap (2 packets, 1 flows)  dns_names: registry.k8s.io" in r.output


def test_cli_needs_ids_or_all_not_both(tmp_path: Path) -> None:
    for args in ([], ["e000b3c0", "--all"]):
        r = _run(*args, "--capture", str(MIXED), "-o", str(tmp_path))
        assert r.exit_code == 2 and "give FINDING_ID(s) or --all (not both)" in r.output


@pytest.mark.parametrize(
    ("fid", "message"),
    [
        ("abcdef0123", "no finding abcdef0123 in the audit of "),
        ("e000", "is not a finding id"),
        ("zzzzzzzz", "is not a finding id"),
    ],
)
def test_cli_unknown_id_exits_2_and_writes_nothing(tmp_path: Path, fid: str, message: str) -> None:
    out = tmp_path / "out"
    r = _run(fid, "--capture", str(MIXED), "-o", str(out), "--no-enrich")
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
    assert not out.exists()
    if fid == "abcdef0123":
        # without --group the admin workstations are unknown: 18 violations
        assert "vlan111-mixed.pcap (18 violation finding(s), 32 unused-rule" in r.output


def test_cli_unused_rule_id_exits_2(mixed: tuple[EvidenceSource, Path], tmp_path: Path) -> None:
    src, _ = mixed
    rule_id = src.result.unused_rules.column("finding_id")[0].as_py()
    out = tmp_path / "out"
    r = _run(rule_id, "--capture", str(MIXED), "-o", str(out),
             "--group", "admin_workstations=10.25.100.10,10.25.100.11")  # fmt: skip
    assert r.exit_code == 2 and "is an unused-rule finding" in r.output
    assert "no packets" in r.output and not out.exists()


def test_ambiguous_prefix_lists_the_candidates(mixed: tuple[EvidenceSource, Path]) -> None:
    src, _ = mixed
    v = src.result.violations
    ids = v.column("finding_id").to_pylist()
    ids[0], ids[1] = "abcdef0000000001", "abcdef0000000002"
    i = v.schema.get_field_index("finding_id")
    twisted = dataclasses.replace(src.result, violations=v.set_column(i, "finding_id", [ids]))
    with pytest.raises(UsageError, match="ambiguous: abcdef0000000001, abcdef0000000002"):
        resolve_finding(twisted, "abcdef", "x")
    assert resolve_finding(twisted, "ABCDEF0000000002", "x")["finding_id"] == ids[1]


def test_cli_not_a_capture_exits_2(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.pcap"
    bogus.write_text("not a capture\n")
    out = tmp_path / "out"
    r = _run("e000b3c0", "--capture", str(bogus), "-o", str(out))
    assert r.exit_code == 2 and "not a pcap or pcapng capture" in r.output
    assert "Traceback" not in r.output and not out.exists()


def test_cli_unwritable_out_dir_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = _run("e000b3c0", "--capture", str(MIXED), "-o", str(blocker / "out"), "--no-enrich")
    assert r.exit_code == 2 and "is not a directory" in r.output
    assert "Traceback" not in r.output and blocker.read_text() == "x"


def test_write_evidence_without_a_capture_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="at least one capture"):
        write_evidence("e000b3c0", [], tmp_path)


@pytest.mark.parametrize(
    "name",
    [
        "zeek-pppoe-over-qinq.pcap",
        "ptcpdump-tcp.comments.pcapng",
        "zeek-ldap-modify-request.many-idbs.pcapng",
        "ndpi-dns_fragmented.pcap",
    ],
)
def test_reader_record_positions_point_at_the_frames(name: str, tmp_path: Path) -> None:
    """rec_pos/caplen/link (packets.RECORD_FIELDS) locate each frame in the (decompressed)
    stream, checked against the slicer's own record walk, with windows that remap."""
    import gzip

    from flowaudit.evidence.slicer import iter_records
    from flowaudit.packets.pcap import iter_packets

    src = EV / name
    gz = tmp_path / (name + ".gz")
    gz.write_bytes(gzip.compress(src.read_bytes()))
    stream = src.read_bytes()
    want = list(iter_records(src))
    for path in (src, gz):
        batches = list(iter_packets(path, chunk_bytes=4096, max_batch=7, positions=True))
        pos = np.concatenate([b["rec_pos"] for b in batches])
        cap = np.concatenate([b["caplen"] for b in batches])
        link = np.concatenate([b["link"] for b in batches])
        assert len(pos) == len(want) > 0
        for k, rec in enumerate(want):
            p, c = int(pos[k]), int(cap[k])
            assert (stream[p : p + c], int(link[k])) == (rec.data, rec.link), (path.name, k)


@pytest.mark.slow
@pytest.mark.tshark
def test_tshark_engine_slices_equal_the_fast_readers(tmp_path: Path) -> None:
    """The tshark engine gives no record positions: its slices come from the record walk,
    the fast reader's from the positions; both must be the same bytes."""
    ids = ["e72e186073f987aa", "fe11e0e7d5f0aedf", "65cf9065bab8c81c"]
    digests = {}
    for engine in ("fast", "tshark"):
        with EvidenceSource([MIXED], groups=GROUPS, engine=engine) as src:
            for fid in ids:
                res = src.write(fid, tmp_path / engine, enrich=False)
                digests[(engine, fid)] = hashlib.sha256(res.pcap_path.read_bytes()).hexdigest()
    for fid in ids:
        assert digests[("fast", fid)] == digests[("tshark", fid)], fid
