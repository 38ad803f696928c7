"""NetFlow / IPFIX records → flow rows (``records/netflow/reader.py``): what the mutation
run's survivors of the reader showed untested.

Exports are encoded with ``struct`` (the helpers of ``test_netflow_edges.py`` and
``test_netflow_pcap_edges.py``) from the published layouts: RFC 3954 (v9 header with
sysUptime; FIRST/LAST_SWITCHED 22/21 in ms of the 32-bit sysUptime), RFC 7011 (IPFIX
header and sets; §6.2: reduced-size encoding only, so an 8-octet encoding of an unsigned32
element is out of spec but still an unsigned number) and the IANA IPFIX registry
(flowStart/EndDeltaMicroseconds 158/159 before the export time, flowStart/EndSysUpTime
22/21 after systemInitTimeMilliseconds 160, samplingInterval 34 unsigned32). The expected
values are the values encoded, never the reader's own output.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from test_netflow_edges import (
    BASIC,
    DPORT,
    DST4,
    EXPORT_SECS,
    PROTO,
    SPORT,
    SRC4,
    basic,
    ip4,
    ipfix,
    read,
    set_,
    template,
    v5,
    v9,
)
from test_netflow_pcap_edges import eth, ipv4, pcap_file, udp
from test_netflow_reader_edges import times

from flowaudit.errors import CaptureError
from flowaudit.records.common import RecordStats
from flowaudit.records.netflow.reader import iter_netflow_tables

EXPORT_US = EXPORT_SECS * 10**6
U32_MAX = 0xFFFFFFFF


def flow(i: int) -> bytes:
    return basic(f"10.0.0.{i}", "10.0.9.9", 17, 1000 + i, 53, 1, 100)


# --- v9 sysUptime-relative times ---------------------------------------------------------
def test_v9_time_exactly_half_the_uptime_range_from_the_export(tmp_path: Path) -> None:
    # RFC 3954: sysUptime and FIRST/LAST_SWITCHED are 32-bit ms counters; their difference
    # is read as a signed 32-bit number (-2^31 .. 2^31 - 1 ms): 2^31 - 1 before the export
    # is the oldest time before it, a difference of exactly 2^31 is -2^31, after the export
    uptime = (1 << 31) + 10
    head = struct.pack("!HHIIII", 9, 2, uptime, EXPORT_SECS, 0, 7)
    tpl = set_(0, template(256, BASIC + [(22, 4), (21, 4)]))
    data = set_(256, flow(1) + struct.pack("!II", 10, 10) + flow(2) + struct.pack("!II", 11, 11))
    rows, stats = read(tmp_path, head + tpl + data)
    assert stats.warnings == []
    assert times(rows) == [
        ("10.0.0.1", EXPORT_US + (1 << 31) * 1000, EXPORT_US + (1 << 31) * 1000),
        ("10.0.0.2", EXPORT_US - ((1 << 31) - 1) * 1000, EXPORT_US - ((1 << 31) - 1) * 1000),
    ]


# --- ports -----------------------------------------------------------------------------------
def test_a_port_element_absent_from_the_template_is_port_zero(tmp_path: Path) -> None:
    # a TCP/UDP record whose template carries only one of the port elements (7/11): the
    # other port is 0, not unknown (null is only for protocols without ports)
    t = {
        256: [(SRC4, 4), (DST4, 4), (PROTO, 1), (SPORT, 2)],
        257: [(SRC4, 4), (DST4, 4), (PROTO, 1), (DPORT, 2)],
        258: [(SRC4, 4), (DST4, 4), (PROTO, 1)],
    }
    tset = set_(2, b"".join(template(k, v) for k, v in t.items()))
    rows, stats = read(
        tmp_path,
        ipfix(
            tset,
            set_(256, ip4("10.0.0.1") + ip4("10.0.9.9") + struct.pack("!BH", 6, 40_001)),
            set_(257, ip4("10.0.0.2") + ip4("10.0.9.9") + struct.pack("!BH", 17, 53)),
            set_(258, ip4("10.0.0.3") + ip4("10.0.9.9") + struct.pack("!B", 6)),
        ),
    )
    assert stats.warnings == []
    assert sorted((r["src_ip"], r["protocol"], r["src_port"], r["dst_port"]) for r in rows) == [
        ("10.0.0.1", 6, 40_001, 0),
        ("10.0.0.2", 17, 0, 53),
        ("10.0.0.3", 6, 0, 0),
    ]


# --- the frames of a capture that hold no export datagram ------------------------------------
def test_frame_counters_of_a_capture_count_every_frame(tmp_path: Path) -> None:
    # three TCP packets and two ARP frames among the export datagrams: each counted
    tcp = eth(ipv4(bytes(20), proto=6))
    arp = eth(b"\0" * 28, ethertype=0x0806)
    frames = [tcp, eth(ipv4(udp(v5(1)))), tcp, arp, tcp, arp, eth(ipv4(udp(v5(2, first=2))))]
    path = tmp_path / "export.pcap"
    path.write_bytes(pcap_file(frames)[0])
    stats = RecordStats()
    rows = [r for t in iter_netflow_tables(path, stats=stats, pair=False) for r in t.to_pylist()]
    assert sorted(r["src_ip"] for r in rows) == ["10.5.0.1", "10.5.0.2", "10.5.0.3"]
    assert stats.counters["non_udp_packets"] == 3
    assert stats.counters["non_ip_frames"] == 2
    assert stats.warnings == []


# --- raw export files: zero padding ----------------------------------------------------------
def test_a_raw_file_of_64_zero_octets_is_padding_only(tmp_path: Path) -> None:
    # 64 zero octets and more are padding: a file of just that holds no datagram and is no
    # error; 63 zero octets at the start are no datagram (version 0)
    for n in (64, 65):
        rows, stats = read(tmp_path, bytes(n))
        assert rows == [] and stats.warnings == [], n
    path = tmp_path / "export.dat"
    path.write_bytes(bytes(63))
    with pytest.raises(CaptureError):
        list(iter_netflow_tables(path, stats=RecordStats()))


def test_datagrams_and_zero_padding_up_to_the_end_of_the_file(tmp_path: Path) -> None:
    # padding after each datagram, up to the end of the file: every datagram read, the file
    # ends cleanly (the splitter must never stall on the padding or on the last octets)
    tset = set_(0, template(256, BASIC))
    nf9 = v9(tset, set_(256, flow(7)), count=2)
    for tail in (1, 63, 64, 300):
        rows, stats = read(tmp_path, v5(2), bytes(100), nf9, bytes(tail))
        assert sorted(r["src_ip"] for r in rows) == ["10.0.0.7", "10.5.0.1", "10.5.0.2"], tail
        assert stats.warnings == [], tail


# --- out-of-spec field widths: an 8-octet unsigned32 is still an unsigned number -------------
# (values of 2^63 and more once wrapped to negative int64 numbers, or raised OverflowError)
def test_oversized_delta_times_are_before_the_export_and_out_of_range(tmp_path: Path) -> None:
    # flowStartDeltaMicroseconds 2^64 - 10^6: 584,942 years before the export, not a time
    # 1 s after it; no storable time: the record is dropped and counted
    tset = set_(2, template(256, BASIC + [(158, 8), (159, 8)]))
    data = flow(1) + struct.pack("!QQ", 2**64 - 10**6, 2**64 - 1)
    data += flow(2) + struct.pack("!QQ", 3_000_000, 1_000_000)
    rows, stats = read(tmp_path, ipfix(tset, set_(256, data)))
    assert times(rows) == [("10.0.0.2", EXPORT_US - 3_000_000, EXPORT_US - 1_000_000)]
    assert stats.skipped == 1 and stats.counters["records_time_out_of_range"] == 1


def test_oversized_sysuptime_times_do_not_wrap_into_range(tmp_path: Path) -> None:
    # an 8-octet flowStartSysUpTime whose sum with systemInitTimeMilliseconds passes 2^64:
    # far beyond 2262, not 5 ms after 1970; dropped and counted
    init = 1_789_000_000_000
    tset = set_(2, template(256, BASIC + [(160, 8), (22, 8), (21, 8)]))
    data = flow(1) + struct.pack("!QQQ", init, 2**64 - init + 5, 2**64 - init + 7)
    data += flow(2) + struct.pack("!QQQ", init, 1_000, 61_000)
    rows, stats = read(tmp_path, ipfix(tset, set_(256, data)))
    assert times(rows) == [("10.0.0.2", (init + 1_000) * 1000, (init + 61_000) * 1000)]
    assert stats.skipped == 1 and stats.counters["records_time_out_of_range"] == 1


def otpl(tid: int, ie: int) -> bytes:
    """An IPFIX options template: scope observationDomainId (149), one 8-octet option."""
    return struct.pack("!HHHHHHH", tid, 2, 1, 149, 4, ie, 8)


def test_oversized_announced_init_time_is_out_of_range(tmp_path: Path) -> None:
    # systemInitTimeMilliseconds 2^64 - 1 in an options record (dateTimeMilliseconds,
    # unsigned64): the record's 22/21 times are far beyond 2262: dropped and counted
    opts = ipfix(set_(3, otpl(400, 160)), set_(400, struct.pack("!IQ", 7, 2**64 - 1)))
    tset = set_(2, template(256, BASIC + [(22, 4), (21, 4)]))
    rows, stats = read(tmp_path, opts, ipfix(tset, set_(256, flow(1) + struct.pack("!II", 1, 2))))
    assert rows == []
    assert stats.skipped == 1 and stats.counters["records_time_out_of_range"] == 1


@pytest.mark.parametrize("interval", [2**32 + 5, 2**53 + 1, 2**63 + 5, 2**64 - 1])
def test_oversized_sampling_intervals_saturate(tmp_path: Path, interval: int) -> None:
    # samplingInterval (34) is unsigned32 and so is the sampling column: a larger value (an
    # 8-octet encoding) is the largest interval, not its low 32 bits nor "unsampled"
    tset = set_(2, template(256, BASIC + [(34, 8)]))
    rows, stats = read(tmp_path, ipfix(tset, set_(256, flow(1) + struct.pack("!Q", interval))))
    assert [r["sampling"] for r in rows] == [U32_MAX]
    # ... announced in an options record for the observation domain
    opts = ipfix(set_(3, otpl(400, 34)), set_(400, struct.pack("!IQ", 7, interval)))
    tset = set_(2, template(257, BASIC))
    rows, stats = read(tmp_path, opts, ipfix(tset, set_(257, flow(2))))
    assert [r["sampling"] for r in rows] == [U32_MAX]
    assert stats.warnings == []
