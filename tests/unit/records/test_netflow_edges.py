"""NetFlow v9 / IPFIX edge cases the mutation run (tests/MUTATION.md) found untested.

Every export here is encoded with ``struct`` from the published layouts: RFC 3954 (v9
header, template flowset 0, options template flowset 1 with scope and option lengths in
bytes) and RFC 7011 (IPFIX header with the message length, template set 2, options
template set 3 with a scope field count, enterprise bit and PEN, variable-length fields
in one length octet or 255 plus two length octets, §7). The expected values are the
values encoded, never the reader's own output.
"""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path
from typing import Any

import pytest

from flowaudit.records.common import RecordStats
from flowaudit.records.netflow import decode
from flowaudit.records.netflow.reader import iter_netflow_tables

EXPORT_SECS = 1_790_000_000  # 2026-09-21
UPTIME_MS = 50_000_000
DOMAIN = 7
VARLEN = 65535

# IANA information elements (RFC 7012 / the IANA IPFIX registry)
OCTETS, PACKETS, PROTO, FLAGS, SPORT, SRC4, DPORT, DST4 = 1, 2, 4, 6, 7, 8, 11, 12
SRC6, DST6, SAMPLING_INTERVAL, SAMPLER_ID, SAMPLING_ALGORITHM = 27, 28, 34, 48, 35
SAMPLER_RANDOM_INTERVAL, SELECTOR_ID, SYSTEM_INIT_MS = 50, 302, 160
PKT_INTERVAL, PKT_SPACE, POPULATION, SAMPLE_SIZE = 305, 306, 310, 309
INTERFACE_NAME, APPLICATION_NAME, OBS_DOMAIN_ID = 82, 96, 149


def set_(set_id: int, body: bytes) -> bytes:
    return struct.pack("!HH", set_id, len(body) + 4) + body


def ipfix(*sets: bytes, domain: int = DOMAIN) -> bytes:
    body = b"".join(sets)
    return struct.pack("!HHIII", 10, 16 + len(body), EXPORT_SECS, 0, domain) + body


def v9(*sets: bytes, count: int = 1, domain: int = DOMAIN) -> bytes:
    body = b"".join(sets)
    return struct.pack("!HHIIII", 9, count, UPTIME_MS, EXPORT_SECS, 0, domain) + body


def tfields(fields: list[tuple[int, ...]]) -> bytes:
    """Template field specifiers: (ie, length) or (ie, length, pen) with the enterprise bit."""
    out = b""
    for f in fields:
        if len(f) == 3:
            out += struct.pack("!HHI", f[0] | 0x8000, f[1], f[2])
        else:
            out += struct.pack("!HH", f[0], f[1])
    return out


def template(tid: int, fields: list[tuple[int, ...]]) -> bytes:
    return struct.pack("!HH", tid, len(fields)) + tfields(fields)


def varlen(value: bytes, long_form: bool = False) -> bytes:
    """RFC 7011 §7: one length octet below 255, else 255 and a two-octet length."""
    if long_form or len(value) >= 255:
        return b"\xff" + struct.pack("!H", len(value)) + value
    return bytes([len(value)]) + value


def ip4(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def read(tmp_path: Path, *datagrams: bytes) -> tuple[list[dict[str, Any]], RecordStats]:
    """The datagrams back to back in a raw export file, decoded unpaired."""
    path = tmp_path / "export.dat"
    path.write_bytes(b"".join(datagrams))
    stats = RecordStats()
    rows = [r for t in iter_netflow_tables(path, stats=stats, pair=False) for r in t.to_pylist()]
    return rows, stats


def tuples(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    cols = ("src_ip", "dst_ip", "protocol", "src_port", "dst_port", "src_packets", "src_bytes")
    return sorted(tuple(r[c] for c in cols) for r in rows)


# --- templates -----------------------------------------------------------------------------
BASIC = [(SRC4, 4), (DST4, 4), (PROTO, 1), (SPORT, 2), (DPORT, 2), (PACKETS, 4), (OCTETS, 4)]


def basic(src: str, dst: str, proto: int, sport: int, dport: int, pk: int, by: int) -> bytes:
    return ip4(src) + ip4(dst) + struct.pack("!BHHII", proto, sport, dport, pk, by)


def test_a_redefined_template_replaces_the_old_layout(tmp_path: Path) -> None:
    # RFC 7011 §8.1 / RFC 3954 §5.2: a template announced again under the same id with
    # other fields replaces the old one; data after it follows the new layout
    new = [(PROTO, 1), (OCTETS, 8), (DST4, 4), (SRC4, 4), (DPORT, 2), (SPORT, 2), (PACKETS, 2)]
    rec2 = struct.pack("!BQ", 17, 123_456_789_012) + ip4("192.0.2.9") + ip4("198.51.100.1")
    rec2 += struct.pack("!HHH", 53, 40_000, 3)
    for enc in (ipfix, v9):
        tset = 2 if enc is ipfix else 0
        rows, stats = read(
            tmp_path,
            enc(set_(tset, template(300, BASIC))),
            enc(set_(300, basic("10.0.0.1", "10.0.0.2", 6, 1234, 443, 5, 900))),
            # the same template again (no change), and a new one in the same set
            enc(set_(tset, template(300, BASIC) + template(301, BASIC))),
            enc(set_(301, basic("10.0.0.5", "10.0.0.6", 6, 3456, 22, 9, 1300))),
            enc(set_(300, basic("10.0.0.3", "10.0.0.4", 6, 2345, 80, 7, 1100))),
            enc(set_(tset, template(300, new))),
            enc(set_(300, rec2)),
        )
        assert stats.warnings == []
        assert tuples(rows) == [
            ("10.0.0.1", "10.0.0.2", 6, 1234, 443, 5, 900),
            ("10.0.0.3", "10.0.0.4", 6, 2345, 80, 7, 1100),
            ("10.0.0.5", "10.0.0.6", 6, 3456, 22, 9, 1300),
            ("198.51.100.1", "192.0.2.9", 17, 40_000, 53, 3, 123_456_789_012),
        ]


def test_an_element_repeated_in_a_template(tmp_path: Path) -> None:
    # RFC 7011 §8: an information element may occur more than once in a template
    fields = [(SRC4, 4), (DST4, 4), (SRC4, 4), (PROTO, 1), (SPORT, 2), (DPORT, 2), (OCTETS, 4)]
    data = ip4("10.1.1.1") + ip4("10.2.2.2") + ip4("10.1.1.1") + struct.pack("!BHHI", 6, 1, 2, 77)
    rows, stats = read(tmp_path, ipfix(set_(2, template(256, fields)), set_(256, data)))
    assert stats.warnings == []
    assert tuples(rows) == [("10.1.1.1", "10.2.2.2", 6, 1, 2, 0, 77)]


def test_zero_length_ipv4_fields_leave_the_ipv6_addresses(tmp_path: Path) -> None:
    # an exporter that declares the IPv4 address elements with length 0 (nothing in the
    # record) and sends IPv6 addresses: the record is an IPv6 record
    fields = [(SRC4, 0), (DST4, 0), (SRC6, 16), (DST6, 16), (PROTO, 1), (SPORT, 2), (DPORT, 2),
              (OCTETS, 4)]  # fmt: skip
    a, b = ipaddress.IPv6Address("2001:db8::1"), ipaddress.IPv6Address("2001:db8:ff::2")
    data = a.packed + b.packed + struct.pack("!BHHI", 17, 5353, 5353, 1234)
    for enc, tset in ((ipfix, 2), (v9, 0)):
        rows, stats = read(tmp_path, enc(set_(tset, template(256, fields)), set_(256, data)))
        assert stats.warnings == []
        assert tuples(rows) == [("2001:db8::1", "2001:db8:ff::2", 17, 5353, 5353, 0, 1234)]
        assert rows[0]["ip_version"] == 6


def test_a_counter_wider_than_eight_bytes_reads_its_value(tmp_path: Path) -> None:
    # RFC 7011 §6.2 allows only reduced sizes; a 16-byte octetDeltaCount (hostile or
    # broken exporters) still encodes an unsigned integer: its value when it fits 64 bits
    fields = [(SRC4, 4), (DST4, 4), (PROTO, 1), (OCTETS, 16), (PACKETS, 9)]
    data = ip4("10.0.0.1") + ip4("10.0.0.2") + bytes([6])
    data += (2**63 + 12345).to_bytes(16, "big") + (4242).to_bytes(9, "big")
    rows, stats = read(tmp_path, ipfix(set_(2, template(256, fields)), set_(256, data)))
    assert [(r["src_bytes"], r["src_packets"]) for r in rows] == [(2**63 + 12345, 4242)]


def test_a_template_of_variable_length_fields_only(tmp_path: Path) -> None:
    # valid IPFIX records with no address: skipped as such, no warning
    fields = [(INTERFACE_NAME, VARLEN), (APPLICATION_NAME, VARLEN)]
    data = varlen(b"eth0") + varlen(b"http") + varlen(b"") + varlen(b"x" * 300)
    rows, stats = read(tmp_path, ipfix(set_(2, template(256, fields)), set_(256, data)))
    assert rows == [] and stats.warnings == []
    assert stats.counters["records_without_addresses"] == 2


# --- variable-length fields (RFC 7011 §7) ------------------------------------------------
VFIELDS = [(SRC4, 4), (INTERFACE_NAME, VARLEN), (DST4, 4), (PROTO, 1), (SPORT, 2), (DPORT, 2),
           (OCTETS, 4), (201, VARLEN, 9)]  # fmt: skip


def vrec(
    i: int, name: bytes, vendor: bytes, long_name: bool = False, long_vendor: bool = False
) -> bytes:
    fixed = struct.pack("!BHHI", 6, 1000 + i, 443, 100 * i)
    name_ = varlen(name, long_name)
    return ip4(f"10.0.0.{i}") + name_ + ip4(f"10.9.0.{i}") + fixed + varlen(vendor, long_vendor)


def vwant(*ids: int) -> list[tuple[Any, ...]]:
    return [(f"10.0.0.{i}", f"10.9.0.{i}", 6, 1000 + i, 443, 0, 100 * i) for i in ids]


def test_variable_length_fields_in_both_length_forms(tmp_path: Path) -> None:
    data = (
        vrec(1, b"eth0", b"")  # short form, an empty value
        + vrec(2, b"x" * 254, b"v" * 255)  # the longest short form; 255 needs the long form
        + vrec(3, b"y" * 300, b"w" * 1000)  # long form
        + vrec(4, b"ge-0/0/1", b"abc", long_name=True)  # the long form for a short value
        + vrec(5, b"", b"", long_vendor=True)  # ... and for an empty last value: 255 0 0
        + bytes(24)  # zeros after the last record: padding, not a record of zeros
    )
    rows, stats = read(tmp_path, ipfix(set_(2, template(256, VFIELDS)), set_(256, data)))
    assert stats.warnings == []
    assert tuples(rows) == vwant(1, 2, 3, 4, 5)


def test_a_long_form_empty_value_ending_the_set(tmp_path: Path) -> None:
    # RFC 7011 §7: 255 then a two-octet length 0 is a valid empty value; when its two length
    # octets are the set's last ones the record is whole, not cut short
    data = vrec(1, b"eth0", b"") + vrec(2, b"", b"", long_vendor=True)
    assert data.endswith(b"\xff\x00\x00")
    rows, stats = read(tmp_path, ipfix(set_(2, template(256, VFIELDS)), set_(256, data)))
    assert stats.warnings == []
    assert tuples(rows) == vwant(1, 2)


@pytest.mark.parametrize(
    ("tail", "what"),
    [
        (b"", "the set ends where the length octet should be"),
        (b"\xff\x01", "the set ends inside the two-octet length"),
        (b"\x09eth", "the value is cut short"),
    ],
)
def test_a_variable_length_record_cut_short_warns(tmp_path: Path, tail: bytes, what: str) -> None:
    # the records before the cut decode; the cut record is reported, not guessed
    fields = [(SRC4, 4), (DST4, 4), (PROTO, 1), (OCTETS, 4), (INTERFACE_NAME, VARLEN)]
    fixed = [ip4(f"10.0.0.{i}") + ip4("10.9.9.9") + struct.pack("!BI", 17, i) for i in (1, 2, 3)]
    data = fixed[0] + varlen(b"eth") + fixed[1] + varlen(b"eth") + fixed[2] + tail
    tset = set_(2, template(256, fields))
    rows, stats = read(tmp_path, ipfix(tset, set_(256, data)))
    assert [(r["src_ip"], r["src_bytes"]) for r in rows] == [("10.0.0.1", 1), ("10.0.0.2", 2)]
    at = 16 + len(tset)  # the data set's offset: after the header and the template set
    assert stats.warnings == [
        f"{tmp_path / 'export.dat'}: byte {at}: template 256: variable-length record cut short"
    ], what


# --- NetFlow v5 (Cisco's published v5 layout: 24-byte header, 1..30 records of 48 bytes) --
V5_HEADER = struct.Struct("!HHIIIIBBH")
V5_RECORD = struct.Struct("!4s4s4sHHIIIIHHBBBBHHBBH")


def v5rec(i: int, proto: int = 6, pkts: int = 3, octets: int = 180) -> bytes:
    return V5_RECORD.pack(ip4(f"10.5.0.{i}"), ip4(f"10.6.0.{i}"), bytes(4), 1, 2, pkts, octets,
                          UPTIME_MS - 2000, UPTIME_MS - 1000, 1000 + i, 80, 0, 0x1B, proto, 0,
                          0, 0, 24, 24, 0)  # fmt: skip


def v5(n: int, count: int | None = None, etype: int = 0, eid: int = 0, samp: int = 0,
       first: int = 1) -> bytes:  # fmt: skip
    head = V5_HEADER.pack(5, n if count is None else count, UPTIME_MS, EXPORT_SECS, 0, 0,
                          etype, eid, samp)  # fmt: skip
    return head + b"".join(v5rec(first + i) for i in range(n))


def test_v5_engine_and_sampling_header_fields(tmp_path: Path) -> None:
    a = v5(2, etype=1, eid=2, samp=(1 << 14) | 2)  # sampling mode 1, interval 2
    b = v5(1, etype=0x12, eid=0x34, samp=(2 << 14) | 1000, first=3)
    rows, stats = read(tmp_path, a, b)
    assert stats.warnings == []
    # the domain of a v5 record: engine type and engine id, the header's 16 bits at byte 20
    # (nfdump's "engine tag"); sampling: the low 14 bits of the last header field
    dom = [struct.unpack_from("!H", d, 20)[0] for d in (a, b)]
    want = [(dom[0], 2)] * 2 + [(dom[1], 1000)]
    assert sorted((r["observation_domain"], r["sampling"]) for r in rows) == sorted(want)
    assert dom == [258, 0x1234]


def test_v5_datagram_holding_fewer_records_than_announced(tmp_path: Path) -> None:
    cut = v5(3)[: 24 + 2 * 48 + 20]  # three announced, two and a part present
    rows, stats = read(tmp_path, v5(1, first=9), cut)
    assert sorted(r["src_ip"] for r in rows) == ["10.5.0.1", "10.5.0.2", "10.5.0.9"]
    assert stats.warnings == [f"{tmp_path / 'export.dat'}: byte 72: NetFlow v5 datagram holds "
                              "2 of 3 records"]  # fmt: skip


@pytest.mark.parametrize(("count", "present", "rows_"), [(31, 30, 30), (35, 2, 2), (0, 2, 0)])
def test_v5_header_count_outside_1_to_30(
    tmp_path: Path, count: int, present: int, rows_: int
) -> None:
    # a raw export file: the header is wrong, so at most 30 records (1464 bytes, the v5
    # maximum) and at most the announced count are read, and the header is reported
    rows, stats = read(tmp_path, v5(present, count=count))
    assert len(rows) == rows_
    assert stats.warnings == [f"{tmp_path / 'export.dat'}: byte 0: NetFlow v5 header announces "
                              f"{count} records (1..30 allowed)"]  # fmt: skip
    assert stats.counters["datagrams_v5"] == 1
    assert "non_netflow_datagrams" not in stats.counters


def pcap(*payloads: bytes) -> bytes:
    """A libpcap file (Ethernet, IPv4, UDP to port 2055) of the payloads."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, p in enumerate(payloads):
        udp = struct.pack("!HHHH", 40000, 2055, 8 + len(p), 0) + p
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         ip4("192.0.2.1"), ip4("192.0.2.2")) + udp  # fmt: skip
        fr = b"\x02" * 12 + b"\x08\x00" + ip
        out += struct.pack("<IIII", EXPORT_SECS, i, len(fr), len(fr)) + fr
    return out


def test_v5_datagrams_with_bad_headers_in_a_capture(tmp_path: Path) -> None:
    # in a capture, UDP payloads that are no v5 datagram are other traffic: counted, skipped
    path = tmp_path / "export.pcap"
    path.write_bytes(pcap(
        v5(1),
        v5(0, count=0),  # a header announcing no record: not NetFlow
        b"\x00\x05" + bytes(8),  # shorter than the v5 header
        v5(0, count=1),  # one record announced, none there: a cut datagram
    ))  # fmt: skip
    stats = RecordStats()
    rows = [r for t in iter_netflow_tables(path, stats=stats, pair=False) for r in t.to_pylist()]
    assert [r["src_ip"] for r in rows] == ["10.5.0.1"]
    assert stats.counters["non_netflow_datagrams"] == 2
    assert stats.counters["datagrams_v5"] == 2
    assert len(stats.warnings) == 1
    assert "NetFlow v5 datagram holds 0 of 1 records" in stats.warnings[0]


def test_records_are_handed_over_in_chunks(tmp_path: Path) -> None:
    # memory stays bounded: tables of at most chunk_records (whole datagrams) are yielded
    path = tmp_path / "export.dat"
    path.write_bytes(b"".join(v5(30, first=1 + 30 * i) for i in range(5)))
    stats = RecordStats()
    sizes = [t.num_rows for t in iter_netflow_tables(path, stats=stats, chunk_records=60,
                                                     pair=False)]  # fmt: skip
    assert sum(sizes) == 150 and max(sizes) <= 60
    # the same for IPFIX data sets (25 records each)
    path.write_bytes(
        ipfix(set_(2, template(256, T20)))
        + b"".join(ipfix(set_(256, records20(25 * i))) for i in range(5))
    )
    sizes = [
        t.num_rows
        for t in iter_netflow_tables(path, stats=RecordStats(), chunk_records=50, pair=False)
    ]
    assert sum(sizes) == 125 and max(sizes) <= 50


# --- options records: sampling (RFC 3954 §6.1, RFC 7011 §3.4.2.2, RFC 7014 PSAMP) ---------
def test_psamp_sampling_per_selector(tmp_path: Path) -> None:
    # options templates with the observation domain as scope; a selector's interval is
    # samplingPopulation / samplingSize (RFC 7014 §8.2.2); a selector announcing only one
    # of them has no interval
    def otpl(tid: int, fields: list[tuple[int, int]]) -> bytes:
        return struct.pack("!HHH", tid, 1 + len(fields), 1) + tfields([(OBS_DOMAIN_ID, 4)] + fields)

    both, size_only, pop_only = 400, 401, 402
    opts = ipfix(
        set_(3, otpl(both, [(SELECTOR_ID, 4), (SAMPLE_SIZE, 4), (POPULATION, 4)])
             + otpl(size_only, [(SELECTOR_ID, 4), (SAMPLE_SIZE, 4)])
             + otpl(pop_only, [(SELECTOR_ID, 4), (POPULATION, 4)])),
        set_(size_only, struct.pack("!III", DOMAIN, 1, 5)),
        set_(pop_only, struct.pack("!III", DOMAIN, 2, 1000)),
        set_(both, struct.pack("!IIIIIIII", DOMAIN, 3, 1, 100, DOMAIN, 4, 2, 50)),
    )  # fmt: skip
    fields = [(SRC4, 4), (DST4, 4), (PROTO, 1), (SELECTOR_ID, 4)]
    data = b"".join(
        ip4(f"10.0.0.{s}") + ip4("10.0.1.1") + struct.pack("!BI", 17, s) for s in (3, 4)
    )
    rows, stats = read(tmp_path, opts, ipfix(set_(2, template(256, fields)), set_(256, data)))
    assert stats.warnings == []
    assert stats.counters["options_records"] == 4
    assert sorted((r["src_ip"], r["sampling"]) for r in rows) == [("10.0.0.3", 100),
                                                                   ("10.0.0.4", 25)]  # fmt: skip


def test_a_template_of_zero_length_fields_only(tmp_path: Path) -> None:
    tset = set_(2, template(256, [(SRC4, 0), (DST4, 0)]))
    rows, stats = read(tmp_path, ipfix(tset, set_(256, bytes(8))))
    assert rows == []
    assert stats.warnings == [
        f"{tmp_path / 'export.dat'}: byte {16 + len(tset)}: template 256 has record length 0: "
        "data set skipped"
    ]
    # a data set decoded late (its template came after it) is reported at its own offset
    first = ipfix(set_(256, bytes(8)))
    rows, stats = read(tmp_path, first, ipfix(tset))
    assert rows == []
    assert stats.warnings == [
        f"{tmp_path / 'export.dat'}: byte 16: template 256 has record length 0: data set skipped"
    ]


# --- data sets waiting for their template ------------------------------------------------
T20 = [(SRC4, 4), (DST4, 4), (PROTO, 1), (SPORT, 2), (DPORT, 2), (PACKETS, 3), (OCTETS, 4)]


def records20(first: int, n: int = 25) -> bytes:
    """n records of template T20 (20 bytes each), sources 10.20.x.y numbered from first."""
    return b"".join(
        ip4(f"10.20.{i // 250}.{i % 250 + 1}") + ip4("10.21.0.1")
        + struct.pack("!BHH", 17, i, 53) + i.to_bytes(3, "big") + struct.pack("!I", 10 * i)
        for i in range(first, first + n)
    )  # fmt: skip


def test_waiting_data_sets_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # data sets before their template wait, up to MAX_WAITING_BYTES (here 1000 bytes):
    # two sets of 500 bytes fit exactly, the third is dropped and counted
    monkeypatch.setattr(decode, "MAX_WAITING_BYTES", 1000)
    before = [
        ipfix(set_(256, records20(0))),
        ipfix(set_(256, records20(25))),
        ipfix(set_(256, records20(50))),  # 1500 bytes would wait: dropped
        ipfix(set_(2, template(256, T20))),  # the two waiting sets decode now
    ]
    rows, stats = read(
        tmp_path,
        *before,
        ipfix(set_(257, records20(75))),  # the space is free again: both wait ...
        ipfix(set_(257, records20(100))),  # ... for a template that never comes
    )
    at = sum(len(d) for d in before) + 16  # the first data set of template 257
    assert stats.warnings == [
        f"{tmp_path / 'export.dat'}: byte {at}: 2 data set(s), 1000 bytes, for template 257 "
        f"of exporter file domain {DOMAIN}: the template never arrived"
    ]
    assert sorted(r["src_port"] for r in rows) == list(range(50))
    assert [r["src_bytes"] for r in sorted(rows, key=lambda r: r["src_port"])] == [
        10 * i for i in range(50)
    ]
    c = stats.counters
    assert c["data_sets_dropped_waiting_full"] == 1
    assert c["data_sets_decoded_late"] == 2
    assert (c["data_sets_without_template"], c["bytes_without_template"]) == (2, 1000)


# --- template withdrawal (RFC 7011 §8.1: a template record with field count 0) -----------
def test_a_withdrawn_template_no_longer_decodes(tmp_path: Path) -> None:
    # Figure S of RFC 7011 §8.1: Set ID 2 (or 3 for options templates), then Template ID
    # and Field Count = 0 -- four bytes, also for options templates (no scope count)
    otpl = struct.pack("!HHH", 400, 2, 1) + tfields([(OBS_DOMAIN_ID, 4), (SAMPLING_INTERVAL, 4)])
    rows, stats = read(
        tmp_path,
        ipfix(set_(2, template(256, BASIC)), set_(3, otpl)),
        ipfix(set_(256, basic("10.0.0.1", "10.0.0.2", 6, 1, 2, 3, 4))),
        # withdraws template 256 and 999 (never defined), defines 257 in the same set
        ipfix(set_(2, struct.pack("!HHHH", 256, 0, 999, 0) + template(257, BASIC))),
        ipfix(set_(3, struct.pack("!HH", 400, 0))),  # withdraws options template 400
        ipfix(set_(256, basic("10.0.0.5", "10.0.0.6", 6, 1, 2, 3, 4))),  # no template now
        ipfix(set_(400, struct.pack("!II", DOMAIN, 100))),  # no template now
        ipfix(set_(257, basic("10.0.0.7", "10.0.0.8", 6, 1, 2, 3, 4))),
    )
    assert sorted(r["src_ip"] for r in rows) == ["10.0.0.1", "10.0.0.7"]
    assert {r["sampling"] for r in rows} == {1}
    assert stats.counters["data_sets_without_template"] == 2
    assert "options_records" not in stats.counters
    assert len(stats.warnings) == 2
    assert all("the template never arrived" in w for w in stats.warnings)


@pytest.mark.parametrize("pad", [6, 4])
def test_v9_options_template_zero_padded(tmp_path: Path, pad: int) -> None:
    # RFC 3954 §6.1: an options template flowset is padded with zeros (to a 4-byte
    # boundary: 6 bytes here make the flowset a multiple of 8; 4 bytes are an exporter
    # padding in whole words); zeros where a template header would start are padding
    opt = struct.pack("!HHH", 400, 4, 4) + tfields([(1, 4), (SAMPLING_INTERVAL, 4)])  # scope
    opts = v9(set_(1, opt + bytes(pad)), set_(400, struct.pack("!II", 0, 64)), count=2)
    data = v9(set_(0, template(256, BASIC)), set_(256, basic("10.0.0.1", "10.0.0.2", 6, 1, 2,
                                                             3, 4)), count=2)  # fmt: skip
    rows, stats = read(tmp_path, opts, data)
    assert stats.warnings == []
    assert [(r["src_ip"], r["sampling"]) for r in rows] == [("10.0.0.1", 64)]


def test_a_template_id_below_256_is_reported(tmp_path: Path) -> None:
    # RFC 7011 §3.4.1 / RFC 3954 §5.2: template ids 0..255 are reserved
    tset = set_(2, struct.pack("!HH", 0, 2) + tfields([(SRC4, 4), (DST4, 4)]))
    rows, stats = read(tmp_path, ipfix(tset))
    assert rows == []
    assert stats.warnings == [f"{tmp_path / 'export.dat'}: byte 16: template id 0 < 256"]


@pytest.mark.parametrize(
    ("version", "body", "problem"),
    [
        (9, struct.pack("!HH", 400, 4), "options template cut short"),  # no option length
        (9, struct.pack("!HHH", 400, 4, 4), "template 400 cut short"),  # no fields
        (10, struct.pack("!HH", 400, 2), "options template cut short"),  # no scope count
        (10, struct.pack("!HHH", 400, 2, 1), "template 400 cut short"),  # no fields
        # an enterprise-specific field whose enterprise number is missing
        (
            10,
            struct.pack("!HHH", 400, 2, 1)
            + tfields([(OBS_DOMAIN_ID, 4)])
            + struct.pack("!HH", 0x8000 | 100, 4),
            "template 400 cut short",
        ),
    ],
)
def test_an_options_template_cut_short(
    tmp_path: Path, version: int, body: bytes, problem: str
) -> None:
    if version == 9:
        rows, stats = read(tmp_path, v9(set_(1, body)))
        at = 20
    else:
        rows, stats = read(tmp_path, ipfix(set_(3, body)))
        at = 16
    assert rows == []
    assert stats.warnings == [f"{tmp_path / 'export.dat'}: byte {at}: {problem}"]


def test_v9_options_template_with_32_kib_of_option_fields(tmp_path: Path) -> None:
    # RFC 3954 §6.1: the option length is an unsigned 16-bit byte count; 8192 fields
    # (32768 bytes: sampling interval and 8191 one-byte paddingOctets) is a valid template
    fields = [(1, 4), (SAMPLING_INTERVAL, 4)] + [(210, 1)] * 8191
    opt = struct.pack("!HHH", 400, 4, 4 * 8192) + tfields(fields)
    orec = struct.pack("!II", 0, 32) + bytes(8191)
    data = v9(set_(0, template(256, BASIC)), set_(256, basic("10.0.0.1", "10.0.0.2", 6, 1, 2,
                                                             3, 4)), count=2)  # fmt: skip
    rows, stats = read(tmp_path, v9(set_(1, opt), count=1), v9(set_(400, orec)), data)
    assert stats.warnings == []
    assert [(r["src_ip"], r["sampling"]) for r in rows] == [("10.0.0.1", 32)]


def test_ipfix_biflow_reverse_elements(tmp_path: Path) -> None:
    # RFC 5103 §6.1: a reverse element is the forward element's id with the enterprise
    # bit set and the reverse PEN 29305
    rev = 29305
    fields = BASIC + [(OCTETS, 8, rev), (PACKETS, 4, rev), (FLAGS, 1), (FLAGS, 1, rev)]
    data = basic("10.0.0.1", "10.0.0.2", 6, 40000, 443, 10, 1500)
    data += struct.pack("!QIBB", 90_000, 70, 0x1B, 0x12)
    rows, stats = read(tmp_path, ipfix(set_(2, template(256, fields)), set_(256, data)))
    assert stats.warnings == []
    cols = ["src_packets", "src_bytes", "dst_packets", "dst_bytes", "tcp_flags_src",
            "tcp_flags_dst"]  # fmt: skip
    assert [tuple(r[c] for c in cols) for r in rows] == [(10, 1500, 70, 90_000, 0x1B, 0x12)]


# --- IPFIX message headers (RFC 7011 §3.1: the length counts the 16-byte header too) ---------
def test_v9_and_ipfix_message_headers_in_a_capture(tmp_path: Path) -> None:
    good = ipfix(set_(2, template(256, BASIC)), set_(256, basic("10.0.0.1", "10.0.0.2", 6,
                                                                 1, 2, 3, 4)))  # fmt: skip
    short_len = bytearray(ipfix())
    short_len[2:4] = struct.pack("!H", 12)  # a length below the header's own 16 bytes
    long_len = bytearray(good)
    long_len[2:4] = struct.pack("!H", len(good) + 40)  # more than the UDP payload holds
    path = tmp_path / "export.pcap"
    path.write_bytes(pcap(
        good,
        ipfix(),  # a message of its header only (16 bytes): valid, no set
        b"\x00\x0a" + bytes(8),  # shorter than the header
        bytes(short_len),
        bytes(long_len),
        v9(count=0),  # a v9 datagram of its 20-byte header only
        b"\x00\x09" + bytes(12),  # shorter than the v9 header
        b"\x00\x0a\x00",  # shorter than any version field and count
    ))  # fmt: skip
    stats = RecordStats()
    rows = [r for t in iter_netflow_tables(path, stats=stats, pair=False) for r in t.to_pylist()]
    assert [r["src_ip"] for r in rows] == ["10.0.0.1"]
    assert stats.counters["datagrams_ipfix"] == 2
    assert stats.counters["datagrams_v9"] == 1
    assert stats.counters["non_netflow_datagrams"] == 5
    assert stats.warnings == []


def test_ipfix_message_cut_at_the_end_of_a_raw_file(tmp_path: Path) -> None:
    tset = set_(2, template(256, BASIC))
    d1 = set_(256, basic("10.0.0.1", "10.0.0.2", 6, 1, 2, 3, 4))
    d2 = set_(256, basic("10.0.0.3", "10.0.0.4", 6, 1, 2, 3, 4))
    msg = ipfix(tset, d1, d2)
    cut = msg[: 16 + len(tset) + len(d1)]  # the file ends after the first data set
    rows, stats = read(tmp_path, cut)
    assert [r["src_ip"] for r in rows] == ["10.0.0.1"]
    assert stats.warnings == [
        f"{tmp_path / 'export.dat'}: byte 0: IPFIX message of {len(msg)} bytes cut at {len(cut)}"
    ]


def test_reserved_and_invalid_set_headers(tmp_path: Path) -> None:
    # RFC 7011 §3.3.2: set ids 4..255 are reserved; a set is at least its 4-byte header
    tset = set_(2, template(256, BASIC))
    d1 = set_(256, basic("10.0.0.1", "10.0.0.2", 6, 1, 2, 3, 4))
    d2 = set_(256, basic("10.0.0.3", "10.0.0.4", 6, 1, 2, 3, 4))
    path = tmp_path / "export.dat"
    rows, stats = read(tmp_path, ipfix(tset, d1, struct.pack("!HH", 4, 4)))
    assert [r["src_ip"] for r in rows] == ["10.0.0.1"]
    at = 16 + len(tset) + len(d1)
    assert stats.warnings == [f"{path}: byte {at}: reserved set id 4 skipped"]
    # a set header announcing 2 bytes: the rest of the message cannot be trusted
    rows, stats = read(tmp_path, ipfix(tset, d1, struct.pack("!HH", 256, 2), d2))
    assert [r["src_ip"] for r in rows] == ["10.0.0.1"]
    assert stats.warnings == [f"{path}: byte {at}: set length 2 invalid (set id 256)"]
    # a set running past the end of its message
    rows, stats = read(tmp_path, ipfix(tset, d1, struct.pack("!HH", 256, 200) + d2[4:]))
    assert [r["src_ip"] for r in rows] == ["10.0.0.1"]
    assert stats.warnings == [f"{path}: byte {at}: set length 200 invalid (set id 256)"]
    assert stats.counters["datagrams_ipfix"] == 1  # a NetFlow datagram, though a bad one
    assert "non_netflow_datagrams" not in stats.counters


def test_zero_padding_after_the_last_v9_flowset(tmp_path: Path) -> None:
    # RFC 3954 §5.3 pads flowsets with zeros; exporters also pad the datagram after the
    # last flowset (in a capture the UDP payload keeps it): not a set, not a problem
    dgram = v9(set_(0, template(256, BASIC)), set_(256, basic("10.0.0.1", "10.0.0.2", 6, 1, 2,
                                                             3, 4)), count=2)  # fmt: skip
    path = tmp_path / "export.pcap"
    path.write_bytes(pcap(dgram + bytes(8)))
    stats = RecordStats()
    rows = [r for t in iter_netflow_tables(path, stats=stats, pair=False) for r in t.to_pylist()]
    assert [r["src_ip"] for r in rows] == ["10.0.0.1"]
    assert stats.warnings == []
    assert stats.counters["datagrams_v9"] == 1
    assert "non_netflow_datagrams" not in stats.counters


@pytest.mark.parametrize("version", [9, 10])
def test_a_template_id_reannounced_as_an_options_template(tmp_path: Path, version: int) -> None:
    # the same id and the same field list, first as a data template, then as an options
    # template (scope: the first field): its records are options (sampling 50), not flows
    fields = [(OBS_DOMAIN_ID if version == 10 else 1, 4), (SAMPLING_INTERVAL, 4), (SRC4, 4),
              (DST4, 4)]  # fmt: skip
    if version == 10:
        enc, tset, oset = ipfix, 2, 3
        ohead = struct.pack("!HHH", 300, len(fields), 1)
    else:
        enc, tset, oset = v9, 0, 1
        ohead = struct.pack("!HHH", 300, 4, 4 * (len(fields) - 1))
    orec = struct.pack("!II", DOMAIN, 50) + ip4("10.7.7.7") + ip4("10.8.8.8")
    rows, stats = read(
        tmp_path,
        enc(set_(tset, template(300, fields))),
        enc(set_(oset, ohead + tfields(fields))),
        enc(set_(300, orec)),
        enc(set_(tset, template(256, BASIC)), set_(256, basic("10.0.0.1", "10.0.0.2", 6, 1, 2,
                                                               3, 4))),
    )  # fmt: skip
    assert stats.warnings == []
    assert [(r["src_ip"], r["sampling"]) for r in rows] == [("10.0.0.1", 50)]


def test_psamp_count_based_sampling(tmp_path: Path) -> None:
    # RFC 7014 §6.5.2.1 / IANA elements 305, 306: systematic count-based sampling selects
    # samplingPacketInterval packets, then skips samplingPacketSpace: 1 in (305 + 306) / 305
    def otpl(tid: int, fields: list[tuple[int, int]]) -> bytes:
        return struct.pack("!HHH", tid, 1 + len(fields), 1) + tfields([(OBS_DOMAIN_ID, 4)] + fields)

    opts = ipfix(
        set_(3, otpl(400, [(SELECTOR_ID, 4), (PKT_INTERVAL, 4), (PKT_SPACE, 4)])
             + otpl(401, [(SELECTOR_ID, 4), (PKT_INTERVAL, 4)])),
        set_(400, struct.pack("!IIII", DOMAIN, 5, 1, 99)),  # 1 of 100
        set_(401, struct.pack("!III", DOMAIN, 6, 1)),  # every packet: no space announced
    )  # fmt: skip
    fields = [(SRC4, 4), (DST4, 4), (PROTO, 1), (SELECTOR_ID, 4)]
    data = b"".join(
        ip4(f"10.0.0.{s}") + ip4("10.0.1.1") + struct.pack("!BI", 17, s) for s in (5, 6)
    )
    rows, stats = read(tmp_path, opts, ipfix(set_(2, template(256, fields)), set_(256, data)))
    assert stats.warnings == []
    assert sorted((r["src_ip"], r["sampling"]) for r in rows) == [("10.0.0.5", 100),
                                                                   ("10.0.0.6", 1)]  # fmt: skip


def test_v9_sampling_per_sampler_id(tmp_path: Path) -> None:
    # RFC 3954 §8: options records announce SAMPLING_INTERVAL (34) per FLOW_SAMPLER_ID (48);
    # a data record names its sampler in element 48
    oset = set_(1, struct.pack("!HHH", 400, 4, 8) + tfields([(1, 4), (SAMPLER_ID, 1),
                                                             (SAMPLING_INTERVAL, 4)]))  # fmt: skip
    orecs = set_(400, struct.pack("!IBI", 0, 1, 10) + struct.pack("!IBI", 0, 2, 20) + bytes(2))
    fields = [(SRC4, 4), (DST4, 4), (PROTO, 1), (SAMPLER_ID, 1)]
    data = b"".join(
        ip4(f"10.0.0.{s}") + ip4("10.0.1.1") + struct.pack("!BB", 17, s) for s in (1, 2)
    )
    rows, stats = read(tmp_path, v9(oset, orecs, count=3),
                       v9(set_(0, template(256, fields)), set_(256, data), count=3))  # fmt: skip
    assert stats.warnings == []
    assert sorted((r["src_ip"], r["sampling"]) for r in rows) == [("10.0.0.1", 10),
                                                                   ("10.0.0.2", 20)]  # fmt: skip


def test_ipfix_sysuptime_times_from_the_announced_system_init_time(tmp_path: Path) -> None:
    # IANA 21/22 (flowEnd/flowStartSysUpTime) count from systemInitTimeMilliseconds (160),
    # here announced in an options record of the observation domain
    init_ms = 1_789_990_000_000  # 2026-09-21, 10,000 s before the export
    otpl = struct.pack("!HHH", 400, 2, 1) + tfields([(OBS_DOMAIN_ID, 4), (SYSTEM_INIT_MS, 8)])
    opts = ipfix(set_(3, otpl), set_(400, struct.pack("!IQ", DOMAIN, init_ms)))
    fields = [(SRC4, 4), (DST4, 4), (PROTO, 1), (22, 4), (21, 4)]
    data = ip4("10.0.0.1") + ip4("10.0.0.2") + struct.pack("!BII", 17, 5_000_000, 5_001_500)
    rows, stats = read(tmp_path, opts, ipfix(set_(2, template(256, fields)), set_(256, data)))
    assert stats.warnings == []
    us = [round(rows[0][k].timestamp() * 1_000_000) for k in ("first_seen", "last_seen")]
    assert us == [(init_ms + 5_000_000) * 1000, (init_ms + 5_001_500) * 1000]


def test_a_fixed_field_cut_after_a_variable_length_one(tmp_path: Path) -> None:
    fields = [(SRC4, 4), (INTERFACE_NAME, VARLEN), (DST4, 4), (PROTO, 1), (OCTETS, 4)]
    recs = [ip4(f"10.0.0.{i}") + varlen(b"eth1") + ip4("10.9.9.9") + struct.pack("!BI", 17, i)
            for i in (1, 2, 3)]  # fmt: skip
    data = recs[0] + recs[1] + recs[2][:-2]  # the last counter cut in half
    tset = set_(2, template(256, fields))
    rows, stats = read(tmp_path, ipfix(tset, set_(256, data)))
    assert [(r["src_ip"], r["src_bytes"]) for r in rows] == [("10.0.0.1", 1), ("10.0.0.2", 2)]
    assert stats.warnings == [
        f"{tmp_path / 'export.dat'}: byte {16 + len(tset)}: template 256: variable-length "
        "record cut short"
    ]
