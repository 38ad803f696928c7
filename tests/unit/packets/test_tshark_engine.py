"""The tshark engine (flowaudit.packets.tshark) on real captures.

Expected values were read off ``tshark -T fields`` by hand (and, for NFLOG, IPNET and
PKTAP, from the raw bytes of the first record); see tests/data/tshark/SOURCES.md. The
cross-check compares the engine with the fast reader (flowaudit.packets.pcap) array by
array on every capture both decode.
"""

from __future__ import annotations

import functools
import ipaddress
import shutil
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
from testpaths import DATA as TEST_DATA

from flowaudit.errors import CaptureError
from flowaudit.kernels.layout import (
    KIND_IP,
    KIND_MALFORMED,
    KIND_NON_IP,
    KIND_TRUNCATED,
    KIND_UNSUPPORTED,
)
from flowaudit.packets.batch import (
    PACKET_FIELDS,
    PacketBatch,
    ReadStats,
)
from flowaudit.packets.tshark import (
    INSTALL_HINT,
    iter_packets_tshark,
    tshark_available,
    tshark_command,
)

DATA = TEST_DATA / "tshark"
Arrays = dict[str, npt.NDArray[np.generic]]

IP, NON_IP, TRUNC, UNSUP = KIND_IP, KIND_NON_IP, KIND_TRUNCATED, KIND_UNSUPPORTED
L4, FRAG, FIRST = 4, 1, 2  # FRAG_HAS_L4, FRAG_IS_FRAGMENT, FRAG_FIRST


def read(path: Path, batch_size: int = 50_000) -> tuple[Arrays, ReadStats, list[int]]:
    stats = ReadStats()
    batches = list(iter_packets_tshark(path, stats=stats, batch_size=batch_size))
    for b in batches:
        b.check()
    return concat(batches), stats, [len(b) for b in batches]


@functools.cache
def read_once(name: str) -> tuple[Arrays, ReadStats]:
    """The default read of a test capture (shared by the tests: tshark runs once)."""
    a, stats, _ = read(DATA / name)
    return a, stats


def concat(batches: list[PacketBatch]) -> Arrays:
    if not batches:
        return PacketBatch.empty().arrays
    return {k: np.concatenate([b[k] for b in batches]) for k in PACKET_FIELDS}


def text(hi: int, lo: int, version: int) -> str:
    if version == 0:
        return ""
    a = ipaddress.IPv6Address((int(hi) << 64) | int(lo))
    return str(a.ipv4_mapped) if a.ipv4_mapped else str(a)


def row(a: Arrays, i: int) -> tuple[object, ...]:
    """(ts_ns, wire_len, vlan, kind, ip_version, src, dst, protocol, sport, dport,
    tcp_flags, ip_len, frag, frag_id) of packet i (0-based)."""
    v = int(a["ip_version"][i])
    return (
        int(a["ts_ns"][i]),
        int(a["wire_len"][i]),
        int(a["vlan"][i]),
        int(a["kind"][i]),
        v,
        text(a["src_hi"][i], a["src_lo"][i], v),
        text(a["dst_hi"][i], a["dst_lo"][i], v),
        *(int(a[k][i]) for k in ("protocol", "sport", "dport", "tcp_flags", "ip_len")),
        int(a["frag"][i]),
        int(a["frag_id"][i]),
    )


V6A, V6B = "2001:db8:1::2", "2001:db8:1::1"
LDAP_C, LDAP_S = "2a00:6020:ad0b:8381:c8c2:18f1:4b9d:7524", "2a00:6020:ad0b:8380::10"
FR6_A, FR6_B = "2607:f740:b::f93", "2001:470:1f11:81f:d138:5f55:6d4:1fe2"
SLL2_6 = "fe80::8c36:6ff:fe44:acaf"

# file → (frames, {kind: count}, {packet index: expected row})
CASES: dict[str, tuple[int, dict[int, int], dict[int, tuple[object, ...]]]] = {
    # NFLOG (239): IP inside TLVs; wire_len is the whole NFLOG frame
    "zeek-nflog-http.pcap": (13, {IP: 13}, {
        0: (1470574779148133000, 108, -1, IP, 4, "10.0.2.15", "93.184.216.34", 6, 49762, 80,
            0x02, 60, L4, 59631),
        3: (1470574779148133000, 144, -1, IP, 4, "93.184.216.34", "10.0.2.15", 6, 80, 49762,
            0x12, 44, L4, 39585),
        12: (1470574780138288000, 72, -1, IP, 4, "10.0.2.15", "93.184.216.34", 6, 49762, 80,
             0x10, 40, L4, 9343),
    }),
    # PPP (9): unknown PPP protocol 0x7e08, tshark stops at PPP: counted, not decoded
    "tcpdump-ppp_ip_udp_dns.pcap": (1, {UNSUP: 1}, {
        0: (2142662398999999000, 62293, -1, UNSUP, 0, "", "", 0, 0, 0, 0, 0, 0, 0),
    }),
    # IPNET (226, Solaris): ICMP echo, type/code in sport/dport
    "tcpdump-e1000g.ipnet.pcap": (20, {IP: 20}, {
        0: (1259170046701826000, 108, -1, IP, 4, "129.146.106.55", "10.5.233.117", 1, 8, 0,
            0, 84, L4, 58766),
        1: (1259170046701845000, 108, -1, IP, 4, "10.5.233.117", "129.146.106.55", 1, 0, 0,
            0, 84, L4, 4943),
        19: (1259170055692005000, 108, -1, IP, 4, "10.5.233.117", "129.146.106.55", 1, 0, 0,
             0, 84, L4, 4952),
    }),
    # PKTAP (258, macOS)
    "tcpdump-LINKTYPE_PKTAP.pcap": (1, {IP: 1}, {
        0: (1392802874221562000, 182, -1, IP, 4, "10.32.4.27", "10.32.100.15", 17, 63538, 53,
            0, 60, L4, 11779),
    }),
    # pcapng with 126 IDBs, all packets on IDB 48 (Ethernet, 802.1Q 80/81)
    "zeek-ldap-modify-request.many-idbs.pcapng": (17, {IP: 17}, {
        0: (1725966551231155000, 90, 81, IP, 6, LDAP_C, LDAP_S, 6, 49695, 389, 0x02, 72, L4, 0),
        1: (1725966551231413000, 90, 80, IP, 6, LDAP_S, LDAP_C, 6, 389, 49695, 0x12, 72, L4, 0),
        16: (1725966551239887000, 78, 80, IP, 6, LDAP_S, LDAP_C, 6, 389, 49695, 0x14, 60, L4, 0),
    }),
    # the same 5-tuple untagged, VID 42 and QinQ 10/20 (outer 10)
    "zeek-vlan-collisions.pcap": (42, {IP: 42}, {
        0: (1362692526869344000, 78, -1, IP, 4, "141.142.228.5", "192.150.187.43", 6, 59856, 80,
            0x02, 64, L4, 57230),
        1: (1362692526919344000, 82, 42, IP, 4, "141.142.228.5", "192.150.187.43", 6, 59856, 80,
            0x02, 64, L4, 57230),
        2: (1362692526939084000, 74, -1, IP, 4, "192.150.187.43", "141.142.228.5", 6, 80, 59856,
            0x12, 60, L4, 0),
        41: (1362692527180972000, 74, 10, IP, 4, "141.142.228.5", "192.150.187.43", 6, 59856, 80,
             0x10, 52, L4, 16793),
    }),
    # 802.1ad S-tag 200 (0x88a8) outside 802.1Q 2001, ARP: the OUTER tag is kept
    "tcpdump-802.1ad_QinQ.pcap": (2, {NON_IP: 2}, {
        # non-IP frames carry their innermost ethertype in sport: ARP 0x0806 inside QinQ
        0: (1575842394599412000, 64, 200, NON_IP, 0, "", "", 0, 0x0806, 0, 0, 0, 0, 0),
        1: (1575842394599680000, 64, 200, NON_IP, 0, "", "", 0, 0x0806, 0, 0, 0, 0, 0),
    }),
    # three stacked tags 30/20/10
    "zeek-vlan-qinqinq.pcap": (14, {IP: 14}, {
        0: (1362692526869344000, 90, 30, IP, 4, "141.142.228.5", "192.150.187.43", 6, 59856, 80,
            0x02, 64, L4, 57230),
    }),
    # hop-by-hop + routing type 0 before UDP: protocol is after the extension headers
    "zeek-ipv6-hbh-routing0.pcap": (1, {IP: 1}, {
        0: (1331674079099657000, 113, -1, IP, 6, "2001:4f8:4:7:2e0:81ff:fe52:ffff",
            "2001:4f8:4:7:2e0:81ff:fe52:9a6b", 17, 53, 53, 0, 99, L4, 0),
    }),
    # destination options (#3) and atomic fragment headers (#12: offset 0, M=0: not a
    # fragment) before TCP
    "zeek-ipv6-http-atomic-frag.pcap": (38, {IP: 38}, {
        0: (1333039452484983000, 86, -1, IP, 6, V6B, V6A, 58, 136, 0, 0, 72, L4, 0),
        3: (1333039452497486000, 82, -1, IP, 6, V6A, V6B, 6, 36951, 80, 0x02, 68, L4, 0),
        12: (1333039453354053000, 82, -1, IP, 6, V6A, V6B, 6, 59694, 80, 0x02, 68, L4, 0),
    }),
    # one TCP segment in 5 IPv4 fragments: ports only in the first, no reassembly
    "zeek-ipv4-fragmented-3.pcap": (5, {IP: 5}, {
        0: (964750760184607000, 1514, -1, IP, 4, "210.54.213.247", "131.243.1.10", 6, 1265, 21,
            0x18, 1500, FRAG | FIRST | L4, 19397),
        1: (964750760203516000, 1514, -1, IP, 4, "210.54.213.247", "131.243.1.10", 6, 0, 0,
            0, 1500, FRAG, 19397),
        4: (964750760259631000, 1514, -1, IP, 4, "210.54.213.247", "131.243.1.10", 6, 0, 0,
            0, 1500, FRAG, 19397),
    }),
    # IPv6 fragment headers: protocol from the fragment header, ident as frag_id
    "zeek-ipv6-fragmented-dns.pcap": (8, {IP: 8}, {
        3: (1331084293681153000, 404, -1, IP, 6, FR6_A, FR6_B, 17, 0, 0, 0, 390, FRAG, 1),
        4: (1331084298593081000, 136, -1, IP, 6, FR6_B, FR6_A, 17, 51851, 53, 0, 122, L4, 0),
        5: (1331084298675583000, 1494, -1, IP, 6, FR6_A, FR6_B, 17, 53, 51851, 0, 1480,
            FRAG | FIRST | L4, 2),
        6: (1331084298676044000, 1494, -1, IP, 6, FR6_A, FR6_B, 17, 0, 0, 0, 1480, FRAG, 2),
    }),
    # VXLAN: the OUTER UDP header is the key, never the inner ICMP/ARP
    "zeek-vxlan.pcap": (10, {IP: 10}, {
        0: (1467818432675392000, 92, -1, IP, 4, "192.168.56.11", "192.168.56.12", 17, 39924,
            4789, 0, 78, L4, 55704),
        1: (1467818432675732000, 92, -1, IP, 4, "192.168.56.12", "192.168.56.11", 17, 40908,
            4789, 0, 78, L4, 38782),
    }),
    # ICMP port unreachable quoting a UDP header: outer ICMP type 3 code 3
    "zeek-conn-size.pcap": (21, {IP: 21}, {
        0: (1128727430350788000, 74, -1, IP, 4, "141.42.64.125", "125.190.109.199", 6, 56729,
            12345, 0x02, 60, L4, 39348),
        10: (1144876600212739000, 70, -1, IP, 4, "194.64.249.244", "192.150.186.169", 6, 80,
             53063, 0x11, 52, L4, 15694),
        15: (1144876697068273000, 70, -1, IP, 4, "192.150.186.169", "192.150.186.15", 1, 3, 3,
             0, 56, L4, 936),
        20: (1144876718032861000, 95, -1, IP, 4, "169.229.147.43", "239.255.255.253", 17, 49370,
             427, 0, 77, L4, 6944),
    }),
    # LINUX_SLL2: ICMP, ICMPv6 echo, ARP (non-IP, counted)
    "zeek-linux_dlt_sll2.pcap": (6, {IP: 4, NON_IP: 2}, {
        0: (1660534249872259000, 104, -1, IP, 4, "192.0.2.1", "192.0.2.1", 1, 8, 0, 0, 84, L4,
            44940),
        3: (1660534264088594000, 124, -1, IP, 6, SLL2_6, SLL2_6, 58, 129, 0, 0, 104, L4, 0),
        4: (1660535793578961000, 48, -1, NON_IP, 0, "", "", 0, 0x0806, 0, 0, 0, 0, 0),  # ARP
    }),
    # VSOCK (271): decoded by tshark, not IP
    "tcpdump-vsock-1.pcapng": (10, {NON_IP: 10}, {
        0: (1499949071261679299, 76, -1, NON_IP, 0, "", "", 0, 0, 0, 0, 0, 0, 0),
    }),
    # USER13 (160): tshark has no dissector configured
    "tcpdump-unsupported-link-type-160.pcap": (1, {UNSUP: 1}, {
        0: (0, 23, -1, UNSUP, 0, "", "", 0, 0, 0, 0, 0, 0, 0),
    }),
    # caplen 8 of 78 (Ethernet cut), caplen 20 of 46 (IPv4 header cut)
    "zeek-trunc-hdr.pcap": (1, {TRUNC: 1}, {
        0: (1404148886981015000, 78, -1, TRUNC, 0, "", "", 0, 0, 0, 0, 0, 0, 0),
    }),
    "zeek-ip4-trunc.pcap": (1, {TRUNC: 1}, {
        0: (1334160095895421000, 46, -1, TRUNC, 4, "::", "::", 0, 0, 0, 0, 0, 0, 0),  # no addresses
    }),
    # ns field 1,000,000,000 (#1) and 0x80000000 (#2, printed by tshark 4.0 as
    # "-1418145370.2147483648"): carried into the seconds like the fast reader does
    "tcpdump-timestamp_invalid_nano.pcap": (3, {IP: 3}, {
        0: (1418145369999999999, 76, -1, IP, 4, "131.155.215.69", "137.116.81.94", 6, 46656, 80,
            0x02, 60, L4, 10665),
        1: (1418145371000000000, 76, -1, IP, 4, "137.116.81.94", "131.155.215.69", 6, 80, 46656,
            0x12, 60, L4, 7236),
        2: (1418145372147483648, 68, -1, IP, 4, "131.155.215.69", "137.116.81.94", 6, 46656, 80,
            0x10, 52, L4, 10666),
    }),
    # PPPoE session inside QinQ 3704/2474: tshark decodes the inner IP (outer tag kept)
    "zeek-pppoe-over-qinq.pcap": (86, {IP: 86}, {
        0: (1523351398449222000, 94, 3704, IP, 4, "1.1.1.1", "2.2.2.2", 6, 20394, 443, 0x02, 64,
            L4, 0),
        1: (1523351398860407000, 82, 3704, IP, 4, "2.2.2.2", "1.1.1.1", 6, 443, 20394, 0x12, 52,
            L4, 7215),
    }),
    # pcapng 64-bit timestamp = 2**32 s (2106-02-07 06:28:16)
    "tcpdump-time_2106_overflow.pcapng": (1, {IP: 1}, {
        0: (4294967296000000000, 98, -1, IP, 4, "192.168.1.11", "209.87.249.18", 17, 43966, 53,
            0, 84, L4, 22989),
    }),
    "zeek-ssh.pcap": (1797, {IP: 1797}, {
        0: (1324071333493287000, 78, -1, IP, 4, "192.168.1.79", "131.159.21.1", 6, 51880, 22,
            0x02, 64, L4, 19239),
        1796: (1421041528379372000, 66, -1, IP, 4, "192.168.1.32", "131.103.20.168", 6, 58649,
               22, 0x10, 52, L4, 0),
    }),
}  # fmt: skip


@pytest.mark.tshark
@pytest.mark.parametrize("name", sorted(CASES))
def test_packets_and_fields(name: str) -> None:
    frames, kinds, rows = CASES[name]
    a, stats = read_once(name)
    assert len(a["ts_ns"]) == frames
    assert stats.frames == frames
    by_kind = {
        int(k): int(n) for k, n in zip(*np.unique(a["kind"], return_counts=True), strict=True)
    }
    assert by_kind == kinds
    assert (stats.ip_packets, stats.non_ip, stats.truncated, stats.unsupported) == (
        kinds.get(IP, 0),
        kinds.get(NON_IP, 0),
        kinds.get(TRUNC, 0),
        kinds.get(UNSUP, 0),
    )
    assert stats.malformed == kinds.get(KIND_MALFORMED, 0)
    assert stats.warnings == []
    assert stats.bytes_read == (DATA / name).stat().st_size
    for i, expected in rows.items():
        assert row(a, i) == expected, f"{name} packet {i}"


@pytest.mark.tshark
def test_batches_stream_in_order() -> None:
    whole, _, sizes = read(DATA / "zeek-ssh.pcap")
    assert sizes == [1797]
    parts, stats, sizes = read(DATA / "zeek-ssh.pcap", batch_size=500)
    assert sizes == [500, 500, 500, 297]
    assert stats.frames == 1797
    for k in PACKET_FIELDS:
        assert np.array_equal(whole[k], parts[k]), k


@pytest.mark.tshark
def test_stopping_early_ends_tshark() -> None:
    gen = iter_packets_tshark(DATA / "zeek-ssh.pcap", batch_size=100)
    assert isinstance(gen, types.GeneratorType)
    first = next(gen)
    assert len(first) == 100
    gen.close()  # kills the tshark child; must neither hang nor raise


@pytest.mark.tshark
def test_cut_short_keeps_packets(tmp_path: Path) -> None:
    src = (DATA / "zeek-http-get.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(src[:-20])  # the 14th (last) record loses its tail
    full, _, _ = read(DATA / "zeek-http-get.pcap")
    a, stats, _ = read(cut)
    assert len(a["ts_ns"]) == 13 and len(full["ts_ns"]) == 14
    for k in PACKET_FIELDS:
        assert np.array_equal(a[k], full[k][:13]), k
    assert len(stats.warnings) == 1
    w = stats.warnings[0]
    assert str(cut) in w and "cut short in the middle of a packet" in w
    assert "(13 packets read)" in w


@pytest.mark.tshark
def test_garbage_file_is_a_capture_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.pcap"
    bad.write_bytes(b"this is not a capture file\n" * 8)
    with pytest.raises(CaptureError) as exc:
        list(iter_packets_tshark(bad))
    msg = str(exc.value)
    assert str(bad) in msg and "byte offset 0" in msg
    assert "isn't a capture file in a format TShark understands" in msg
    assert exc.value.usage  # bad input → exit 2


@pytest.mark.tshark
@pytest.mark.parametrize("content", [None, b""])
def test_missing_or_empty_file(tmp_path: Path, content: bytes | None) -> None:
    p = tmp_path / "x.pcap"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(CaptureError, match="x.pcap"):
        list(iter_packets_tshark(p))


def test_missing_tshark_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # an empty PATH: pyshark's lookup finds no tshark (the binary itself is untouched)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no pyshark config.ini in the working directory
    assert tshark_available() is False
    with pytest.raises(CaptureError) as exc:
        list(iter_packets_tshark(DATA / "zeek-http-get.pcap"))
    assert "tshark not found" in exc.value.message
    assert exc.value.hint == INSTALL_HINT == "apt-get install tshark"
    assert exc.value.usage


@pytest.mark.tshark
def test_command_never_reassembles() -> None:
    cmd = tshark_command("x.pcap", decode_as=["udp.port==8472,vxlan"])
    assert cmd[0] == shutil.which("tshark")
    joined = " ".join(cmd)
    assert "-o ip.defragment:FALSE" in joined and "-o ipv6.defragment:FALSE" in joined
    assert "-d udp.port==8472,vxlan" in joined and "-n" in cmd


@pytest.mark.tshark
def test_decode_as_keeps_the_outer_header() -> None:
    plain, _, _ = read(DATA / "zeek-vxlan.pcap")
    stats = ReadStats()
    decoded = concat(
        list(
            iter_packets_tshark(
                DATA / "zeek-vxlan.pcap", stats=stats, decode_as=["udp.port==4789,vxlan"]
            )
        )
    )
    for k in PACKET_FIELDS:
        assert np.array_equal(plain[k], decoded[k]), k


# --- cross-check with the fast reader ------------------------------------------------

# every capture here whose link type the fast reader decodes
BOTH = sorted(
    set(CASES)
    - {
        "zeek-nflog-http.pcap",
        "tcpdump-ppp_ip_udp_dns.pcap",
        "tcpdump-e1000g.ipnet.pcap",
        "tcpdump-LINKTYPE_PKTAP.pcap",
        "tcpdump-vsock-1.pcapng",
        "tcpdump-unsupported-link-type-160.pcap",
    }
)


def fast(path: Path) -> tuple[Arrays, ReadStats]:
    from flowaudit.packets.pcap import iter_packets

    stats = ReadStats()
    return concat(list(iter_packets(path, stats=stats))), stats


@pytest.mark.tshark
@pytest.mark.parametrize("name", BOTH)
def test_engines_agree(name: str) -> None:
    a, sa = fast(DATA / name)
    b, sb = read_once(name)
    assert len(a["ts_ns"]) == len(b["ts_ns"]) == CASES[name][0]
    for k in PACKET_FIELDS:
        assert np.array_equal(a[k], b[k]), f"{name}: field {k} differs"
    assert (sa.ip_packets, sa.non_ip, sa.truncated) == (sb.ip_packets, sb.non_ip, sb.truncated)


@pytest.mark.tshark
def test_engines_differ_only_where_tshark_loses_the_timestamp() -> None:
    """µs field 0x80000000 (2147.483648 s): tshark 4.0 computes µs*1000 in 32 bits and
    shows .000000000; the fast reader keeps the real value. Everything else agrees."""
    name = "tcpdump-timestamp_invalid_micro.pcap"
    a, _ = fast(DATA / name)
    b = read_once(name)[0]
    assert a["ts_ns"].tolist() == [1418145369999999000, 1418145371000000000, 1418147517483648000]
    assert b["ts_ns"].tolist() == [1418145369999999000, 1418145371000000000, 1418145370000000000]
    for k in PACKET_FIELDS:
        if k != "ts_ns":
            assert np.array_equal(a[k], b[k]), k


@pytest.mark.tshark
@pytest.mark.parametrize(
    "name",
    [
        "zeek-nflog-http.pcap",
        "tcpdump-e1000g.ipnet.pcap",
        "tcpdump-LINKTYPE_PKTAP.pcap",
        "tcpdump-vsock-1.pcapng",
    ],
)
def test_tshark_decodes_what_the_fast_reader_cannot(name: str) -> None:
    a, sa = fast(DATA / name)
    b, sb = read_once(name)
    frames = CASES[name][0]
    assert len(a["ts_ns"]) == len(b["ts_ns"]) == frames
    assert sa.unsupported == frames and np.all(a["kind"] == KIND_UNSUPPORTED)
    assert sb.unsupported == 0
    assert np.array_equal(a["ts_ns"], b["ts_ns"]) and np.array_equal(a["wire_len"], b["wire_len"])


# --- flows: the one flow builder over both engines -----------------------------------


def flows(batches: Iterator[PacketBatch]) -> pa.Table:
    from flowaudit.flows.builder import FlowBuilder

    fb = FlowBuilder(capture_id="0" * 64, source_kind="pcap")
    tables = [fb.add(b) for b in batches]
    tables.append(fb.finish())
    return pa.concat_tables(tables).sort_by([("first_seen", "ascending"), ("flow_id", "ascending")])


@pytest.mark.tshark
@pytest.mark.parametrize(
    ("name", "n_flows"),
    [
        ("zeek-ssh.pcap", 25),
        ("zeek-vlan-collisions.pcap", 3),
        ("zeek-ipv6-fragmented-dns.pcap", 2),
        ("zeek-conn-size.pcap", 5),
        ("zeek-ipv4-fragmented-3.pcap", 1),
        ("zeek-pppoe-over-qinq.pcap", 1),
        ("zeek-ldap-modify-request.many-idbs.pcapng", 2),
    ],
)
def test_same_flow_records(name: str, n_flows: int) -> None:
    from flowaudit.packets.pcap import iter_packets

    a = flows(iter_packets(DATA / name))
    b = flows(iter_packets_tshark(DATA / name))
    assert a.num_rows == b.num_rows == n_flows
    assert a.equals(b)


@pytest.mark.tshark
def test_nflog_flow() -> None:
    """NFLOG (only tshark decodes it): one HTTP connection; the SYN is logged 3 times.
    Counted by hand from the 13 packets (frame.len / ip.len / tcp.flags)."""
    t = flows(iter_packets_tshark(DATA / "zeek-nflog-http.pcap"))
    assert t.num_rows == 1
    r = t.to_pylist()[0]
    got = {k: r[k] for k in ("src_ip", "dst_ip", "protocol", "src_port", "dst_port")}
    assert got == {
        "src_ip": "10.0.2.15",
        "dst_ip": "93.184.216.34",
        "protocol": 6,
        "src_port": 49762,
        "dst_port": 80,
    }
    counts = (
        "src_packets",
        "src_bytes",
        "dst_packets",
        "dst_bytes",
        "src_ip_bytes",
        "dst_ip_bytes",
    )
    assert [r[k] for k in counts] == [8, 828, 5, 2276, 459, 1807]
    assert (r["tcp_flags_src"], r["tcp_flags_dst"]) == (0x1B, 0x1B)
    assert (r["state"], r["direction"], r["vlan_id"]) == ("SF", "syn", None)
