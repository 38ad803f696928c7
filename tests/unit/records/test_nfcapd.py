"""nfcapd reader (through Debian's nfdump 1.7.1) against real nfdump files.

Expected values are nfdump's own: ``nfdump -r FILE -I`` (flow, packet and byte totals
per protocol) and ``nfdump -r FILE -o fmt:...`` (individual records).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import blake3
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pairing_oracle import Rec, count_pairs, icmp_ports
from testpaths import DATA

from flowaudit.errors import CaptureError
from flowaudit.records.common import RecordStats
from flowaudit.records.nfcapd import iter_nfcapd_tables, nfcapd_files
from flowaudit.schema import FLOW_SCHEMA

NF = DATA / "records" / "nfcapd"
SAMPLE = NF / "chrispassas-nfcapd.sample"
LZO = NF / "chrispassas-nfcapd-small-lzo"

pytestmark = pytest.mark.nfdump


def _read(path: Path, **kw: object) -> tuple[pa.Table, RecordStats]:
    stats = RecordStats()
    tables = list(iter_nfcapd_tables(path, stats=stats, **kw))
    for t in tables:
        assert t.schema == FLOW_SCHEMA
    table = pa.concat_tables(tables) if tables else FLOW_SCHEMA.empty_table()
    return table, stats


def _nfdump_records(path: Path) -> list[Rec]:
    """Every record as nfdump itself prints it (the pairing oracle's input)."""
    fmt = "fmt:%ts|%te|%pr|%sa|%sp|%da|%dp|%svln|%ra|%eng"
    out = subprocess.run(
        ["nfdump", "-r", str(path), "-q", "-N", "-6", "-o", fmt],
        capture_output=True, text=True, check=True, env={**os.environ, "TZ": "UTC"},
    ).stdout  # fmt: skip
    recs = []
    for line in out.splitlines():
        ts, te, pr, sa, sp, da, dp, vlan, ra, eng = (f.strip() for f in line.split("|"))
        first, last = (
            int(datetime.strptime(x, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()
                * 1000) * 1000
            for x in (ts, te)
        )  # fmt: skip
        proto = {"TCP": 6, "UDP": 17, "ICMP": 1, "ICMP6": 58}.get(pr, None)
        proto = int(pr) if proto is None else proto
        sport, dport = int(sp), (int(dp) if "." not in dp else 0)
        if proto in (1, 58):
            icmp_type, code = (int(x) for x in dp.split("."))
            sport, dport = icmp_ports(proto, icmp_type, code)
        recs.append(
            Rec(f"{ra}/{eng}", 0, int(vlan) or None, proto, sa, sport, da, dport, first,
                max(first, last))  # nfcapd.py: "last set to first" when it is earlier
        )  # fmt: skip
    return recs


def _sum(t: pa.Table, col: str) -> int:
    return int(pc.sum(t[col]).as_py() or 0)


def test_sample_matches_nfdump_totals() -> None:
    t, stats = _read(SAMPLE)
    assert stats.records == 3018  # nfdump -I: Flows: 3018
    assert stats.flows == t.num_rows
    paired = pc.greater(t["dst_packets"], 0)
    # every record is in exactly one row: unpaired rows hold 1, paired rows 2; how many
    # pair is counted from nfdump's own records by a plain statement of the pairing rules
    assert t.filter(paired).num_rows == count_pairs(_nfdump_records(SAMPLE))
    assert t.num_rows + t.filter(paired).num_rows == 3018
    per_proto = {6: (1264, 30255, 20835385), 17: (1650, 13056, 6722649)}
    for proto, (records, packets, octets) in per_proto.items():
        p = t.filter(pc.equal(t["protocol"], proto))
        assert p.num_rows + p.filter(pc.greater(p["dst_packets"], 0)).num_rows == records
        assert _sum(p, "src_packets") + _sum(p, "dst_packets") == packets
        assert _sum(p, "src_bytes") + _sum(p, "dst_bytes") == octets
    icmp = t.filter(pc.is_in(t["protocol"], pa.array([1, 58], pa.uint8())))
    assert icmp.num_rows + icmp.filter(pc.greater(icmp["dst_packets"], 0)).num_rows == 104
    assert _sum(icmp, "src_packets") + _sum(icmp, "dst_packets") == 247  # Packets_icmp
    assert _sum(icmp, "src_bytes") + _sum(icmp, "dst_bytes") == 18195  # Bytes_icmp
    assert _sum(t, "src_packets") + _sum(t, "dst_packets") == 43558
    assert _sum(t, "src_bytes") + _sum(t, "dst_bytes") == 27576229
    # one exporter (nfdump -E: SysID 1, IP 170.80.156.33, ID 0), unsampled
    assert t["exporter"].unique().to_pylist() == ["170.80.156.33"]
    assert t["observation_domain"].unique().to_pylist() == [0]
    assert t["sampling"].unique().to_pylist() == [1]
    assert t["source_kind"].unique().to_pylist() == ["nfcapd"]
    assert t["capture_id"].unique().to_pylist() == [""]
    assert t["direction"].unique().to_pylist() == ["exporter"]
    # 668 records print a last-seen before their first-seen (awk over nfdump's output)
    assert stats.counters["negative_duration"] == 668
    assert pc.all(pc.greater_equal(t["last_seen"], t["first_seen"])).as_py()


def test_sample_pairs_a_handshake() -> None:
    """nfdump -r sample 'port 2828 and port 39714' prints the two halves:
    192.168.0.211:39714 -> 192.168.0.1:2828 ......S. 7 pkts 470 B and the reverse
    ...A..S. 7 pkts 4003 B, both at 18:36:18.154."""
    t, _ = _read(SAMPLE)
    row = t.filter(pc.equal(t["flow_id"], "1:4UgkSBpTYtnNF38uBP+3anvT1sc=")).to_pylist()
    assert len(row) == 1
    r = row[0]
    assert (r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"], r["protocol"]) == (
        "192.168.0.211",
        39714,
        "192.168.0.1",
        2828,
        6,
    )
    assert (r["src_packets"], r["src_bytes"], r["dst_packets"], r["dst_bytes"]) == (7, 470, 7, 4003)
    assert (r["tcp_flags_src"], r["tcp_flags_dst"]) == (0x02, 0x12)
    assert r["state"] == "S1"  # handshake seen, no FIN/RST
    assert r["first_seen"].isoformat() == "2023-01-25T18:36:18.154000+00:00"


def test_lzo_layout1_sampled() -> None:
    t, stats = _read(LZO)
    assert stats.records == 10 and t.num_rows == 10  # no two records of one conversation
    assert t.filter(pc.equal(t["protocol"], 6)).num_rows == 6
    assert t.filter(pc.equal(t["protocol"], 17)).num_rows == 4
    assert _sum(t, "src_packets") == 123000 and _sum(t, "src_bytes") == 87993000
    # sampler records (type 9) of the nfdump 1.6 file: interval 3000 for every exporter
    assert t["sampling"].unique().to_pylist() == [3000]
    assert stats.counters["sampled_records"] == 10
    rows = {(r["src_ip"], r["src_port"]): r for r in t.to_pylist()}
    r = rows[("216.206.145.131", 443)]
    assert (r["dst_ip"], r["dst_port"], r["src_packets"], r["src_bytes"]) == (
        "209.148.205.55",
        41322,
        3000,
        4500000,
    )
    # nfdump -E: SysID 1224 = 66.110.1.17, ID 525056; the record's source VLAN is 2
    assert (r["exporter"], r["observation_domain"], r["vlan_id"]) == ("66.110.1.17", 525056, 2)
    assert r["tcp_flags_src"] == 0x10 and r["state"] == "OTH"
    assert r["first_seen"].isoformat() == "2019-08-12T18:50:47.958000+00:00"


def test_empty_file_gives_no_flows() -> None:
    t, stats = _read(NF / "chrispassas-nfcapd-empty")
    assert t.num_rows == 0 and stats.records == 0 and stats.warnings == []


def test_corrupt_file_is_a_capture_error() -> None:
    with pytest.raises(CaptureError) as e:
        _read(NF / "chrispassas-nfcapd-corrupt")
    assert "chrispassas-nfcapd-corrupt" in str(e.value)
    assert "Corrupt data file" in str(e.value)


def test_not_an_nfcapd_file(tmp_path: Path) -> None:
    bad = tmp_path / "nfcapd.bad"
    bad.write_bytes(b"#separator \\x09\n")
    with pytest.raises(CaptureError, match=r"nfcapd.bad: not an nfcapd file .* at byte 0"):
        _read(bad)


def test_nfdump_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(CaptureError) as e:
        _read(LZO)
    assert e.value.hint == "apt-get install nfdump"


def test_directory_reads_only_new_files(tmp_path: Path) -> None:
    shutil.copy(SAMPLE, tmp_path / "nfcapd.202301251835")
    shutil.copy(LZO, tmp_path / "nfcapd.201908121850")
    shutil.copy(LZO, tmp_path / "nfcapd.current.1234")  # being written: never read
    (tmp_path / "README").write_text("not a flow file")
    sha_sample = blake3.blake3(SAMPLE.read_bytes()).hexdigest()
    sha_lzo = blake3.blake3(LZO.read_bytes()).hexdigest()
    assert [f.name for f, _ in nfcapd_files(tmp_path)] == [
        "nfcapd.201908121850",
        "nfcapd.202301251835",
    ]
    t, stats = _read(tmp_path)
    assert stats.records == 3028 and stats.counters["files"] == 2
    counts = {d: t.filter(pc.equal(t["capture_id"], d)).num_rows for d in (sha_sample, sha_lzo)}
    assert counts == {sha_sample: 2551, sha_lzo: 10}
    again, stats2 = _read(tmp_path, seen={sha_sample})
    assert stats2.records == 10 and again["capture_id"].unique().to_pylist() == [sha_lzo]


def test_corruption_after_some_blocks_keeps_what_was_read(tmp_path: Path) -> None:
    """A multi-block file written by nfdump (six copies of the sample) whose second
    block header is then damaged: nfdump prints block 1 and reports the corruption
    (the nfdump path; the direct reader's message: test_nfcapd_direct.py)."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        shutil.copy(SAMPLE, src / f"nfcapd.20230125183{i}")
    six = tmp_path / "six"
    subprocess.run(["nfdump", "-R", str(src), "-w", str(six)], check=True, capture_output=True)
    data = bytearray(six.read_bytes())
    off = 40  # layout-2 header; blocks: (records u32, size u32, type u16, flags u16)
    first_size = struct.unpack_from("<I", data, off + 4)[0]
    struct.pack_into("<I", data, off + 12 + first_size + 4, 0x7FFFFF00)
    bad = tmp_path / "nfcapd.bad"
    bad.write_bytes(bytes(data))
    printed = subprocess.run(
        ["nfdump", "-r", str(bad), "-q", "-N", "-o", "fmt:%ts"], capture_output=True, text=True
    ).stdout.splitlines()
    t, stats = _read(bad, reader="nfdump")
    assert 0 < stats.records == len(printed) < 6 * 3018
    assert any(w.startswith(f"{bad}: nfdump stopped after") for w in stats.warnings)
    assert any("Corrupt data file" in w for w in stats.warnings)
    assert t.num_rows > 0
