"""Export datagrams out of pcap / pcapng captures (``records/netflow/pcap.py``): edge cases
the mutation run (tests/MUTATION.md) found untested.

Frames, records and blocks are encoded here with ``struct`` from the published layouts:
IPv4 (RFC 791: IHL, flags and fragment offset), IPv6 and its extension headers (RFC 8200
§4: hop-by-hop, routing, destination options in units of 8 octets beyond the first 8;
fragment header 44), UDP (RFC 768: the length covers the 8-byte header), libpcap's file
and record headers (either byte order, µs or ns magic; the FCS bits above the link type;
records longer than max(snaplen, 262144) are corrupt) and pcapng (draft-ietf-opsawg-pcapng:
section header with byte-order magic, interface description, enhanced, simple and the
obsolete packet block with a 16-bit interface id). The expected values are the payloads,
addresses and offsets put there, never the reader's own output.
"""

from __future__ import annotations

import gzip
import ipaddress
import struct
import tracemalloc
from pathlib import Path

import pytest
from test_netflow_edges import EXPORT_SECS, v5

from flowaudit.errors import CaptureError
from flowaudit.records.common import RecordStats
from flowaudit.records.netflow.pcap import iter_udp_payloads, udp_datagram
from flowaudit.records.netflow.reader import iter_netflow_tables

SRC4, DST4 = "192.0.2.17", "198.51.100.2"
SRC6, DST6 = "2001:db8::17", "2001:db8:ffff::2"
ETH, RAW, NULL, SLL, SLL2 = 1, 101, 0, 113, 276


def udp(payload: bytes, length: int | None = None) -> bytes:
    n = 8 + len(payload) if length is None else length
    return struct.pack("!HHHH", 40000, 2055, n, 0) + payload


def ipv4(
    body: bytes, proto: int = 17, frag: int = 0, options: bytes = b"", src: str = SRC4
) -> bytes:
    ihl = 5 + len(options) // 4
    total = min(ihl * 4 + len(body), 0xFFFF)  # the 262144-octet frame below: not read
    head = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 0x1234, frag, 64,
                       proto, 0, ipaddress.IPv4Address(src).packed,
                       ipaddress.IPv4Address(DST4).packed)  # fmt: skip
    return head + options + body


def ipv6(body: bytes, nh: int = 17, src: str = SRC6) -> bytes:
    return (
        struct.pack("!IHBB", 6 << 28, len(body), nh, 64)
        + ipaddress.IPv6Address(src).packed
        + ipaddress.IPv6Address(DST6).packed
        + body
    )


def ext6(nh: int, units: int = 0) -> bytes:
    """An IPv6 extension header of (units + 1) * 8 octets (next header, length, data)."""
    return bytes([nh, units]) + bytes(6 + 8 * units)


def eth(ip: bytes, ethertype: int = 0x0800) -> bytes:
    return b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + struct.pack("!H", ethertype) + ip


def eth6(ip: bytes) -> bytes:
    return eth(ip, 0x86DD)


# --- one frame ---------------------------------------------------------------------------
def test_udp_payload_of_each_link_type_and_ip_version() -> None:
    pay = v5(1)
    cases = [
        (ETH, eth(ipv4(udp(pay)))),
        (ETH, b"\x02" * 12 + b"\x81\x00\x00\x70" + b"\x08\x00" + ipv4(udp(pay))),  # VLAN 112
        (RAW, ipv4(udp(pay))),
        (SLL, bytes(14) + b"\x08\x00" + ipv4(udp(pay))),
        (SLL2, b"\x08\x00" + bytes(18) + ipv4(udp(pay))),
    ]
    for link, frame in cases:
        counts: dict[str, int] = {}
        assert udp_datagram(link, frame, counts) == (SRC4, pay), link
        assert counts == {}
    counts = {}
    assert udp_datagram(ETH, eth6(ipv6(udp(pay))), counts) == (SRC6, pay)
    assert udp_datagram(RAW, ipv6(udp(pay)), counts) == (SRC6, pay)
    assert counts == {}


def test_ipv4_header_options_come_before_the_udp_header() -> None:
    # IHL 7: 8 octets of options (NOP NOP ... EOL) between the address and the UDP header
    pay = b"\x00\x0a" + bytes(30)
    frame = eth(ipv4(udp(pay), options=b"\x01" * 7 + b"\x00"))
    counts: dict[str, int] = {}
    assert udp_datagram(ETH, frame, counts) == (SRC4, pay)
    assert counts == {}


@pytest.mark.parametrize(
    ("frag", "fragment"),
    [
        (0x4000, False),  # don't fragment: a whole datagram
        (0x2000, True),  # more fragments, offset 0: the first fragment
        (0x0001, True),  # offset 8 octets: the last fragment
        (0x1FFF, True),  # the largest offset
        (0x8000, False),  # the reserved flag bit alone
    ],
)
def test_ipv4_fragments_are_counted_and_skipped(frag: int, fragment: bool) -> None:
    for link, frame in ((ETH, eth(ipv4(udp(b"\x00\x09abcd"), frag=frag))),
                        (RAW, ipv4(udp(b"\x00\x09abcd"), frag=frag))):  # fmt: skip
        counts: dict[str, int] = {}
        got = udp_datagram(link, frame, counts)
        if fragment:
            assert got is None and counts == {"fragmented_datagrams": 1}
        else:
            assert got == (SRC4, b"\x00\x09abcd") and counts == {}


def test_ipv6_extension_headers_are_skipped_to_udp() -> None:
    pay = b"\x00\x0a" + bytes(14)
    chains = [
        ext6(17),  # hop-by-hop, 8 octets
        ext6(43, 1) + ext6(60, 2) + ext6(17, 0),  # hop-by-hop 16, routing 24, dest. options 8
    ]
    for first, chain in zip((0, 0), chains, strict=True):
        counts: dict[str, int] = {}
        assert udp_datagram(ETH, eth6(ipv6(chain + udp(pay), nh=first)), counts) == (SRC6, pay)
        assert counts == {}
    # a routing header first, then destination options
    counts = {}
    frame = eth6(ipv6(ext6(60, 0) + ext6(17, 3) + udp(pay), nh=43))
    assert udp_datagram(ETH, frame, counts) == (SRC6, pay)


@pytest.mark.parametrize(
    ("frame", "counter"),
    [
        (
            eth6(ipv6(ext6(44) + struct.pack("!BBHI", 17, 0, 1, 7) + udp(b"x"), nh=0)),
            "fragmented_datagrams",
        ),
        (eth6(ipv6(struct.pack("!BBHI", 17, 0, 1, 7) + udp(b"x"), nh=44)), "fragmented_datagrams"),
        (eth6(ipv6(bytes(8), nh=58)), "non_udp_packets"),  # ICMPv6
        (eth6(ipv6(ext6(6) + bytes(20), nh=0)), "non_udp_packets"),  # TCP after hop-by-hop
        (eth6(ipv6(bytes(7), nh=0)), "non_udp_packets"),  # an extension header cut short
        (eth6(ipv6(b"")[:39]), "truncated_frames"),  # 39 of the 40 header octets
        (eth6(ipv6(bytes(7))), "truncated_frames"),  # 7 of the 8 UDP header octets
        (eth6(ipv6(ext6(44), nh=0)), "fragmented_datagrams"),  # the last header: fragment
        (eth6(ipv6(b"", nh=58)), "non_udp_packets"),  # the 40-octet header alone
        (eth6(ipv6(b""))[:34], "truncated_frames"),  # 20 of the 40 header octets
        (eth(ipv4(bytes(20), proto=6)), "non_udp_packets"),
        (eth(ipv4(b"", proto=6)), "non_udp_packets"),  # the 20-octet header alone
        (eth(ipv4(udp(b"")))[:26], "truncated_frames"),  # 12 of the 20 header octets
        (eth(ipv4(udp(b""))[:19]), "truncated_frames"),  # 19 of the 20 header octets
        (eth(ipv4(udp(b""))[:27]), "truncated_frames"),  # 7 of the 8 UDP header octets
        (eth(ipv4(udp(b"abcd", length=13))), "truncated_frames"),  # UDP length past the frame
        (eth(b"\0" * 28, ethertype=0x0806), "non_ip_frames"),  # ARP
        (struct.pack("<I", 7) + ipv4(udp(b"")), "non_ip_frames"),  # NULL, family 7
    ],
)
def test_frames_that_hold_no_datagram_are_counted(frame: bytes, counter: str) -> None:
    counts: dict[str, int] = {}
    link = NULL if frame.startswith(b"\x07\0\0\0") else ETH
    assert udp_datagram(link, frame, counts) is None
    assert counts == {counter: 1}
    assert udp_datagram(link, frame, counts) is None
    assert counts == {counter: 2}


def test_the_udp_length_bounds_the_payload() -> None:
    counts: dict[str, int] = {}
    # Ethernet pads short frames to 60 octets: the UDP length says where the payload ends
    padded = eth(ipv4(udp(b"\x00\x0aab"))) + bytes(18)
    assert udp_datagram(ETH, padded, counts) == (SRC4, b"\x00\x0aab")
    # the UDP length exactly the frame; an empty payload (length 8)
    assert udp_datagram(ETH, eth(ipv4(udp(b"abcd", length=12))), counts) == (SRC4, b"abcd")
    assert udp_datagram(ETH, eth(ipv4(udp(b"abcd", length=8))), counts) == (SRC4, b"")
    # a UDP length below its own 8 octets (0 for IPv6 jumbograms, RFC 2675): to the frame end
    for n in (0, 7):
        assert udp_datagram(ETH, eth(ipv4(udp(b"abcd", length=n))), counts) == (SRC4, b"abcd")
    assert counts == {}


def test_exporter_address_texts_are_remembered_up_to_4096() -> None:
    names: dict[bytes, str] = {}
    counts: dict[str, int] = {}
    for i in range(3):
        src = f"10.0.{i}.1"
        got = udp_datagram(ETH, eth(ipv4(udp(b"ab"), src=src)), counts, names)
        assert got == (src, b"ab")
    assert names == {ipaddress.IPv4Address(f"10.0.{i}.1").packed: f"10.0.{i}.1" for i in range(3)}
    # a full memo gets no new address, and a remembered one is not formatted again
    full = {i.to_bytes(4, "big"): str(ipaddress.IPv4Address(i)) for i in range(4095)}
    full[ipaddress.IPv4Address(SRC4).packed] = "remembered"
    assert udp_datagram(ETH, eth(ipv4(udp(b"ab"))), counts, full) == ("remembered", b"ab")
    assert udp_datagram(ETH, eth(ipv4(udp(b"ab"), src="10.9.9.9")), counts, full) == (
        "10.9.9.9",
        b"ab",
    )
    assert len(full) == 4096 and ipaddress.IPv4Address("10.9.9.9").packed not in full
    # 4095 remembered: the 4096th is kept
    del full[ipaddress.IPv4Address(SRC4).packed]
    udp_datagram(ETH, eth(ipv4(udp(b"ab"), src="10.9.9.9")), counts, full)
    assert full[ipaddress.IPv4Address("10.9.9.9").packed] == "10.9.9.9"
    assert counts == {}


# --- libpcap files -----------------------------------------------------------------------
def pcap_file(frames: list[bytes], *, big: bool = False, ns: bool = False, link: int = ETH,
              snaplen: int = 65535) -> tuple[bytes, list[int]]:  # fmt: skip
    """A libpcap file of the frames and the file offset of each record."""
    e = ">" if big else "<"
    magic = 0xA1B23C4D if ns else 0xA1B2C3D4
    out = struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, link)
    offsets = []
    for i, fr in enumerate(frames):
        offsets.append(len(out))
        out += struct.pack(e + "IIII", EXPORT_SECS + i, 500, len(fr), len(fr)) + fr
    return out, offsets


def payloads(path: Path) -> tuple[list[tuple[str, bytes, int]], dict[str, int]]:
    counts: dict[str, int] = {}
    return list(iter_udp_payloads(path, counts)), counts


@pytest.mark.parametrize(
    ("big", "ns"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_pcap_of_either_byte_order_and_resolution(tmp_path: Path, big: bool, ns: bool) -> None:
    pays = [v5(1), v5(2, first=4), b"\x00\x0a" + bytes(20)]
    frames = [eth(ipv4(udp(pays[0]))), eth6(ipv6(udp(pays[1]))), eth(b"\0" * 28, 0x0806),
              eth(ipv4(udp(pays[2])))]  # fmt: skip
    data, offs = pcap_file(frames, big=big, ns=ns)
    path = tmp_path / "x.pcap"
    path.write_bytes(data)
    got, counts = payloads(path)
    assert got == [(SRC4, pays[0], offs[0]), (SRC6, pays[1], offs[1]), (SRC4, pays[2], offs[3])]
    assert counts == {"non_ip_frames": 1}


def test_pcap_link_type_with_fcs_bits_and_gzip(tmp_path: Path) -> None:
    # the upper 4 bits of the link-type field say "FCS present" (pcap spec, LinkType field)
    data, offs = pcap_file([ipv4(udp(b"\x00\x05abc"))], link=0x1000_0000 | RAW)
    path = tmp_path / "x.pcap.gz"
    path.write_bytes(gzip.compress(data))
    assert payloads(path) == ([(SRC4, b"\x00\x05abc", 24)], {})


def test_pcap_records_across_read_chunks(tmp_path: Path) -> None:
    # 1.2 MiB of records: they straddle the 1 MiB reads; each keeps its payload and offset
    pays = [i.to_bytes(2, "big") + bytes([i % 251]) * (900 + i % 7) for i in range(1400)]
    data, offs = pcap_file([eth(ipv4(udp(p))) for p in pays])
    assert len(data) > 1_200_000
    path = tmp_path / "x.pcap"
    path.write_bytes(data)
    got, counts = payloads(path)
    assert got == [(SRC4, p, o) for p, o in zip(pays, offs, strict=True)]
    assert counts == {}


def test_pcap_record_lengths_up_to_the_libpcap_limit(tmp_path: Path) -> None:
    # libpcap: a record of up to max(snaplen, 262144) octets is valid, one more is corrupt
    big = eth(ipv4(udp(b"\x00\x0a" + bytes(262144 - 44), length=0)))  # to the frame end
    assert len(big) == 262144
    for snaplen in (1500, 262144):
        data, offs = pcap_file([eth(ipv4(udp(b"ab"))), big, eth(ipv4(udp(b"cd")))],
                               snaplen=snaplen)  # fmt: skip
        path = tmp_path / "x.pcap"
        path.write_bytes(data)
        got, counts = payloads(path)
        assert [(g[0], len(g[1]), g[2]) for g in got] == [
            (SRC4, 2, offs[0]), (SRC4, 262144 - 42, offs[1]), (SRC4, 2, offs[2])
        ]  # fmt: skip
        assert counts == {}
    over = big + b"\0"
    data, offs = pcap_file([eth(ipv4(udp(b"ab"))), over, eth(ipv4(udp(b"cd")))])
    path.write_bytes(data)
    assert payloads(path) == ([(SRC4, b"ab", 24)], {"corrupt_at": offs[1]})
    # a snap length above the limit raises it
    data, offs = pcap_file([over, eth(ipv4(udp(b"cd")))], snaplen=262145)
    path.write_bytes(data)
    got, counts = payloads(path)
    assert [g[2] for g in got] == offs and counts == {}


@pytest.mark.parametrize("cut", [1, 15, 16, 17, 40])
def test_pcap_cut_inside_a_record(tmp_path: Path, cut: int) -> None:
    data, offs = pcap_file([eth(ipv4(udp(b"ab"))), eth(ipv4(udp(b"cd")))])
    path = tmp_path / "x.pcap"
    path.write_bytes(data[: offs[1] + cut])
    assert payloads(path) == ([(SRC4, b"ab", 24)], {"cut_short_at": offs[1]})


def test_pcap_header_only_and_header_cut_short(tmp_path: Path) -> None:
    data, _ = pcap_file([])
    path = tmp_path / "x.pcap"
    path.write_bytes(data)
    assert payloads(path) == ([], {})
    path.write_bytes(data[:23])
    with pytest.raises(CaptureError) as e:
        payloads(path)
    assert str(e.value) == f"{path}: pcap header cut short at byte 23"


def test_a_gzip_file_that_does_not_decompress(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + bytes(6) + b"\xff" * 40)  # a header, then no deflate
    with pytest.raises(CaptureError) as e:
        payloads(path)
    assert str(e.value).startswith(f"{path}: unreadable at byte 0: ")


def test_not_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"\x00\x05\x00\x01" + bytes(40))
    with pytest.raises(CaptureError) as e:
        payloads(path)
    assert str(e.value) == f"{path}: not a pcap or pcapng file at byte 0"


@pytest.mark.parametrize(("frames", "cut", "offset"), [(3, None, 24), (0, 10, 4)])
def test_an_unreadable_gzip_names_the_offset(
    tmp_path: Path, frames: int, cut: int | None, offset: int
) -> None:
    # the gzip trailer's CRC does not match: the read that reaches the end fails, and the
    # error names the offset that read started at (the records, or the file header's rest)
    data, offs = pcap_file([eth(ipv4(udp(bytes(range(256)) * 4))) for _ in range(frames)])
    z = bytearray(gzip.compress(data[:cut], compresslevel=0))
    z[-8:] = bytes(8)  # the CRC and length trailer no longer match: zlib/gzip refuse at EOF
    path = tmp_path / "x.pcap.gz"
    path.write_bytes(bytes(z))
    with pytest.raises(CaptureError) as e:
        payloads(path)
    assert str(e.value).startswith(f"{path}: unreadable at byte {offset}: ")
    assert "CRC" in str(e.value)


# --- pcapng --------------------------------------------------------------------------------
def blk(e: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def shb(e: str) -> bytes:
    return blk(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(e: str, link: int) -> bytes:
    return blk(e, 1, struct.pack(e + "HHI", link, 0, 0))


def epb(e: str, iface: int, frame: bytes, caplen: int | None = None) -> bytes:
    n = len(frame) if caplen is None else caplen
    return blk(e, 6, struct.pack(e + "IIIII", iface, 0, 0, n, len(frame)) + frame)


def spb(e: str, frame: bytes, orig: int | None = None) -> bytes:
    return blk(e, 3, struct.pack(e + "I", len(frame) if orig is None else orig) + frame)


def opb(e: str, iface: int, frame: bytes, drops: int = 5) -> bytes:
    # the obsolete packet block: 16-bit interface id, 16-bit drops count
    return blk(e, 2, struct.pack(e + "HHIIII", iface, drops, 0, 0, len(frame), len(frame)) + frame)


def offsets_of(blocks: list[bytes]) -> list[int]:
    out, off = [], 0
    for b in blocks:
        out.append(off)
        off += len(b)
    return out


def test_pcapng_blocks_sections_and_interfaces(tmp_path: Path) -> None:
    p = [bytes([0, 10, i]) + bytes(13) for i in range(8)]
    blocks = [
        shb("<"),
        idb("<", ETH),
        idb("<", RAW),
        epb("<", 0, eth(ipv4(udp(p[0])))),  # 0
        blk("<", 4, bytes(4)),  # a name resolution block: skipped
        epb("<", 1, ipv4(udp(p[1]))),  # 1: raw IP on the second interface
        spb("<", eth(ipv4(udp(p[2])))),  # 2: the simple packet block is on interface 0
        opb("<", 1, ipv4(udp(p[3]))),  # 3: 16-bit interface id 1 (drops count 5 beside it)
        epb("<", 2, ipv4(udp(p[4]))),  # no interface 2: not IP
        blk("<", 0xBAD, b"unknown"),  # an unknown block: skipped by its length
        shb(">"),  # a big-endian section: its interfaces start again
        idb(">", RAW),
        epb(">", 0, ipv4(udp(p[5]))),  # 5
        opb(">", 0, eth6(ipv6(udp(p[6])))),  # interface 0 is raw IP now: not IPv4/6 Ethernet
        spb(">", ipv6(udp(p[7]))),  # 7
    ]
    offs = offsets_of(blocks)
    path = tmp_path / "x.pcapng"
    path.write_bytes(b"".join(blocks))
    got, counts = payloads(path)
    want = [(SRC4, 0, 3), (SRC4, 1, 5), (SRC4, 2, 6), (SRC4, 3, 7), (SRC4, 5, 12), (SRC6, 7, 14)]
    assert got == [(a, p[i], offs[b]) for a, i, b in want]
    assert counts == {"non_ip_frames": 2}


def test_pcapng_packet_lengths(tmp_path: Path) -> None:
    frame = eth(ipv4(udp(b"\x00\x0a" + bytes(21))))  # 65 octets: the block pads to 68
    blocks = [
        shb("<"),
        idb("<", ETH),
        epb("<", 0, frame),
        epb("<", 0, frame + b"junk", caplen=len(frame)),  # captured length below the data
        spb("<", frame),  # original length = the frame; the padding is not a part of it
        spb("<", frame, orig=len(frame) + 1000),  # snapped: the block holds less than orig
        spb("<", frame[:-3], orig=len(frame)),  # snapped inside the UDP payload
    ]
    offs = offsets_of(blocks)
    path = tmp_path / "x.pcapng"
    path.write_bytes(b"".join(blocks))
    got, counts = payloads(path)
    pay = b"\x00\x0a" + bytes(21)
    assert got == [(SRC4, pay, o) for o in offs[2:6]]
    assert counts == {"truncated_frames": 1}


@pytest.mark.parametrize("e", ["<", ">"])
def test_pcapng_cut_short_and_corrupt_blocks(tmp_path: Path, e: str) -> None:
    good = [shb(e), idb(e, ETH), epb(e, 0, eth(ipv4(udp(b"ab"))))]
    head = b"".join(good)
    nxt = epb(e, 0, eth(ipv4(udp(b"cd"))))
    path = tmp_path / "x.pcapng"
    want = [(SRC4, b"ab", len(head) - len(good[2]))]
    for cut in (1, 7, 8, 11, len(nxt) - 1):  # in the block header, in the body
        path.write_bytes(head + nxt[:cut])
        assert payloads(path) == (want, {"cut_short_at": len(head)}), cut
    path.write_bytes(head)
    assert payloads(path) == (want, {})
    for blen in (8, 14, (16 << 20) + 4):  # below 12, not a multiple of 4, above 16 MiB
        bad = struct.pack(e + "II", 6, blen) + nxt[8:]
        path.write_bytes(head + bad + nxt)
        assert payloads(path) == (want, {"corrupt_at": len(head)}), blen
    # the largest valid lengths: 12 (an empty block) and 16 MiB
    path.write_bytes(head + blk(e, 0xBAD, b"") + nxt)
    assert payloads(path)[0] == [*want, (SRC4, b"cd", len(head) + 12)]
    huge = blk(e, 0xBAD, bytes((16 << 20) - 12))
    path.write_bytes(head + huge + nxt)
    assert payloads(path)[0] == [*want, (SRC4, b"cd", len(head) + (16 << 20))]


@pytest.mark.parametrize("blen", [24, 30, (16 << 20) + 4])
def test_pcapng_section_header_of_a_bad_length(tmp_path: Path, blen: int) -> None:
    good = b"".join([shb("<"), idb("<", ETH), epb("<", 0, eth(ipv4(udp(b"ab"))))])
    bad = bytearray(shb("<"))
    bad[4:8] = struct.pack("<I", blen)
    path = tmp_path / "x.pcapng"
    path.write_bytes(good + bytes(bad))
    counts: dict[str, int] = {}
    it = iter_udp_payloads(path, counts)
    assert next(it) == (SRC4, b"ab", 28 + 20)
    with pytest.raises(CaptureError) as e:
        next(it)
    assert (
        str(e.value) == f"{path}: pcapng section header length {blen} invalid at byte {len(good)}"
    )
    path.write_bytes(bytes(bad))
    with pytest.raises(CaptureError, match=f"length {blen} invalid at byte 0$"):
        payloads(path)
    # 28 octets, the smallest section header, is valid; so is one of 16 MiB (a long option)
    path.write_bytes(shb("<") + idb("<", ETH) + epb("<", 0, eth(ipv4(udp(b"ab")))))
    assert len(shb("<")) == 28 and payloads(path) == ([(SRC4, b"ab", 48)], {})
    comment = struct.pack("<HH", 1, 0xFFF0) + bytes(0xFFF0)  # then end-of-options, zeros
    fixed = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
    big = blk("<", 0x0A0D0D0A, fixed + comment + bytes((16 << 20) - 28 - len(comment)))
    assert len(big) == 16 << 20
    path.write_bytes(big + idb("<", ETH) + epb("<", 0, eth(ipv4(udp(b"ab")))))
    assert payloads(path) == ([(SRC4, b"ab", (16 << 20) + 20)], {})
    # a length above 2^31 is named as the unsigned number it is
    bad[4:8] = struct.pack("<I", 0xFFFFFFFC)
    path.write_bytes(bytes(bad))
    with pytest.raises(CaptureError, match="length 4294967292 invalid at byte 0$"):
        payloads(path)


# --- through the reader: the counters and the warnings --------------------------------------
def test_reader_reports_capture_problems_with_their_offsets(tmp_path: Path) -> None:
    frames = [eth(ipv4(udp(v5(1)))), eth(b"\0" * 28, 0x0806), eth(ipv4(udp(v5(1)), frag=0x2000))]
    data, offs = pcap_file(frames)
    path = tmp_path / "x.pcap"
    for tail, warning in (
        (b"", None),
        (bytes(10), f"{path}: byte {len(data)}: capture cut short; the rest is missing"),
        (struct.pack("<IIII", 0, 0, 1 << 20, 1 << 20),
         f"{path}: byte {len(data)}: corrupt record length; the rest of the capture is skipped"),
    ):  # fmt: skip
        path.write_bytes(data + tail)
        stats = RecordStats()
        rows = [
            r for t in iter_netflow_tables(path, stats=stats, pair=False) for r in t.to_pylist()
        ]
        assert [(r["src_ip"], r["exporter"]) for r in rows] == [("10.5.0.1", SRC4)]
        assert stats.warnings == ([warning] if warning else [])
        assert stats.counters["non_ip_frames"] == 1
        assert stats.counters["fragmented_datagrams"] == 1
        assert "cut_short_at" not in stats.counters and "corrupt_at" not in stats.counters


def test_pcapng_interface_ids_out_of_range(tmp_path: Path) -> None:
    # interface ids are unsigned (32 bits in the enhanced block, 16 in the obsolete one); an
    # id past the section's interfaces, or a simple packet block before any interface
    # description, has no link type: not IP
    frame = eth(ipv4(udp(b"\x00\x0aab")))
    for blocks in (
        [shb("<"), idb("<", ETH), epb("<", 0xFFFFFFFF, frame)],
        [shb("<"), idb("<", ETH), opb("<", 0xFFFF, frame, drops=0)],
        [shb("<"), epb("<", 0, frame)],
        [shb("<"), spb("<", frame)],
    ):
        path = tmp_path / "x.pcapng"
        path.write_bytes(b"".join(blocks))
        assert payloads(path) == ([], {"non_ip_frames": 1})


def test_pcapng_lengths_past_the_block(tmp_path: Path) -> None:
    # a captured length (enhanced block) or original length (simple block) beyond what the
    # block holds: the frame is the block's packet data. A UDP length of 0 says the payload
    # runs to the frame end, so the block's padding octets after the frame are not a part
    pay = b"\x00\x0a" + bytes(19)
    frame = eth(ipv4(udp(pay, length=0)))  # 63 octets: one octet of padding in the block
    blocks = [
        shb("<"),
        idb("<", ETH),
        epb("<", 0, frame),
        spb("<", frame),
        epb("<", 0, eth(ipv4(udp(pay))), caplen=0xFFFFFFFF),
        spb("<", eth(ipv4(udp(pay))), orig=0xFFFFFFFF),
    ]
    offs = offsets_of(blocks)
    path = tmp_path / "x.pcapng"
    path.write_bytes(b"".join(blocks))
    assert payloads(path) == ([(SRC4, pay, o) for o in offs[2:]], {})


@pytest.mark.parametrize("where", ["end", "header", "byte-order", "section", "block"])
def test_an_unreadable_gzip_pcapng_names_the_offset(tmp_path: Path, where: str) -> None:
    # the gzip trailer's CRC does not match: the read that needs data past the end fails,
    # and the error names the file offset that read started at
    blocks = [shb("<"), idb("<", ETH), epb("<", 0, eth(ipv4(udp(b"\x00\x0aab"))))]
    data = b"".join(blocks)
    n = len(data)
    cut = {
        "end": (data, n),  # the next block header: at the end of the data
        "header": (data + shb("<")[:5], n),  # a block header cut short
        "byte-order": (data + shb("<")[:8], n + 8),  # a section header without its magic
        "section": (data + shb("<")[:20], n + 12),  # a section header's body cut short
        "block": (data + epb("<", 0, b"x" * 40)[:30], n + 8),  # a packet block's body
    }[where]
    z = bytearray(gzip.compress(cut[0]))
    z[-8:-4] = bytes(4) if z[-8:-4] != bytes(4) else b"\x01\0\0\0"
    path = tmp_path / "x.pcapng.gz"
    path.write_bytes(bytes(z))
    counts: dict[str, int] = {}
    it = iter_udp_payloads(path, counts)
    with pytest.raises(CaptureError) as e:
        list(it)
    assert str(e.value).startswith(f"{path}: unreadable at byte {cut[1]}: ")


def test_pcap_with_a_snap_length_of_4_gib(tmp_path: Path) -> None:
    # a snap length of 2^32 - 1 (some writers' "unlimited"): a record of 300,000 octets is
    # valid (above libpcap's 262144), so is one of 1.5 MiB (here not IP); the file is still
    # read a record at a time, not into memory whole
    small = [eth(ipv4(udp(i.to_bytes(2, "big") + bytes(8000)))) for i in range(500)]
    frames = [eth(ipv4(udp(b"ab"))), b"\x00" * 300_000, bytes(3 << 19), *small]
    data, offs = pcap_file(frames, snaplen=0xFFFFFFFF)
    path = tmp_path / "x.pcap"
    path.write_bytes(data)  # 5.8 MB
    counts: dict[str, int] = {}
    tracemalloc.start()
    try:
        got = [(g[1][:2], g[2]) for g in iter_udp_payloads(path, counts)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == [(b"ab", offs[0])] + [(i.to_bytes(2, "big"), offs[3 + i]) for i in range(500)]
    assert counts == {"non_ip_frames": 2}
    assert peak < 7 << 20, peak  # the 1.5 MiB record read, joined and sliced


def test_pcap_record_claiming_4_gib_costs_what_the_file_holds(tmp_path: Path) -> None:
    # under a 2^32 - 1 snap length a record header claiming ~4 GiB is within the snap
    # length; the file holds 3 MiB of it: read in growing pieces, reported cut short
    good = eth(ipv4(udp(b"ab")))
    data, offs = pcap_file([good], snaplen=0xFFFFFFFF)
    bad = struct.pack("<IIII", 0, 0, 0xFFFFFFF0, 0xFFFFFFF0) + bytes(3 << 20)
    path = tmp_path / "x.pcap"
    path.write_bytes(data + bad)
    counts: dict[str, int] = {}
    tracemalloc.start()
    try:
        got = [(g[1], g[2]) for g in iter_udp_payloads(path, counts)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == [(b"ab", offs[0])]
    assert counts == {"cut_short_at": len(data)}
    assert peak < 16 << 20, peak  # the 3 MiB held, doubled while read: not 4 GiB


def test_pcap_first_record_larger_than_one_read(tmp_path: Path) -> None:
    # a 1.5 MiB first record under a 4 MiB snap length is whole, not cut short
    data, offs = pcap_file([bytes(3 << 19), eth(ipv4(udp(b"ab")))], snaplen=4 << 20)
    path = tmp_path / "x.pcap"
    path.write_bytes(data)
    assert payloads(path) == ([(SRC4, b"ab", offs[1])], {"non_ip_frames": 1})


@pytest.mark.parametrize(("x", "incl"), [(0, 100), (5, 20), (5, 1 << 20)])
def test_pcap_record_straddling_the_first_read(tmp_path: Path, x: int, incl: int) -> None:
    # the first 1 MiB read ends x octets into the second record's data (x = 0: right after
    # its 16-octet header); the record, up to max(snaplen, 262144) = 1 MiB long, is whole
    first = (1 << 20) - 32 - x  # 24 + 16 + first + 16 + x = 24 + 1 MiB
    frames = [bytes(first), bytes(incl), eth(ipv4(udp(b"\x00\x0aend")))]
    data, offs = pcap_file(frames, snaplen=1 << 20)
    assert offs[1] + 16 + x == 24 + (1 << 20)
    path = tmp_path / "x.pcap"
    path.write_bytes(data)
    assert payloads(path) == ([(SRC4, b"\x00\x0aend", offs[2])], {"non_ip_frames": 2})


def test_a_corrupt_record_length_allocates_nothing(tmp_path: Path) -> None:
    # a record length of almost 4 GiB is refused from its header: nothing is read for it
    data, offs = pcap_file([eth(ipv4(udp(b"ab")))])
    path = tmp_path / "x.pcap"
    path.write_bytes(data + struct.pack("<IIII", 0, 0, 0xFFFFFFF0, 0xFFFFFFF0) + bytes(64))
    tracemalloc.start()
    try:
        got = payloads(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == ([(SRC4, b"ab", 24)], {"corrupt_at": len(data)})
    assert peak < 4 << 20, peak
