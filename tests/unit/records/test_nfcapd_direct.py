"""The direct nfcapd reader (``records/nfcapd_format.py``) against nfdump itself.

Every file is read twice — directly and through ``nfdump -o fmt:`` (``reader="nfdump"``)
— and the two flow tables must be identical, row for row. The files: the real ISP
export in tests/data, and one written at test time by Debian's nfcapd 1.7.1 from
datagrams replayed over loopback: NetFlow v9 records generated here with known values
(VLANs, out counters, ICMP, IPv6) plus the real Cisco/nProbe/
pmacct exports of tests/data/netflow (records with both IPv4 and IPv6 elements,
sampler records, several exporters). nfdump rewrites that file BZ2- (read directly) and
LZ4-compressed (read through nfdump).
"""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from testpaths import DATA

from flowaudit.errors import CaptureError
from flowaudit.records.common import RecordStats
from flowaudit.records.netflow.pcap import iter_udp_payloads
from flowaudit.records.nfcapd import iter_nfcapd_tables
from flowaudit.schema import FLOW_SCHEMA

pytestmark = pytest.mark.nfdump

SAMPLE = DATA / "records" / "nfcapd" / "chrispassas-nfcapd.sample"
LZO = DATA / "records" / "nfcapd" / "chrispassas-nfcapd-small-lzo"
REPLAYED = [
    DATA / "netflow" / "pcap" / name
    for name in (
        "pmacct-101-NFv9-CISCO-cust_primitives.pcap",
        "pmacct-104-IPFIXv10-IPv6-CISCO-sampling_option.pcap",
        "graylog-netflow5.pcap",
        "graylog-nprobe-netflow9-3.pcap",
    )
]
UNIX0 = 1_700_000_000
ROTATE = 300  # s: nfcapd's file interval (its default, given)
UPTIME = 5_000_000  # ms; the records' first/last are sysUptime ms
V4 = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (1, 4), (2, 4), (23, 4), (24, 4),
      (58, 2), (59, 2), (22, 4), (21, 4), (32, 2)]  # fmt: skip
V6 = [(27, 16), (28, 16), *V4[2:]]


def _ip4(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, text)


def _ip6(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, text)


# (src, dst, sport, dport, proto, flags, bytes, pkts, out bytes, out pkts, src vlan,
#  dst vlan, first ms before export, last ms before export, icmp type·256+code)
GENERATED = [
    ("10.1.0.1", "10.2.0.1", 40000, 443, 6, 0x1B, 5000, 10, 0, 0, 100, 200, 9000, 2000, 0),
    ("10.2.0.1", "10.1.0.1", 443, 40000, 6, 0x1B, 90000, 70, 0, 0, 100, 200, 8990, 2100, 0),
    ("10.1.0.2", "10.3.0.9", 5353, 53, 17, 0, 80, 1, 160, 2, 0, 0, 7000, 7000, 0),
    ("10.1.0.3", "10.3.0.9", 0, 0, 1, 0, 84, 1, 0, 0, 7, 0, 6000, 6000, 0x0800),
    ("10.3.0.9", "10.1.0.3", 0, 0, 1, 0, 84, 1, 0, 0, 7, 0, 5999, 5999, 0x0000),
    ("2001:db8::1", "2001:db8:0:1::2", 50000, 22, 6, 0x1A, 3000, 20, 0, 0, 300, 0, 8000, 1000, 0),
    ("2001:db8:0:1::2", "2001:db8::1", 22, 50000, 6, 0x1A, 4000, 25, 0, 0, 300, 0, 7999, 999, 0),
]


def _datagrams() -> list[bytes]:
    out = []
    for k, (fields, fam) in enumerate(((V4, _ip4), (V6, _ip6))):
        tid = 256 + k
        tpl_fields = b"".join(struct.pack("!HH", i, n) for i, n in fields)
        tpl = struct.pack("!HHHH", 0, 8 + len(tpl_fields), tid, len(fields)) + tpl_fields
        body = b""
        count = 0
        for r in GENERATED:
            v6 = ":" in r[0]
            if v6 != (fam is _ip6):
                continue
            sa, da, sp, dp, pr, fl, by, pk, oby, opk, sv, dv, f, last, icmp = r
            body += fam(sa) + fam(da) + struct.pack(
                "!HHBBIIIIHHIIH", sp, dp, pr, fl, by, pk, oby, opk, sv, dv,
                UPTIME - f, UPTIME - last, icmp,
            )  # fmt: skip
            count += 1
        sets = tpl + struct.pack("!HH", tid, 4 + len(body)) + body
        hdr = struct.pack("!HHIIII", 9, count + 1, UPTIME, UNIX0, k, 7)
        out.append(hdr + sets)
    return out


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One nfcapd file written by nfcapd 1.7.1 from the generated and replayed datagrams.
    nfcapd starts a new file at every multiple of its 300 s interval on the wall clock: a
    collection that spans one (CI saw it at 05:30:00) leaves two files, so one that would
    start within 15 s of a boundary waits for it to pass (it takes ~2 s)."""
    d = tmp_path_factory.mktemp("nfcapd")
    port = _free_udp_port()
    to_boundary = ROTATE - time.time() % ROTATE
    if to_boundary < 15:
        time.sleep(to_boundary + 1)
    cmd = ["nfcapd", "-w", str(d), "-p", str(port), "-b", "127.0.0.1", "-B", "4194304"]
    proc = subprocess.Popen(
        [*cmd, "-t", str(ROTATE)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)
        payloads = _datagrams()
        for pcap in REPLAYED:
            payloads += [p for _exp, p, _off in iter_udp_payloads(pcap, {})]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, p in enumerate(payloads):
                s.sendto(p, ("127.0.0.1", port))
                if i % 32 == 31:
                    time.sleep(0.005)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    files = [f for f in d.rglob("nfcapd.*") if ".current." not in f.name]
    assert len(files) == 1, files
    return files[0]


def _rewrite(src: Path, dst: Path, flag: str) -> Path:
    subprocess.run(["nfdump", "-r", str(src), flag, "-w", str(dst)], check=True,
                   capture_output=True)  # fmt: skip
    return dst


def _read(path: Path, reader: str) -> tuple[pa.Table, RecordStats]:
    stats = RecordStats()
    tables = list(iter_nfcapd_tables(path, stats=stats, reader=reader))
    for t in tables:
        assert t.schema == FLOW_SCHEMA
    return (pa.concat_tables(tables) if tables else FLOW_SCHEMA.empty_table()), stats


def _same(path: Path, direct: bool) -> pa.Table:
    ours, s1 = _read(path, "auto")
    theirs, s2 = _read(path, "nfdump")
    assert s1.counters.get("files_read_directly", 0) == int(direct)
    assert s1.records == s2.records > 0
    assert ours.num_rows == theirs.num_rows
    for name in FLOW_SCHEMA.names:  # column by column, for a readable failure
        assert ours[name].to_pylist() == theirs[name].to_pylist(), name
    assert ours.equals(theirs)
    assert s1.counters.get("negative_duration") == s2.counters.get("negative_duration")
    assert s1.counters.get("sampled_records") == s2.counters.get("sampled_records")
    return ours


def test_sample_direct_equals_nfdump() -> None:
    t = _same(SAMPLE, direct=True)
    assert t.num_rows == 2551


def test_collected_direct_equals_nfdump(collected: Path) -> None:
    t = _same(collected, direct=True)
    # several exporters (SysIDs): source ids 0 (v5, IPFIX, pmacct), 7 (generated), 70 (nProbe)
    assert sorted(t["observation_domain"].unique().to_pylist()) == [0, 7, 70]


def test_bz2_direct_equals_nfdump(collected: Path, tmp_path: Path) -> None:
    bz2 = _rewrite(collected, tmp_path / "nfcapd.bz2", "-j")
    assert bz2.read_bytes()[16] == 2  # the header's compression byte: BZ2
    _same(bz2, direct=True)


def test_lz4_and_layout1_go_through_nfdump(collected: Path, tmp_path: Path) -> None:
    lz4 = _rewrite(collected, tmp_path / "nfcapd.lz4", "-y")
    assert lz4.read_bytes()[16] == 3
    _same(lz4, direct=False)
    _same(LZO, direct=False)
    with pytest.raises(CaptureError, match="not readable without nfdump"):
        _read(lz4, "direct")


def test_generated_values(collected: Path) -> None:
    """The generated records come out with the values that were sent."""
    t, _ = _read(collected, "direct")
    rows = {(r["src_ip"], r["dst_ip"]): r for r in t.to_pylist()}
    tcp = rows[("10.1.0.1", "10.2.0.1")]  # paired with its reverse record
    assert (tcp["src_port"], tcp["dst_port"], tcp["vlan_id"]) == (40000, 443, 100)
    assert (tcp["src_packets"], tcp["src_bytes"], tcp["dst_packets"], tcp["dst_bytes"]) == (
        10, 5000, 70, 90000)  # fmt: skip
    assert tcp["first_seen"].timestamp() == UNIX0 - 9  # export time − (uptime − first)
    assert tcp["last_seen"].timestamp() == UNIX0 - 2
    udp = rows[("10.1.0.2", "10.3.0.9")]  # out counters → dst_*: a biflow record
    assert (udp["src_packets"], udp["dst_packets"], udp["dst_bytes"]) == (1, 2, 160)
    assert udp["vlan_id"] is None
    icmp = rows[("10.1.0.3", "10.3.0.9")]  # echo request + reply, type/code as ports
    assert (icmp["protocol"], icmp["src_port"], icmp["dst_port"]) == (1, 8, 0)
    assert (icmp["dst_packets"], icmp["vlan_id"]) == (1, 7)
    v6 = rows[("2001:db8::1", "2001:db8:0:1::2")]
    assert (v6["ip_version"], v6["dst_port"], v6["dst_bytes"], v6["vlan_id"]) == (6, 22, 4000, 300)
    assert (v6["exporter"], v6["observation_domain"]) == ("127.0.0.1", 7)


def _six_blocks(tmp_path: Path) -> bytes:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        (src / f"nfcapd.20230125183{i}").write_bytes(SAMPLE.read_bytes())
    six = tmp_path / "six"
    subprocess.run(["nfdump", "-R", str(src), "-w", str(six)], check=True, capture_output=True)
    return six.read_bytes()


def test_damaged_second_block_keeps_the_first(tmp_path: Path) -> None:
    data = bytearray(_six_blocks(tmp_path))
    first_size = struct.unpack_from("<I", data, 40 + 4)[0]
    second = 40 + 12 + first_size
    struct.pack_into("<I", data, second + 4, 0x7FFFFF00)
    bad = tmp_path / "nfcapd.bad"
    bad.write_bytes(bytes(data))
    printed = subprocess.run(
        ["nfdump", "-r", str(bad), "-q", "-N", "-o", "fmt:%ts"], capture_output=True, text=True
    ).stdout.splitlines()
    t, stats = _read(bad, "auto")
    assert 0 < stats.records == len(printed) < 6 * 3018  # what nfdump reads, too
    assert f"{bad}: byte {second}: corrupt data block (size {0x7FFFFF00}); the rest of the " \
        "file is skipped" in stats.warnings  # fmt: skip
    assert t.num_rows > 0


def test_damaged_first_block_is_a_capture_error(tmp_path: Path) -> None:
    data = bytearray(SAMPLE.read_bytes())
    struct.pack_into("<I", data, 40 + 4, 1 << 30)
    bad = tmp_path / "nfcapd.bad"
    bad.write_bytes(bytes(data))
    with pytest.raises(CaptureError, match=r"nfcapd.bad: byte 40: corrupt data block"):
        _read(bad, "auto")


def test_cut_file_keeps_whole_records(tmp_path: Path) -> None:
    """A file cut inside its one block: the block is incomplete, nothing is guessed."""
    data = SAMPLE.read_bytes()
    cut = tmp_path / "nfcapd.cut"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CaptureError, match=r"nfcapd.cut: byte 40: data block of \d+ bytes cut"):
        _read(cut, "auto")


def test_damaged_record_length_stops_the_block(tmp_path: Path) -> None:
    data = bytearray(SAMPLE.read_bytes())
    # walk to the 101st record of the one block and give it length 2 (< its header)
    p = 40 + 12
    for _ in range(100):
        p += struct.unpack_from("<H", data, p + 2)[0]
    struct.pack_into("<H", data, p + 2, 2)
    bad = tmp_path / "nfcapd.bad"
    bad.write_bytes(bytes(data))
    t, stats = _read(bad, "direct")
    # records 1..100 of the block: the exporter record and 99 flows
    assert stats.records == 99
    assert any(w.startswith(f"{bad}: byte {p}: corrupt record") for w in stats.warnings)


def test_unstorable_time_is_dropped_and_counted(tmp_path: Path) -> None:
    """A first-seen of 2^63 ms (damage, or a clock gone wrong) is not wrapped into a
    plausible time: the record is dropped and counted, the others are read."""
    data = bytearray(SAMPLE.read_bytes())
    p = 40 + 12
    while struct.unpack_from("<H", data, p)[0] != 11:  # the first V3 record
        p += struct.unpack_from("<H", data, p + 2)[0]
    assert struct.unpack_from("<HH", data, p + 12) == (1, 52)  # its generic-flow element
    struct.pack_into("<Q", data, p + 16, 1 << 63)  # msecFirst
    bad = tmp_path / "nfcapd.time"
    bad.write_bytes(bytes(data))
    t, stats = _read(bad, "direct")
    assert stats.records == 3018
    assert stats.counters["records_time_out_of_range"] == 1
    assert t.num_rows + int(pc.sum(pc.greater(t["dst_packets"], 0)).as_py()) == 3017


def _outcome(path: Path, reader: str) -> tuple[pa.Table | None, str]:
    try:
        t, stats = _read(path, reader)
    except CaptureError as e:
        return None, str(e)
    return t, ""


@pytest.mark.parametrize(
    "path", sorted((DATA / "records" / "nfcapd").iterdir()), ids=lambda p: p.name
)
def test_every_test_file_reads_the_same_both_ways(path: Path) -> None:
    """Every nfcapd file in tests/data gives the same table (or the same error) whichever
    path reads it: layout-1 files (LZO, empty, corrupt) go through nfdump either way."""
    ours, our_error = _outcome(path, "auto")
    theirs, their_error = _outcome(path, "nfdump")
    assert our_error == their_error
    if ours is not None and theirs is not None:
        assert ours.equals(theirs)


def test_sampler_of_a_layout2_file(collected: Path) -> None:
    """The replayed NetFlow v5 export announces 1-in-100 sampling in its header; nfcapd
    stored the counts multiplied by 100 and a sampler ("packet interval: 1, packet space:
    99" in ``nfdump -E``): the flows say sampling 100, through either path."""
    for reader in ("direct", "nfdump"):
        t, stats = _read(collected, reader)
        rows = [
            r
            for r in t.to_pylist()
            if (r["src_ip"], r["dst_ip"]) == ("192.168.1.20", "224.0.0.251")
        ]
        assert len(rows) == 1
        r = rows[0]
        assert (r["sampling"], r["src_packets"], r["src_bytes"]) == (100, 200, 47200)
        assert stats.counters["sampled_records"] == 4  # the v5 export's four records


# nfdump 1.7.1 loops on this appendix (tests/data/fuzz/README.md): ~3.4 billion lines of
# "Error process appendix record type" on stderr, with -r and with -E
LOOPING_APPENDIX = DATA / "fuzz" / "nfcapd-appendix-loop.nfcapd"


def test_a_looping_nfdump_is_stopped_and_named() -> None:
    """Nothing readable but what nfdump cannot finish: a capture error naming the file and
    what nfdump said, after 1 MiB of its messages (the test's worker once reached 22 GB
    buffering them)."""
    with pytest.raises(CaptureError) as e:
        _read(LOOPING_APPENDIX, "auto")
    assert str(e.value) == (
        f"{LOOPING_APPENDIX}: nfdump could not read the file: nfdump printed more than 1 MiB "
        "of messages and was stopped: Error process appendix record type: 42183"
    )


def test_records_are_read_when_nfdump_cannot_list_the_exporters(tmp_path: Path) -> None:
    """The sample's data block before that appendix: its records are read directly, the
    same flows as from the sample, with a warning that the exporter list is missing."""
    sample = SAMPLE.read_bytes()
    size = struct.unpack_from("<I", sample, 40 + 4)[0]
    block = sample[40 : 40 + 12 + size]
    head = bytearray(LOOPING_APPENDIX.read_bytes()[:40])
    struct.pack_into("<Q", head, 24, 40 + len(block))  # the appendix's offset
    path = tmp_path / "nfcapd.damaged"
    path.write_bytes(bytes(head) + block + LOOPING_APPENDIX.read_bytes()[40:])
    got, stats = _read(path, "auto")
    want, _ = _read(SAMPLE, "auto")
    assert stats.counters["files_read_directly"] == 1
    assert (
        f"{path}: listing the exporters, nfdump printed more than 1 MiB of messages and was "
        "stopped: Error process appendix record type: 42183; each flow's exporter is its "
        "record's received-from address, without observation domain or sampling interval"
        in stats.warnings
    )
    differ = [n for n in FLOW_SCHEMA.names if got[n].to_pylist() != want[n].to_pylist()]
    assert differ == ["observation_domain"], differ  # the sample's domain 0 (nfdump -E)
    assert set(got["observation_domain"].to_pylist()) == {None}
    # the received-from address is the exporter nfdump -E names for the sample
    assert set(got["exporter"].to_pylist()) == {"170.80.156.33"}
    assert got.num_rows == want.num_rows == 2551
