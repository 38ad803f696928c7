"""NetFlow v5/v9/IPFIX reader against real exports (tests/data/netflow, see SOURCES.md).

Expected values come from tshark's cflow dissector (run live, ``tshark`` marker; run with
``-2`` so data sets that precede their template are decoded too) and from pmacct's
expected nfacctd output for the pmacct tests.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pairing_oracle import Rec, count_pairs
from testpaths import DATA

from flowaudit.errors import CaptureError
from flowaudit.records.common import RecordStats
from flowaudit.records.netflow.reader import iter_netflow_tables
from flowaudit.schema import FLOW_SCHEMA

NF = DATA / "netflow"
PCAP, PAY, EXPECTED = NF / "pcap", NF / "payloads", NF / "expected"


def read(path: Path, pair: bool = True) -> tuple[pa.Table, RecordStats]:
    st = RecordStats()
    tables = list(iter_netflow_tables(path, stats=st, pair=pair))
    for t in tables:
        assert t.schema == FLOW_SCHEMA
    return (pa.concat_tables(tables) if tables else FLOW_SCHEMA.empty_table()), st


# file, UDP port, records (tshark's cflow dissector agrees: test_records_equal_tshark_cflow),
# source kinds; the flows after pairing are counted by tests/pairing_oracle.py
CASES = [
    ("graylog-netflow5.pcap", 2055, 4, {"netflow5"}),
    ("graylog-netgraph-netflow5.pcap", 9995, 120, {"netflow5"}),
    ("graylog-pmacctd-netflow5.pcap", 2055, 42, {"netflow5"}),
    ("graylog-pmacctd-netflow9.pcap", 2055, 6, {"netflow9"}),
    ("graylog-netflow9.pcap", 2055, 21, {"netflow9"}),
    ("graylog-nprobe-netflow9.pcap", 2055, 152, {"netflow5", "netflow9"}),
    ("graylog-nprobe-netflow9-2.pcap", 2055, 6, {"netflow9"}),
    ("graylog-nprobe-netflow9-3.pcap", 2055, 892, {"netflow9"}),
    ("graylog-nprobe-netflow9-4.pcap", 2055, 15, {"netflow9"}),
    ("pmacct-100-IPFIXv10-CISCO.pcap", 9991, 12, {"ipfix"}),
    ("pmacct-101-NFv9-CISCO-cust_primitives.pcap", 9991, 51, {"netflow9"}),
    ("pmacct-102-NFv9-CISCO-f2rd-pretag-sampling-reload.pcap", 9991, 35, {"netflow9"}),
    ("pmacct-104-IPFIXv10-IPv6-CISCO-sampling_option.pcap", 9992, 3, {"ipfix"}),
    ("pmacct-111-IPFIXv10-NFv9-IPv6-IPv4-mix_sources.traffic-00.pcap", 9991, 11, {"netflow9"}),
    ("pmacct-111-IPFIXv10-NFv9-IPv6-IPv4-mix_sources.traffic-01.pcap", 9991, 13, {"ipfix"}),
    ("ndpi-netflow-fritz.pcap", 2055, 0, set()),
    ("ndpi-netflowv9.pcap", 2057, 0, set()),
]


@pytest.mark.parametrize(("name", "port", "records", "kinds"), CASES)
def test_record_and_flow_counts(name: str, port: int, records: int, kinds: set[str]) -> None:
    t, st = read(PCAP / name)
    assert st.records == records
    raw, _ = read(PCAP / name, pair=False)
    assert raw.num_rows == records
    assert t.num_rows == records - count_pairs(_oracle_records(raw)) == st.flows
    assert set(t["source_kind"].to_pylist()) == kinds
    assert set(t["direction"].to_pylist()) <= {"exporter"}
    # paired flows hold every exported packet once
    tot = pa.compute.sum
    assert (tot(t["src_packets"]).as_py() or 0) + (tot(t["dst_packets"]).as_py() or 0) == (
        tot(raw["src_packets"]).as_py() or 0
    )


def _oracle_records(raw: pa.Table) -> list[Rec]:
    """The unidirectional records (no reverse counters) as the pairing oracle's input."""
    us = lambda d: round(d.timestamp() * 1_000_000)  # noqa: E731
    return [
        Rec(r["exporter"] or "", r["observation_domain"], r["vlan_id"], r["protocol"],
            r["src_ip"], r["src_port"] or 0, r["dst_ip"], r["dst_port"] or 0,
            us(r["first_seen"]), us(r["last_seen"]))
        for r in raw.to_pylist()
        if not r["dst_packets"] and not r["dst_bytes"]
    ]  # fmt: skip


def _tshark_records(path: Path, port: int) -> collections.Counter[tuple[str, str, int, int, int]]:
    fields = ["srcaddr", "srcaddrv6", "dstaddr", "dstaddrv6", "protocol", "packets", "octets"]
    cmd = ["tshark", "-2", "-r", str(path), "-d", f"udp.port=={port},cflow", "-T", "fields"]
    cmd += ["-E", "occurrence=a"] + [a for f in fields for a in ("-e", f"cflow.{f}")]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    got: collections.Counter[tuple[str, str, int, int, int]] = collections.Counter()
    for line in out.splitlines():
        c = [x.split(",") for x in line.split("\t")]
        src, dst = c[0] if c[0] != [""] else c[1], c[2] if c[2] != [""] else c[3]
        if src == [""]:
            continue
        for i in range(len(src)):

            def v(col: list[str], i: int = i) -> int:
                return int(col[i]) if i < len(col) and col[i] else 0

            got[(src[i], dst[i], v(c[4]), v(c[5]), v(c[6]))] += 1
    return got


def _ours(t: pa.Table) -> collections.Counter[tuple[str, str, int, int, int]]:
    cols = ["src_ip", "dst_ip", "protocol", "src_packets", "src_bytes"]
    return collections.Counter(tuple(r.values()) for r in t.select(cols).to_pylist())


# tshark stops at the v9 header's record count; these datagrams hold more records than
# their header says (frame 1 of graylog-netflow9: a data set after 3 more template sets)
TSHARK_STOPS_AT_COUNT = {"graylog-netflow9.pcap": 3}


@pytest.mark.tshark
@pytest.mark.parametrize(("name", "port"), [(c[0], c[1]) for c in CASES])
def test_records_equal_tshark_cflow(name: str, port: int) -> None:
    raw, _ = read(PCAP / name, pair=False)
    ours, theirs = _ours(raw), _tshark_records(PCAP / name, port)
    assert not theirs - ours
    assert sum((ours - theirs).values()) == TSHARK_STOPS_AT_COUNT.get(name, 0)


def test_v5_freebsd_fields_and_absolute_times() -> None:
    raw, st = read(PCAP / "graylog-netgraph-netflow5.pcap", pair=False)
    assert st.counters["datagrams_v5"] == 4
    r = raw.slice(0, 1).to_pylist()[0]
    # header unix_secs 1502181115 + nsecs, sysUptime 342619 ms, record first = last = 342584
    assert r["src_ip"] == "202.12.27.33"
    assert r["first_seen"] == datetime(2017, 8, 8, 8, 31, 20, 100879, tzinfo=UTC)
    assert r["last_seen"] == r["first_seen"]
    assert (r["exporter"], r["observation_domain"], r["sampling"]) == ("192.168.1.3", 0, 1)
    assert r["direction"] == "exporter" and r["flow_id"].startswith("1:")


def test_ipfix_over_ipv6_sampling_option() -> None:
    t, st = read(PCAP / "pmacct-104-IPFIXv10-IPv6-CISCO-sampling_option.pcap")
    # options template 257: samplingPopulation 256 / samplingSize 1 for selector 1
    assert st.counters["options_records"] == 1
    assert set(t["sampling"].to_pylist()) == {256}
    assert set(t["exporter"].to_pylist()) == {"2a02:a90:4007:700::54"}
    assert set(t["ip_version"].to_pylist()) == {6}
    (first,) = [r for r in t.to_pylist() if r["src_ip"] == "fe80::fa53:29ff:fe3a:3152"]
    assert first["first_seen"] == datetime(2023, 2, 9, 14, 22, 53, tzinfo=UTC)


P_PROTO = {"tcp": 6, "udp": 17, "icmp": 1, "ipv6-icmp": 58, "vrrp": 112}


@pytest.mark.parametrize("test_id", ["100", "101", "102", "104", "111"])
def test_records_equal_pmacct_expected(test_id: str) -> None:
    """Tuples, packets and bytes (× sampling: nfacctd renormalises) equal nfacctd's output.

    pmacct's ``peer_ip_src`` is the replay host of its test rig, not the exporter address
    in the capture, so the exporter is not compared."""
    want: collections.Counter[tuple[object, ...]] = collections.Counter()
    (exp,) = EXPECTED.glob(f"pmacct-{test_id}-*.json")
    for line in exp.read_text().splitlines():
        d = json.loads(line)
        pr = P_PROTO[d["ip_proto"]]
        ports = (d["port_src"], d["port_dst"]) if pr in (6, 17) else None
        want[(d["ip_src"], d["ip_dst"], pr, ports, d["packets"], d["bytes"])] += 1
    got: collections.Counter[tuple[object, ...]] = collections.Counter()
    for pcap in sorted(PCAP.glob(f"pmacct-{test_id}-*.pcap")):
        raw, _ = read(pcap, pair=False)
        for r in raw.to_pylist():
            s, pr = r["sampling"], r["protocol"]
            ports = (r["src_port"], r["dst_port"]) if pr in (6, 17) else None
            got[
                (r["src_ip"], r["dst_ip"], pr, ports, r["src_packets"] * s, r["src_bytes"] * s)
            ] += 1
    assert got == want


def test_fritzbox_template_only() -> None:
    t, st = read(PCAP / "ndpi-netflow-fritz.pcap")
    assert t.num_rows == 0 and st.records == 0
    assert st.counters["templates"] == 1 and st.counters["options_templates"] == 2
    assert st.warnings == []


def test_v9_data_without_template_counted_and_reported() -> None:
    t, st = read(PCAP / "ndpi-netflowv9.pcap")
    assert t.num_rows == 0
    assert st.counters["data_sets_without_template"] == 23
    assert st.counters["bytes_without_template"] == 13176
    assert any("the template never arrived" in w and "byte" in w for w in st.warnings)


def test_data_before_template_decoded_when_it_arrives() -> None:
    _, st = read(PCAP / "graylog-nprobe-netflow9-4.pcap")
    assert st.counters["data_sets_decoded_late"] == 2
    assert st.records == 15  # 7 + 7 early records + 1 after the template (tshark -2 agrees)


def test_mixed_v5_v9_on_one_port() -> None:
    t, st = read(PCAP / "graylog-nprobe-netflow9.pcap", pair=False)
    assert (st.counters["datagrams_v5"], st.counters["datagrams_v9"]) == (5, 4)
    kinds = collections.Counter(t["source_kind"].to_pylist())
    assert kinds == {"netflow5": 150, "netflow9": 2}


def test_non_netflow_packets_ignored(tmp_path: Path) -> None:
    pcap = DATA / "netflow" / "pcap" / "graylog-netflow5.pcap"
    data = pcap.read_bytes()
    # append a DNS-like UDP packet and an ARP frame to the capture
    import struct

    udp = struct.pack("!HHHH", 53, 53, 12, 0) + b"\x12\x34\x01\x00"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, b"\n\0\0\1",
                     b"\n\0\0\2") + udp  # fmt: skip
    eth = b"\x02" * 12 + b"\x08\x00" + ip
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\0" * 28
    for fr in (eth, arp):
        data += struct.pack("<IIII", 0, 0, len(fr), len(fr)) + fr
    f = tmp_path / "mixed.pcap"
    f.write_bytes(data)
    t, st = read(f)
    assert st.records == 4 and t.num_rows == 4
    assert st.counters["non_netflow_datagrams"] == 1 and st.counters["non_ip_frames"] == 1


def _concat(tmp_path: Path, *names: str) -> Path:
    out = tmp_path / "joined.dat"
    out.write_bytes(b"".join((PAY / f"logstash-{n}.dat").read_bytes() for n in names))
    return out


# template file(s) + data file(s) of one exporter → records (tshark -2 on the same
# datagrams agrees on tuples, packets and bytes; NSEL ICMP bytes come from element 231)
RAW_CASES = [
    (("netflow5",), 30, "netflow5"),
    (("netflow5_test_juniper_mx80",), 29, "netflow5"),
    (("netflow5_test_microtik",), 30, "netflow5"),
    (("ipfix",), 12, "ipfix"),
    (("netflow9_test_cisco_asa_1_tpl", "netflow9_test_cisco_asa_1_data"), 14, "netflow9"),
    (("netflow9_test_cisco_asr9k_tpl260", "netflow9_test_cisco_asr9k_data260"), 21, "netflow9"),
    (("netflow9_test_softflowd_tpl_data",), 7, "netflow9"),
    (("netflow9_test_macaddr_tpl", "netflow9_test_macaddr_data"), 29, "netflow9"),
    (("netflow9_test_paloalto_panos_tpl", "netflow9_test_paloalto_panos_data"), 8, "netflow9"),
    (("netflow9_test_paloalto_81_tpl256-263",
      "netflow9_test_paloalto_81_data257_1flowset_in_large_zerofilled_packet"), 1, "netflow9"),
    (("netflow9_test_ubnt_edgerouter_tpl", "netflow9_test_ubnt_edgerouter_data1024",
      "netflow9_test_ubnt_edgerouter_data1025"), 16, "netflow9"),
    (("netflow9_test_iptnetflow_reduced_size_encoding_tpldata260",), 12, "netflow9"),
    (("netflow9_test_0length_fields_tpl_data",), 10, "netflow9"),
    (("netflow9_test_field_layer2segmentid_tpl",
      "netflow9_test_field_layer2segmentid_data"), 1, "netflow9"),
    (("netflow9_test_unknown_tpl266_292_data",), 2, "netflow9"),
    (("ipfix_test_openbsd_pflow_tpl", "ipfix_test_openbsd_pflow_data"), 26, "ipfix"),
    (("ipfix_test_vmware_vds_tpl", "ipfix_test_vmware_vds_data264",
      "ipfix_test_vmware_vds_data266"), 3, "ipfix"),
    (("ipfix_test_mikrotik_tpl", "ipfix_test_mikrotik_data258",
      "ipfix_test_mikrotik_data259"), 46, "ipfix"),
    (("ipfix_test_netscaler_tpl", "ipfix_test_netscaler_data"), 3, "ipfix"),
    (("ipfix_test_yaf_tpls_option_tpl", "ipfix_test_yaf_tpl45841",
      "ipfix_test_yaf_data45841"), 1, "ipfix"),
    (("ipfix_test_nokia_bras_tpl", "ipfix_test_nokia_bras_data256"), 1, "ipfix"),
    (("ipfix_test_barracuda_extended_uniflow_tpl256",
      "ipfix_test_barracuda_extended_uniflow_data256"), 2, "ipfix"),
]  # fmt: skip


@pytest.mark.parametrize(("names", "records", "kind"), RAW_CASES, ids=lambda v: str(v)[:40])
def test_raw_payload_files(tmp_path: Path, names: tuple[str, ...], records: int, kind: str) -> None:
    raw, st = read(_concat(tmp_path, *names), pair=False)
    assert st.records == records == raw.num_rows
    assert set(raw["source_kind"].to_pylist()) == {kind}
    assert set(raw["exporter"].to_pylist()) == {"file"}


# Records as logstash-codec-netflow's spec (spec/codecs/netflow_spec.rb, the files' origin)
# publishes them: (src, sport, dst, dport, protocol, packets, bytes, tcp flags, sampling)
PUBLISHED = [
    (("netflow5",), [
        ("10.0.2.2", 54435, "10.0.2.15", 22, 6, 5, 230, 16, 1),
        ("10.0.2.15", 22, "10.0.2.2", 54435, 6, 4, 304, 24, 1)]),
    (("netflow5_test_microtik",), [
        ("10.0.8.1", 80, "192.168.0.1", 51826, 6, 13, 11442, 82, 1)]),
    (("netflow5_test_juniper_mx80",), [  # the header's sampling interval: 1000
        ("66.249.92.75", 37387, "192.168.0.1", 80, 6, 2, 104, 16, 1000)]),
    (("ipfix",), [
        ("192.168.253.1", 60560, "192.168.253.128", 22, 6, 5, 260, 16, 1),
        ("192.168.253.128", 22, "192.168.253.1", 60560, 6, 6, 1000, 24, 1),
        ("192.168.253.2", 53, "192.168.253.132", 35262, 17, 2, 601, 0, 1),
        ("192.168.253.132", 35262, "192.168.253.2", 53, 17, 2, 148, 0, 1),
        ("54.214.9.161", 443, "192.168.253.132", 49935, 6, 14, 5946, 26, 1),
        ("192.168.253.132", 49935, "54.214.9.161", 443, 6, 13, 2608, 26, 1)]),
    (("ipfix_test_netscaler_tpl", "ipfix_test_netscaler_data"), [
        ("192.168.0.1", 51053, "10.0.0.1", 443, 6, 2, 1541, 24, 1)]),
    (("ipfix_test_openbsd_pflow_tpl", "ipfix_test_openbsd_pflow_data"), [
        ("192.168.0.1", 80, "192.168.0.17", 64026, 6, 8, 6425, 0, 1)]),
    (("ipfix_test_vmware_vds_tpl", "ipfix_test_vmware_vds_data264",
      "ipfix_test_vmware_vds_data266"), [
        ("172.18.65.21", 61209, "172.18.65.211", 5985, 6, 2, 100, 2, 1)]),
    (("netflow9_test_cisco_asr9k_tpl260", "netflow9_test_cisco_asr9k_data260"), [
        ("10.0.29.46", 443, "10.0.15.38", 52364, 6, 2, 112, 18, 1)]),
    (("netflow9_test_ubnt_edgerouter_tpl", "netflow9_test_ubnt_edgerouter_data1024",
      "netflow9_test_ubnt_edgerouter_data1025"), [
        ("192.168.1.102", 47690, "10.2.0.95", 443, 6, 21, 3668, 27, 1)]),
]  # fmt: skip


@pytest.mark.parametrize(("names", "published"), PUBLISHED, ids=lambda v: str(v)[:40])
def test_records_equal_the_published_decode(
    tmp_path: Path, names: tuple[str, ...], published: list[tuple[Any, ...]]
) -> None:
    raw, _ = read(_concat(tmp_path, *names), pair=False)
    cols = ["src_ip", "src_port", "dst_ip", "dst_port", "protocol", "src_packets",
            "src_bytes", "tcp_flags_src", "sampling"]  # fmt: skip
    got = collections.Counter(tuple(r[c] for c in cols) for r in raw.to_pylist())
    missing = collections.Counter(published) - got
    assert not missing, f"not decoded as published: {sorted(missing)}"


def test_variable_length_fields_netscaler(tmp_path: Path) -> None:
    raw, st = read(_concat(tmp_path, "ipfix_test_netscaler_tpl", "ipfix_test_netscaler_data"))
    assert st.records == 3
    # one data set (template 280) has no template in the files: reported, not guessed
    assert st.counters["data_sets_without_template"] == 1


@pytest.mark.parametrize("name", ["netflow5_test_invalid01", "netflow5_test_invalid02"])
def test_invalid_v5_headers_do_not_crash(tmp_path: Path, name: str) -> None:
    raw, st = read(_concat(tmp_path, name), pair=False)
    assert any("NetFlow v5 header announces" in w and "byte 0" in w for w in st.warnings)
    assert raw.num_rows == 30  # the 1464-byte datagram holds 30 well-formed records


def test_not_netflow_raises_capture_error(tmp_path: Path) -> None:
    f = tmp_path / "junk.dat"
    f.write_bytes(b"hello, this is not netflow at all" * 4)
    with pytest.raises(CaptureError, match=r"junk\.dat: byte 0: not a NetFlow"):
        list(iter_netflow_tables(f, stats=RecordStats()))


def test_truncated_capture_warns(tmp_path: Path) -> None:
    data = (PCAP / "graylog-netgraph-netflow5.pcap").read_bytes()
    f = tmp_path / "cut.pcap"
    f.write_bytes(data[:-100])
    t, st = read(f, pair=False)
    assert st.records == 90  # the 4th datagram (30 records) is cut off
    assert any("cut short" in w for w in st.warnings)


def test_paired_flow_fields_from_both_records() -> None:
    t, _ = read(PCAP / "graylog-pmacctd-netflow5.pcap")
    raw, _ = read(PCAP / "graylog-pmacctd-netflow5.pcap", pair=False)
    assert t.num_rows * 2 == raw.num_rows  # every record found its reverse
    r = t.sort_by("first_seen").to_pylist()[0]
    fwd = [x for x in raw.to_pylist() if x["src_ip"] == r["src_ip"] and x["dst_ip"] == r["dst_ip"]]
    rev = [x for x in raw.to_pylist() if x["src_ip"] == r["dst_ip"] and x["dst_ip"] == r["src_ip"]]
    assert r["src_packets"] == sum(x["src_packets"] for x in fwd if x["src_port"] == r["src_port"])
    assert r["dst_packets"] == sum(x["src_packets"] for x in rev if x["dst_port"] == r["src_port"])


_NO_PANDAS_SCRIPT = """
import sys
from flowaudit.records.netflow.reader import iter_netflow_tables
from flowaudit.records.common import RecordStats
counts = []
for path in sys.argv[1:]:
    for pair in (True, False):
        st = RecordStats()
        counts.append(sum(t.num_rows for t in iter_netflow_tables(path, stats=st, pair=pair)))
print(counts, "pandas" in sys.modules)
"""


def test_netflow_ingest_does_not_import_pandas() -> None:
    # pyarrow imports pandas (~0.4 s) on the first pa.array / pa.scalar / fill_null call;
    # the NetFlow path builds its arrays from buffers instead (flowaudit/_arrow.py).
    names = [
        "graylog-netflow9.pcap",  # v9, with pairing
        "graylog-netgraph-netflow5.pcap",  # v5
        "pmacct-104-IPFIXv10-IPv6-CISCO-sampling_option.pcap",  # IPFIX over IPv6
        "pmacct-111-IPFIXv10-NFv9-IPv6-IPv4-mix_sources.traffic-00.pcap",
    ]
    want = []
    for n in names:  # (flows by the pairing oracle, records) per file
        raw, _ = read(PCAP / n, pair=False)
        want += [f"{raw.num_rows - count_pairs(_oracle_records(raw))},", f"{raw.num_rows},"]
    out = subprocess.run(
        [sys.executable, "-c", _NO_PANDAS_SCRIPT, *[str(PCAP / n) for n in names]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    want[0], want[-1] = "[" + want[0], want[-1].rstrip(",") + "]"
    assert out.split() == [*want, "False"]


def test_netflow_cli_ingest_does_not_import_pandas(tmp_path: Path) -> None:
    script = (
        "import sys, runpy; sys.argv = ['flowaudit', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('flowaudit', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print('pandas' in sys.modules)\n"
    )
    args = ["ingest", "--format", "netflow", "-q", "--store", str(tmp_path / "store")]
    out = subprocess.run(
        [sys.executable, "-c", script, *args, str(PCAP / "graylog-netflow9.pcap")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == ["False"]
