"""NetFlow / IPFIX records → flow rows (``records/netflow/reader.py``): edge cases the
mutation run (tests/MUTATION.md) found untested.

Exports are encoded with ``struct`` (the helpers of ``test_netflow_edges.py``) from the
published layouts: Cisco's v5 header (sysUptime, unix secs, residual nanoseconds) and
record, RFC 3954 (v9 header, flowsets, FIRST/LAST_SWITCHED against sysUptime), RFC 7011
(IPFIX header, sets; §6.1.7-6.1.10 dateTimeSeconds/Milliseconds/Microseconds/Nanoseconds,
the last two in NTP format: seconds since 1900 and a 2^-32 fraction) and the IANA IPFIX
registry (flowStart/EndDeltaMicroseconds 158/159 relative to the export time). A raw export
file is the datagrams back to back, as ``nc -u -l`` writes them. The expected values are
the values encoded, never the reader's own output.
"""

from __future__ import annotations

import struct
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from test_netflow_edges import (
    BASIC,
    DPORT,
    DST4,
    EXPORT_SECS,
    PROTO,
    SPORT,
    SRC4,
    UPTIME_MS,
    V5_HEADER,
    basic,
    ip4,
    ipfix,
    read,
    set_,
    template,
    v5,
    v5rec,
    v9,
)

from flowaudit.errors import CaptureError
from flowaudit.records.common import RecordStats
from flowaudit.records.netflow.reader import _raw_datagrams, iter_netflow_tables

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NTP_UNIX = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01 (RFC 5905 §6)


def us(t: datetime) -> int:
    """µs since the epoch, exactly."""
    d = t - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def times(rows: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    return sorted((r["src_ip"], us(r["first_seen"]), us(r["last_seen"])) for r in rows)


def flow(i: int) -> bytes:
    return basic(f"10.0.0.{i}", "10.0.9.9", 17, 1000 + i, 53, 1, 100)


# --- raw export files: where each datagram ends -------------------------------------------
def test_zero_padding_between_and_after_datagrams(tmp_path: Path) -> None:
    # some collectors pad datagrams to a block size; 64 zero octets and more are padding
    # (the next datagram's version field starts with one more), so are fewer at the end
    reserved = ipfix(set_(4, bytes(4)))  # RFC 7011 §3.3.2: set id 4 is reserved
    a, b, c, d = (v5(1, first=i) for i in (1, 2, 3, 4))
    rows, stats = read(tmp_path, a, bytes(64), b, bytes(200), reserved, c, bytes(63), d, bytes(20))
    assert sorted(r["src_ip"] for r in rows) == ["10.5.0.1", "10.5.0.2", "10.5.0.3", "10.5.0.4"]
    # the warning names the set's own offset, after both paddings
    off = len(a) + 64 + len(b) + 200 + 16
    assert stats.warnings == [f"{tmp_path / 'export.dat'}: byte {off}: reserved set id 4 skipped"]


def test_a_raw_file_larger_than_one_read(tmp_path: Path) -> None:
    # 1.7 MB: the file is read in 1 MiB pieces; zero padding early on (before the end of
    # the file is reached), every datagram decoded, the warning's offset in the second MiB
    many = [v5(30, first=1 + 30 * (i % 8)) for i in range(1200)]
    head = many[0] + bytes(100)
    rows, stats = read(tmp_path, head, *many[1:], v5(2, count=3, first=200))
    assert len(rows) == 1200 * 30 + 2
    assert stats.warnings == [
        f"{tmp_path / 'export.dat'}: byte {len(head) + 1199 * 1464}: NetFlow v5 datagram "
        "holds 2 of 3 records"
    ]


def test_a_file_that_is_no_export(tmp_path: Path) -> None:
    path = tmp_path / "export.dat"
    path.write_bytes(b"\x00\x07\x00\x01" + bytes(60))
    with pytest.raises(CaptureError) as e:
        list(iter_netflow_tables(path, stats=RecordStats()))
    assert e.value.message == f"{path}: byte 0: not a NetFlow v5/v9/IPFIX datagram"
    assert e.value.hint == "use a pcap or a raw export datagram file"


@pytest.mark.parametrize(
    ("tail", "why"),
    [
        (b"\x00\x07\x00\x01" + bytes(60), "another version"),
        (b"\x00\x0a\x00\x0f" + bytes(40), "an IPFIX length below its 16-octet header"),
        (b"\x00\x09\x00\x00" + bytes(15), "a v9 header cut short (19 octets)"),
        (b"\x00\x05\x00", "3 octets"),
    ],
)
def test_garbage_after_valid_datagrams_is_reported_once(
    tmp_path: Path, tail: bytes, why: str
) -> None:
    a = v5(2)
    rows, stats = read(tmp_path, a, tail)
    assert len(rows) == 2, why
    assert stats.warnings == [
        f"{tmp_path / 'export.dat'}: byte {len(a)}: not a NetFlow v5/v9/IPFIX datagram; "
        "the rest of the file is skipped"
    ]


def test_smallest_datagrams_of_each_version(tmp_path: Path) -> None:
    # an IPFIX message of its 16-octet header and a v9 datagram of its 20-octet header are
    # datagrams, not garbage: the file goes on (or ends cleanly)
    tset = set_(2, template(256, BASIC))
    rows, stats = read(tmp_path, ipfix(), v9(count=0), ipfix(tset, set_(256, flow(1))),
                       v9(count=0))  # fmt: skip
    assert [r["src_ip"] for r in rows] == ["10.0.0.1"]
    assert stats.counters["datagrams_ipfix"] == 2 and stats.counters["datagrams_v9"] == 2
    assert stats.warnings == []
    # four octets (version 5, count 0) at the end: too short for a v5 header, so no
    # datagram, but no garbage either
    rows, stats = read(tmp_path, v5(1), b"\x00\x05\x00\x00")
    assert len(rows) == 1 and stats.warnings == []
    assert stats.counters["non_netflow_datagrams"] == 1


def test_v5_header_counts_bound_the_datagram(tmp_path: Path) -> None:
    # a count above 30 or of 0: the datagram is taken as the v5 maximum of 30 records
    # (1464 octets), so the next datagram starts after them
    for count in (0, 31):
        rows, stats = read(tmp_path, v5(30, count=count), v5(1, first=31))
        assert len(rows) == (0 if count == 0 else 30) + 1, count
        assert [r["src_ip"] for r in rows][-1] == "10.5.0.31"
        assert stats.warnings == [
            f"{tmp_path / 'export.dat'}: byte 0: NetFlow v5 header announces {count} records "
            "(1..30 allowed)"
        ]
    # 30 announced and present, then the next one
    rows, stats = read(tmp_path, v5(30), v5(1, first=31))
    assert len(rows) == 31 and stats.warnings == []


def test_v9_datagram_ends_at_the_next_header(tmp_path: Path) -> None:
    # a v9 header has no length: its flowsets run until a set id in 2..255 (the next
    # datagram's version) or the end of the file; an empty flowset (length 4) is a flowset
    tset = set_(0, template(256, BASIC))
    rows, stats = read(
        tmp_path,
        v9(tset, set_(0, b""), set_(256, flow(1)), count=1),
        v9(set_(256, flow(2) + flow(3)), count=2),
        v9(set_(256, flow(4)), set_(0, b""), count=1),
    )
    assert sorted(r["src_ip"] for r in rows) == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
    assert stats.warnings == []
    assert stats.counters["datagrams_v9"] == 3


@pytest.mark.parametrize("tail", [b"\x00\x02\x00\x08" + bytes(4), b"\x01\x00\x10"])
def test_bytes_after_a_v9_datagram_that_start_no_flowset(tmp_path: Path, tail: bytes) -> None:
    # set id 2 is reserved in v9 (RFC 3954 §5.2): the datagram ended before it; three
    # octets are no set header
    a = v9(set_(0, template(256, BASIC)), set_(256, flow(1)), count=2)
    rows, stats = read(tmp_path, a, tail)
    assert [r["src_ip"] for r in rows] == ["10.0.0.1"]
    assert stats.warnings == [
        f"{tmp_path / 'export.dat'}: byte {len(a)}: not a NetFlow v5/v9/IPFIX datagram; "
        "the rest of the file is skipped"
    ]


# --- times ---------------------------------------------------------------------------------
T1 = 1_790_000_100  # dateTimeSeconds: 2026-09-21, 100 s after the export
T2 = 1_790_000_460


def test_ipfix_absolute_and_delta_times(tmp_path: Path) -> None:
    ntp = lambda s, frac: ((s + NTP_UNIX) << 32) | frac  # noqa: E731
    cases = {
        1: ([(150, 4), (151, 4)], struct.pack("!II", T1, T2), T1 * 10**6, T2 * 10**6),
        2: (
            [(152, 8), (153, 8)],
            struct.pack("!QQ", T1 * 1000 + 7, T2 * 1000 + 999),
            T1 * 10**6 + 7000,
            T2 * 10**6 + 999_000,
        ),
        # dateTimeMicroseconds: 2^31 / 2^32 s = 500,000 µs; 0xFFFFFFFF / 2^32 s → 999,999 µs
        3: (
            [(154, 8), (155, 8)],
            struct.pack("!QQ", ntp(T1, 1 << 31), ntp(T2, 0xFFFFFFFF)),
            T1 * 10**6 + 500_000,
            T2 * 10**6 + 999_999,
        ),
        # dateTimeNanoseconds: 4294 / 2^32 s = 0.99977 µs → 0; 4295 → 1.0000076 µs → 1
        4: (
            [(156, 8), (157, 8)],
            struct.pack("!QQ", ntp(T1, 4294), ntp(T2, 4295)),
            T1 * 10**6,
            T2 * 10**6 + 1,
        ),
        # one start in ns, the end in µs
        5: (
            [(156, 8), (155, 8)],
            struct.pack("!QQ", ntp(T1, 1), ntp(T2, 1 << 30)),
            T1 * 10**6,
            T2 * 10**6 + 250_000,
        ),
        6: (
            [(154, 8), (157, 8)],
            struct.pack("!QQ", ntp(T1, 3 << 30), ntp(T2, 0)),
            T1 * 10**6 + 750_000,
            T2 * 10**6,
        ),
        # flowStart/EndDeltaMicroseconds: before the export time of the message
        7: (
            [(158, 4), (159, 4)],
            struct.pack("!II", 2_500_000, 1_250_000),
            EXPORT_SECS * 10**6 - 2_500_000,
            EXPORT_SECS * 10**6 - 1_250_000,
        ),
        # no time element: the export time
        8: ([], b"", EXPORT_SECS * 10**6, EXPORT_SECS * 10**6),
    }
    datagrams = []
    for i, (fields, value, _, _) in cases.items():
        datagrams.append(ipfix(set_(2, template(256 + i, BASIC + fields)),
                               set_(256 + i, flow(i) + value)))  # fmt: skip
    rows, stats = read(tmp_path, *datagrams)
    assert stats.warnings == []
    assert times(rows) == sorted((f"10.0.0.{i}", a, b) for i, (_, _, a, b) in cases.items())


def test_v9_times_around_the_uptime_wrap(tmp_path: Path) -> None:
    # RFC 3954: FIRST/LAST_SWITCHED (22/21) are sysUptime in ms; 32-bit, so they wrap
    # after 49.7 days; a time slightly after the export (clock skew) is after it
    export = EXPORT_SECS * 10**6
    cases = {
        1: (UPTIME_MS, 1000, 0),  # (header uptime, first, last - first) in ms
        2: (500, (1 << 32) - 1500, 3000),  # the uptime wrapped between first and export
        3: (UPTIME_MS, UPTIME_MS - 4000, 4500),  # last 500 ms after the export
        4: ((1 << 31) + 10, 11, 0),  # 2^31 - 1 ms before: the oldest time "before"
    }
    datagrams = []
    for i, (uptime, first, span) in cases.items():
        head = struct.pack("!HHIIII", 9, 2, uptime, EXPORT_SECS, 0, 7)
        tpl = set_(0, template(256, BASIC + [(22, 4), (21, 4)]))
        data = set_(256, flow(i) + struct.pack("!II", first, (first + span) & 0xFFFFFFFF))
        datagrams.append(head + tpl + data)
    rows, stats = read(tmp_path, *datagrams)
    assert stats.warnings == []

    def at(uptime: int, t: int) -> int:
        back = (uptime - t) % (1 << 32)  # ms before the export, written out per case
        return export - back * 1000

    want = [
        ("10.0.0.1", at(UPTIME_MS, 1000), at(UPTIME_MS, 1000)),
        ("10.0.0.2", export - 2000 * 1000, export + 1000 * 1000),
        ("10.0.0.3", export - 4_000_000, export + 500_000),
        ("10.0.0.4", export - ((1 << 31) - 1) * 1000, export - ((1 << 31) - 1) * 1000),
    ]
    assert times(rows) == want


def test_v5_times_with_residual_nanoseconds(tmp_path: Path) -> None:
    # Cisco v5 header: unix_secs and unix_nsecs (residual nanoseconds); record first/last
    # are sysUptime ms; 999,999,999 ns is 999,999 µs (truncated, not rounded)
    rec = v5rec(1)
    for nsecs, extra in ((999_999_999, 999_999), (1_500, 1), (999, 0)):
        head = V5_HEADER.pack(5, 1, UPTIME_MS, EXPORT_SECS, nsecs, 0, 0, 0, 0)
        rows, stats = read(tmp_path, head + rec)
        base = EXPORT_SECS * 10**6 + extra
        assert times(rows) == [("10.5.0.1", base - 2_000_000, base - 1_000_000)], nsecs
        assert stats.warnings == []


def test_ipfix_sysuptime_times_from_an_init_time_in_the_record(tmp_path: Path) -> None:
    # IANA 21/22 are ms since systemInitTimeMilliseconds (160); here the data record
    # carries 160 itself: no options record needed, each record its own init time
    fields = BASIC + [(160, 8), (22, 4), (21, 4)]
    init = (1_789_000_000_000, 1_789_500_000_123)
    data = b"".join(flow(i + 1) + struct.pack("!QII", init[i], 1_000, 61_000) for i in (0, 1))
    rows, stats = read(tmp_path, ipfix(set_(2, template(300, fields)), set_(300, data)))
    assert stats.warnings == []
    assert times(rows) == [
        ("10.0.0.1", (init[0] + 1_000) * 1000, (init[0] + 61_000) * 1000),
        ("10.0.0.2", (init[1] + 1_000) * 1000, (init[1] + 61_000) * 1000),
    ]


def test_ipfix_sysuptime_times_near_the_storable_end(tmp_path: Path) -> None:
    # times up to 2261-12-31 are storable: an init time 50 days before that end plus a
    # minute of uptime is kept exactly; one whose sum passes the end is dropped and counted
    end_ms = 9_214_646_400_000  # 2262-01-01T00:00:00Z, the first time not storable
    fields = BASIC + [(160, 8), (22, 4), (21, 4)]
    init = end_ms - 50 * 86_400_000
    data = flow(1) + struct.pack("!QII", init, 1_000, 61_000)
    data += flow(2) + struct.pack("!QII", end_ms - 30_000, 1_000, 61_000)
    rows, stats = read(tmp_path, ipfix(set_(2, template(300, fields)), set_(300, data)))
    assert times(rows) == [("10.0.0.1", (init + 1_000) * 1000, (init + 61_000) * 1000)]
    assert stats.skipped == 1


# --- sampling --------------------------------------------------------------------------------
def test_sampling_from_the_record_its_selector_or_its_domain(tmp_path: Path) -> None:
    # per record: samplingInterval (34) or samplerRandomInterval (50) in the record wins;
    # 0 or absent: the interval an options record announced for the record's selector
    # (302, or the v9 sampler id 48), else for its observation domain, else 1 (unsampled)
    def otpl(tid: int, fields: list[tuple[int, int]]) -> bytes:
        flds = [(149, 4), *fields]
        return struct.pack("!HHH", tid, len(flds), 1) + b"".join(
            struct.pack("!HH", *f) for f in flds
        )

    opts = ipfix(
        set_(3, otpl(400, [(302, 4), (34, 4)]) + otpl(401, [(34, 4)])),
        set_(400, struct.pack("!III", 7, 5, 50)),  # selector 5 of domain 7: 1 in 50
        set_(401, struct.pack("!II", 7, 10)),  # domain 7: 1 in 10
    )
    t = {
        256: [(34, 4), (302, 4)],
        257: [(50, 4)],
        258: [],
        259: [(48, 1)],
    }
    tset = set_(2, b"".join(template(k, BASIC + v) for k, v in t.items()))
    data = [
        set_(
            256,
            flow(1)
            + struct.pack("!II", 100, 5)
            + flow(2)
            + struct.pack("!II", 0, 5)
            + flow(3)
            + struct.pack("!II", 0, 9),
        ),  # fmt: skip
        set_(257, flow(4) + struct.pack("!I", 20) + flow(5) + struct.pack("!I", 0)),
        set_(258, flow(6)),
        set_(259, flow(7) + b"\x05" + flow(8) + b"\x06"),
    ]
    rows, stats = read(tmp_path, opts, ipfix(tset, *data))
    assert stats.warnings == []
    got = sorted((r["src_ip"], r["sampling"]) for r in rows)
    want = (100, 50, 10, 20, 10, 10, 50, 10)
    assert got == [(f"10.0.0.{i}", s) for i, s in enumerate(want, start=1)]
    # another domain of the same exporter announced nothing: unsampled
    rows, stats = read(tmp_path, opts, ipfix(tset, *data, domain=8))
    assert sorted((r["src_ip"], r["sampling"]) for r in rows) == [
        (f"10.0.0.{i}", s) for i, s in zip(range(1, 9), (100, 1, 1, 20, 1, 1, 1, 1), strict=True)
    ]


# --- record fields (IANA IPFIX information elements; RFC 5103 reverse elements) --------------
REV = 29305  # RFC 5103 §6.1 reverse information element PEN
ADDR = [(SRC4, 4), (DST4, 4), (PROTO, 1), (SPORT, 2), (DPORT, 2)]


def head(i: int, proto: int = 6, sport: int = 1000, dport: int = 443) -> bytes:
    return ip4(f"10.0.0.{i}") + ip4("10.0.9.9") + struct.pack("!BHH", proto, sport, dport)


def fields_of(rows: list[dict[str, Any]], *cols: str) -> list[tuple[Any, ...]]:
    return sorted((r["src_ip"], *(r[c] for c in cols)) for r in rows)


def test_counters_from_each_of_their_elements(tmp_path: Path) -> None:
    # octets: 1 (delta), 85 (total), 231 (initiatorOctets); packets: 2, 86, 298
    # (initiatorPackets); the responder's: 232/299 (responderOctets/Packets) or the RFC 5103
    # reverse elements 1/2/85/86; tcpControlBits (6) is 16 bits since RFC 7125, the flags
    # are its low 8
    t = {
        256: ([(85, 8), (86, 8), (6, 2)], struct.pack("!QQH", 5_000_000_000, 4_000_001, 0x0112)),
        257: ([(231, 4), (232, 4), (298, 8), (299, 8)], struct.pack("!IIQQ", 700, 900, 7, 9)),
        258: ([(1, 4), (2, 4), (85, 4, REV), (86, 4, REV), (6, 2, REV)],
              struct.pack("!IIIIH", 10, 1, 20, 2, 0x0218)),
        259: ([(1, 4), (2, 4), (1, 4, REV), (2, 4, REV), (6, 1)],
              struct.pack("!IIIIB", 30, 3, 40, 4, 0x1B)),
        260: ([], b""),
    }  # fmt: skip
    tset = set_(2, b"".join(template(k, ADDR + f) for k, (f, _) in t.items()))
    data = [set_(k, head(k - 255) + v) for k, (_, v) in t.items()]
    rows, stats = read(tmp_path, ipfix(tset, *data))
    assert stats.warnings == []
    cols = ("src_bytes", "src_packets", "dst_bytes", "dst_packets", "tcp_flags_src",
            "tcp_flags_dst")  # fmt: skip
    assert fields_of(rows, *cols) == [
        ("10.0.0.1", 5_000_000_000, 4_000_001, 0, 0, 0x12, 0),
        ("10.0.0.2", 700, 7, 900, 9, 0, 0),
        ("10.0.0.3", 10, 1, 20, 2, 0, 0x18),
        ("10.0.0.4", 30, 3, 40, 4, 0x1B, 0),
        ("10.0.0.5", 0, 0, 0, 0, 0, 0),
    ]


def test_vlan_from_each_of_its_elements(tmp_path: Path) -> None:
    # vlanId (58), else dot1qVlanId (243), else postVlanId (59); 0 is no VLAN; an exporter
    # that sends the whole 802.1Q TCI (priority in the top 3 bits) still means its VID
    t = {
        256: ([(58, 2)], struct.pack("!H", 112)),
        257: ([(243, 2)], struct.pack("!H", 200)),
        258: ([(59, 2)], struct.pack("!H", 300)),
        259: ([(58, 2)], struct.pack("!H", 0)),
        260: ([(58, 2)], struct.pack("!H", (5 << 13) | 4094)),
        261: ([], b""),
    }
    tset = set_(2, b"".join(template(k, ADDR + f) for k, (f, _) in t.items()))
    rows, stats = read(
        tmp_path, ipfix(tset, *(set_(k, head(k - 255) + v) for k, (_, v) in t.items()))
    )
    assert stats.warnings == []
    assert fields_of(rows, "vlan_id") == [
        ("10.0.0.1", 112), ("10.0.0.2", 200), ("10.0.0.3", 300), ("10.0.0.4", None),
        ("10.0.0.5", 4094), ("10.0.0.6", None),
    ]  # fmt: skip


def test_icmp_type_and_code_from_each_of_their_elements(tmp_path: Path) -> None:
    # the flow's ports of an ICMP record are its type and code (Community ID's mapping):
    # from icmpTypeCodeIPv4/IPv6 (32/139, type·256 + code), from icmpTypeIPv4 + icmpCodeIPv4
    # (176/177) or icmpTypeIPv6 + icmpCodeIPv6 (178/179), else from the destination port,
    # where Cisco exporters put type·256 + code; the destination port of a request type is
    # its reply type (Community ID: echo request 8 → 0, ICMPv6 128 → 129)
    t = {
        256: (1, 0, [(32, 2)], struct.pack("!H", 0x0800)),  # echo request
        257: (58, 0, [(139, 2)], struct.pack("!H", 0x8000)),  # ICMPv6 echo request (128)
        258: (1, 0, [(176, 1), (177, 1)], struct.pack("!BB", 3, 13)),
        259: (58, 0, [(178, 1), (179, 1)], struct.pack("!BB", 1, 4)),
        260: (1, 0x0B01, [], b""),  # time exceeded, fragment reassembly
        261: (1, 0x0303, [(176, 1)], struct.pack("!B", 5)),  # a type without its code
        262: (6, 0x0303, [(32, 2)], struct.pack("!H", 0x0800)),  # TCP: the ports stay
    }
    tset = set_(2, b"".join(template(k, ADDR + f) for k, (_, _, f, _) in t.items()))
    data = [set_(k, head(k - 255, p, 7, dp) + v) for k, (p, dp, _, v) in t.items()]
    # one data set of ICMP and UDP records: only the ICMP ones get type and code
    mixed = set_(256, head(8, 17, 40000, 53) + b"\x00\x00" + head(9, 1, 0, 0) + b"\x03\x01")
    rows, stats = read(tmp_path, ipfix(tset, *data, mixed))
    assert stats.warnings == []
    assert fields_of(rows, "protocol", "src_port", "dst_port") == [
        ("10.0.0.1", 1, 8, 0), ("10.0.0.2", 58, 128, 129), ("10.0.0.3", 1, 3, 13),
        ("10.0.0.4", 58, 1, 4), ("10.0.0.5", 1, 11, 1), ("10.0.0.6", 1, 3, 3),
        ("10.0.0.7", 6, 7, 0x0303), ("10.0.0.8", 17, 40000, 53), ("10.0.0.9", 1, 3, 1),
    ]  # fmt: skip


def test_records_without_addresses_are_skipped_and_counted(tmp_path: Path) -> None:
    # no address element, or only a source address: no flow
    v6 = bytes.fromhex("20010db8000000000000000000000001")
    v6d = bytes.fromhex("20010db8000000000000000000000002")
    t = {
        256: ([(PROTO, 1), (SPORT, 2)], struct.pack("!BH", 6, 1)),
        257: ([(SRC4, 4), (PROTO, 1), (28, 16)], ip4("10.0.0.3") + b"\x06" + v6d),
        258: ([(SRC4, 4), (DST4, 4)], ip4("10.0.0.5") + ip4("10.0.9.9")),  # no protocol, ports
        259: ([(27, 16), (28, 16)], v6 + v6d),
    }
    tset = set_(2, b"".join(template(k, f) for k, (f, _) in t.items()))
    data = [set_(k, v + v) for k, (_, v) in t.items()]  # two records each
    rows, stats = read(tmp_path, ipfix(tset, *data))
    assert stats.warnings == []
    got = sorted((r["src_ip"], r["dst_ip"], r["ip_version"], r["protocol"], r["src_port"],
                  r["dst_port"]) for r in rows)  # fmt: skip
    # protocol 0 when absent; protocol 0 (HOPOPT) has no ports: null (FLOW_SCHEMA)
    assert (
        got
        == [("10.0.0.5", "10.0.9.9", 4, 0, None, None)] * 2
        + [("2001:db8::1", "2001:db8::2", 6, 0, None, None)] * 2
    )
    assert stats.skipped == 4 and stats.counters["records_without_addresses"] == 4
    assert stats.records == 4 and stats.counters["records_ipfix"] == 4


def test_address_elements_of_another_length_are_no_addresses(tmp_path: Path) -> None:
    # RFC 7011 §6.2: reduced-size encoding is for numbers only; an IPv4 address element
    # declared 16 or 3 octets long, or an IPv6 one declared 4, 8 or 17, holds no address: the
    # record has none (no flow), or the other version's addresses are used
    v6 = bytes.fromhex("20010db8000000000000000000000001")
    v6d = bytes.fromhex("20010db8000000000000000000000002")
    t = {
        256: ([(SRC4, 16), (DST4, 16), (PROTO, 1)], v6 + v6d + b"\x06"),
        257: ([(SRC4, 3), (DST4, 4), (PROTO, 1)], b"\x0a\x01\x02" + ip4("10.0.0.2") + b"\x06"),
        258: ([(SRC4, 16), (DST4, 4), (27, 16), (28, 16)], v6 + ip4("10.0.0.4") + v6 + v6d),
        259: (
            [(SRC4, 4), (DST4, 4), (27, 4), (28, 8)],
            ip4("10.0.0.6") + ip4("10.0.0.7") + ip4("10.9.9.9") + bytes(8),
        ),  # fmt: skip
        260: ([(27, 8), (28, 17), (PROTO, 1)], v6[:8] + v6d + b"\x00\x06"),
    }
    tset = set_(2, b"".join(template(k, f) for k, (f, _) in t.items()))
    rows, stats = read(tmp_path, ipfix(tset, *(set_(k, v) for k, (_, v) in t.items())))
    assert stats.warnings == []
    assert sorted((r["src_ip"], r["dst_ip"]) for r in rows) == [
        ("10.0.0.6", "10.0.0.7"),
        ("2001:db8::1", "2001:db8::2"),
    ]
    assert stats.skipped == 3 and stats.counters["records_without_addresses"] == 3


def test_flow_direction_and_record_counts(tmp_path: Path) -> None:
    # flowDirection (61): 0 ingress, 1 egress; records are counted per version
    tset = set_(2, template(256, ADDR + [(61, 1)]))
    data = set_(256, head(1) + b"\x00" + head(2) + b"\x01" + head(3) + b"\x01")
    nf9 = v9(set_(0, template(256, ADDR)), set_(256, head(4)), count=2)
    rows, stats = read(tmp_path, ipfix(tset, data), nf9, v5(2))
    assert len(rows) == 6 and stats.warnings == []
    assert stats.counters["egress_records"] == 2
    assert (stats.counters["records_ipfix"], stats.counters["records_netflow9"],
            stats.counters["records_netflow5"]) == (3, 1, 2)  # fmt: skip
    assert stats.records == 6
    assert sorted(r["source_kind"] for r in rows) == ["ipfix"] * 3 + ["netflow5"] * 2 + ["netflow9"]


def test_an_end_before_the_start_is_the_start(tmp_path: Path) -> None:
    # a corrupt record whose end precedes its start: the flow lasts no time
    tset = set_(2, template(256, ADDR + [(150, 4), (151, 4)]))
    rows, stats = read(tmp_path, ipfix(tset, set_(256, head(1) + struct.pack("!II", T2, T1))))
    assert times(rows) == [("10.0.0.1", T2 * 10**6, T2 * 10**6)]


# --- pairing and the flow stream -------------------------------------------------------------
def test_records_are_paired_by_default_with_the_given_gap_and_service_ports(
    tmp_path: Path,
) -> None:
    # pairing.py's rules: the reverse record must start within max_gap_s of the first one's
    # end; on equal starts the record *from* a service port is the responder's, else the
    # one from the lower port. Flows come sorted by start.
    tset = set_(2, template(256, BASIC + [(150, 4), (151, 4)]))

    def rec(src: str, dst: str, sport: int, dport: int, start: int, end: int) -> bytes:
        return basic(src, dst, 17, sport, dport, 2, 200) + struct.pack("!II", start, end)

    late = rec("10.0.0.1", "10.0.9.9", 5000, 6000, T1 + 100, T1 + 101)  # alone, listed first
    a = rec("10.0.0.1", "10.0.9.9", 5000, 6000, T1, T1 + 1)
    b = rec("10.0.9.9", "10.0.0.1", 6000, 5000, T1, T1 + 31)
    c = rec("10.0.0.2", "10.0.9.9", 5000, 6000, T1 + 50, T1 + 51)
    c2 = rec("10.0.9.9", "10.0.0.2", 6000, 5000, T1 + 81, T1 + 82)  # 30 s after c ends
    path = tmp_path / "export.dat"
    path.write_bytes(ipfix(tset, set_(256, late + a + b + c + c2)))

    def flows(**kw: Any) -> tuple[list[tuple[Any, ...]], RecordStats]:
        stats = RecordStats()
        rows = [r for t in iter_netflow_tables(path, stats=stats, **kw) for r in t.to_pylist()]
        assert stats.flows == len(rows)
        return [(r["src_ip"], r["src_port"], r["dst_packets"], us(r["first_seen"]) // 10**6)
                for r in rows], stats  # fmt: skip

    got, _ = flows()
    assert got == [
        ("10.0.9.9", 6000, 2, T1),  # equal starts, no service port: from the lower port
        ("10.0.0.2", 5000, 2, T1 + 50),
        ("10.0.0.1", 5000, 0, T1 + 100),
    ]
    got, _ = flows(service_ports=[6000], max_gap_s=10)
    assert got == [
        ("10.0.0.1", 5000, 2, T1),  # 6000 approved: the record from it is the responder's
        ("10.0.0.2", 5000, 0, T1 + 50),
        ("10.0.9.9", 6000, 0, T1 + 81),  # c2 starts 30 s after c ends: not its reply
        ("10.0.0.1", 5000, 0, T1 + 100),
    ]
    got, _ = flows(pair=False)
    assert [g[0] for g in got] == ["10.0.0.1", "10.0.0.1", "10.0.9.9", "10.0.0.2", "10.0.9.9"]


def test_a_raw_file_is_read_in_bounded_pieces(tmp_path: Path) -> None:
    # memory must not grow with the input: a 6 MB raw file is split holding about one 1 MiB
    # read plus the rest of the previous one at a time (3.4 MB at the peak), never the file
    one = v5(30)
    path = tmp_path / "export.dat"
    path.write_bytes(one * 4200)  # 6.1 MB
    tracemalloc.start()
    try:
        n = sum(1 for _ in _raw_datagrams(path, RecordStats()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == 4200
    assert peak < 5 << 20, peak


def test_the_address_is_the_element_occurrence_the_template_decodes(tmp_path: Path) -> None:
    # RFC 7011 §8: an element may repeat; the decoded one is its first fixed-length,
    # non-empty IANA occurrence (an enterprise element with the same number, an empty or
    # a variable-length occurrence before it do not count), and that occurrence's length
    # decides whether it is an address
    t1 = [(SRC4, 6, 9), (SRC4, 0), (SRC4, 65535), (SRC4, 4), (DST4, 4), (PROTO, 1)]
    r1 = b"\xaa" * 6 + b"\x03abc" + ip4("10.0.0.1") + ip4("10.0.9.9") + b"\x11"
    t2 = [(SRC4, 1), (SRC4, 4), (DST4, 4), (PROTO, 1)]  # a 1-octet "address" first
    r2 = b"\x07" + ip4("10.0.0.2") + ip4("10.0.9.9") + b"\x11"
    tset = set_(2, template(256, t1) + template(257, t2))
    rows, stats = read(tmp_path, ipfix(tset, set_(256, r1), set_(257, r2)))
    assert stats.warnings == []
    assert [(r["src_ip"], r["dst_ip"], r["protocol"]) for r in rows] == [
        ("10.0.0.1", "10.0.9.9", 17)
    ]
    assert stats.counters["records_without_addresses"] == 1
