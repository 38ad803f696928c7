"""The fast pcap/pcapng reader against tshark, capinfos and hand-checked broken files.

Per-packet expectations come from tshark 4.0 ``-T fields`` output committed in
``tests/data/pcaps/expected/*.tshark.tsv`` (command in ``TSHARK_ARGS`` and SOURCES.md);
the tshark-marked tests regenerate that output and check it is still what tshark says.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from testpaths import DATA

from flowaudit.errors import CaptureError
from flowaudit.kernels.layout import (
    FRAG_FIRST,
    FRAG_HAS_L4,
    FRAG_IS_FRAGMENT,
    KIND_IP,
    KIND_NON_IP,
    KIND_TRUNCATED,
    KIND_UNSUPPORTED,
)
from flowaudit.packets.batch import (
    PACKET_FIELDS,
    PacketBatch,
    ReadStats,
)
from flowaudit.packets.detect import sniff_format
from flowaudit.packets.pcap import iter_packets, read_all

PCAPS = DATA / "pcaps"
EXPECTED = PCAPS / "expected"

TSHARK_FIELDS = (
    "frame.protocols frame.time_epoch frame.len vlan.id ip.src ip.dst ip.proto ip.len ip.id "
    "ip.flags.mf ip.frag_offset ipv6.src ipv6.dst ipv6.plen ipv6.nxt ipv6.hopopts.nxt "
    "ipv6.routing.nxt ipv6.dstopts.nxt ipv6.fraghdr.nxt ipv6.fraghdr.offset ipv6.fraghdr.more "
    "ipv6.fraghdr.ident ah.next_header tcp.srcport tcp.dstport tcp.flags udp.srcport "
    "udp.dstport icmp.type icmp.code icmpv6.type icmpv6.code ieee8021ad.id"
).split()
TSHARK_ARGS = [
    "-n",
    "-o", "ip.defragment:FALSE",
    "-o", "ipv6.defragment:FALSE",
    "-T", "fields", "-E", "header=y", "-E", "occurrence=f", "-E", "separator=/t",
]  # fmt: skip
for _f in TSHARK_FIELDS:
    TSHARK_ARGS += ["-e", _f]
# the ethertype of a non-IP frame is the innermost one: these fields are taken from a
# second run with the LAST occurrence of each (QinQ has two vlan.etype) and pasted beside
ETYPE_FIELDS = {"eth": "eth.type", "vlan": "vlan.etype", "sll": "sll.etype",
                "ieee8021ah": "ieee8021ah.etype", "vntag": "vntag.etype"}  # fmt: skip
ETYPE_ARGS = ["-n", "-T", "fields", "-E", "header=y", "-E", "occurrence=l", "-E", "separator=/t"]
for _f in ETYPE_FIELDS.values():
    ETYPE_ARGS += ["-e", f"{_f}"]

# captures compared packet by packet with tshark (all fields of the PacketBatch)
TSHARK_COMPARED = [
    "zeek-vlan-collisions.pcap",
    "zeek-q-in-q.pcap",
    "zeek-vlan-qinqinq.pcap",
    "zeek-http-vlan-0.pcap",
    "zeek-http-qinq-0.pcap",
    "tcpdump-802.1ad_QinQ.pcap",
    "zeek-mixed-vlan-mpls.pcap",
    "zeek-mpls-in-vlan.pcap",
    "zeek-pppoe-over-qinq.pcap",
    "zeek-ipv6-hbh-routing0.pcap",
    "zeek-communityid-icmp6.pcap",
    "zeek-ftp-ipv6.pcap",
    "zeek-ipv4-fragmented-1.pcap",
    "zeek-ipv4-fragmented-2.pcap",
    "zeek-ipv4-fragmented-3.pcap",
    "zeek-ipv4-fragmented-4.pcap",
    "zeek-ipv4-fragmented-syn.pcap",
    "zeek-ipv6-fragmented-dns.pcap",
    "zeek-ipv6-http-atomic-frag.pcap",
    "ndpi-dns_fragmented.pcap",
    "tcpdump-tcp-handshake-nano.sll.pcap",
    "ptcpdump-tfo.sll2.pcap",
    "zeek-linux_dlt_sll2.pcap",
    "zeek-http-connect-with-header.null.pcap",
    "zeek-udp-multiple-source-ports.null.pcap",
    "tcpdump-LINKTYPE_RAW_ipv4.pcap",
    "tcpdump-LINKTYPE_RAW_ipv6.pcap",
    "tcpdump-LINKTYPE_IPV4.pcap",
    "tcpdump-LINKTYPE_IPV6.pcap",
    "tcpdump-pptp.bigendian.pcap",
    "zeek-pcapng-multi-interface.pcapng",
    "zeek-ldap-modify-request.many-idbs.pcapng",
    "ptcpdump-tcp.comments.pcapng",
    "tcpdump-time_2038.pcap",
    "tcpdump-time_2106_overflow.pcapng",
    "zeek-tcp-truncated-header.pcap",
    "zeek-communityid-tcp.pcap",
    "zeek-communityid-icmp.pcap",
    "zeek-vxlan.pcap",
    "ndpi-vxlan.pcap",
    "zeek-http-get.pcap",
    "tcpdump-dns_tcp.pcap",
]

# packet counts per capture, from `capinfos -c -M` (Debian Wireshark 4.0.17)
CAPINFOS_COUNTS = {
    "zeek-vlan-collisions.pcap": 42,
    "zeek-q-in-q.pcap": 5,
    "zeek-vlan-qinqinq.pcap": 14,
    "zeek-http-vlan-0.pcap": 14,
    "zeek-http-qinq-0.pcap": 14,
    "tcpdump-802.1ad_QinQ.pcap": 2,
    "zeek-mixed-vlan-mpls.pcap": 47,
    "zeek-mpls-in-vlan.pcap": 3,
    "zeek-pppoe-over-qinq.pcap": 86,
    "zeek-ipv6-hbh-routing0.pcap": 1,
    "zeek-communityid-icmp6.pcap": 49,
    "zeek-ftp-ipv6.pcap": 136,
    "zeek-ipv4-fragmented-1.pcap": 3,
    "zeek-ipv4-fragmented-2.pcap": 3,
    "zeek-ipv4-fragmented-3.pcap": 5,
    "zeek-ipv4-fragmented-4.pcap": 6,
    "zeek-ipv4-fragmented-syn.pcap": 2,
    "zeek-ipv6-fragmented-dns.pcap": 8,
    "zeek-ipv6-http-atomic-frag.pcap": 38,
    "ndpi-dns_fragmented.pcap": 66,
    "tcpdump-tcp-handshake-nano.sll.pcap": 3,
    "ptcpdump-tfo.sll2.pcap": 4,
    "zeek-linux_dlt_sll2.pcap": 6,
    "zeek-http-connect-with-header.null.pcap": 58,
    "zeek-udp-multiple-source-ports.null.pcap": 3,
    "tcpdump-LINKTYPE_RAW_ipv4.pcap": 1,
    "tcpdump-LINKTYPE_RAW_ipv6.pcap": 1,
    "tcpdump-LINKTYPE_IPV4.pcap": 1,
    "tcpdump-LINKTYPE_IPV6.pcap": 1,
    "tcpdump-unsupported-link-type-160.pcap": 1,
    "tcpdump-pptp.bigendian.pcap": 23,
    "zeek-pcapng-multi-interface.pcapng": 6,
    "zeek-ldap-modify-request.many-idbs.pcapng": 17,
    "ptcpdump-tcp.comments.pcapng": 24,
    "tcpdump-time_2038.pcap": 1,
    "tcpdump-time_2106_overflow.pcapng": 1,
    "zeek-tcp-truncated-header.pcap": 24,
    "zeek-communityid-tcp.pcap": 12,
    "zeek-communityid-icmp.pcap": 12,
    "zeek-vxlan.pcap": 10,
    "ndpi-vxlan.pcap": 127,
    "zeek-http-get.pcap": 14,
    "tcpdump-dns_tcp.pcap": 11,
    "zeek-ssh.pcap": 1797,
    "zeek-echo-connections.pcap.gz": 82582,
    "zeek-empty.pcap": 0,
    "tcpdump-empty.pcapng": 0,
    "zeek-trunc-hdr.pcap": 1,
    "zeek-ip4-trunc.pcap": 1,
    "zeek-ip6-trunc.pcap": 1,
    "tcpdump-timestamp_invalid_micro.pcap": 3,
    "tcpdump-timestamp_invalid_nano.pcap": 3,
}


# --------------------------------------------------------------------------- helpers


def run_tshark(path: Path) -> str:
    def run(args: list[str]) -> list[str]:
        out = subprocess.run(
            ["tshark", "-r", str(path), *args], capture_output=True, check=True, text=True
        )
        return out.stdout.rstrip("\n").split("\n")

    main, etypes = run(TSHARK_ARGS), run(ETYPE_ARGS)
    etypes = [line.replace("eth.type", "last.eth.type", 1) if i == 0 else line
              for i, line in enumerate(etypes)]  # fmt: skip
    return "".join(f"{a}\t{b}\n" for a, b in zip(main, etypes, strict=True))


def _addr(text: str) -> tuple[int, int]:
    a = ipaddress.ip_address(text)
    v = int(a) | (0xFFFF << 32) if a.version == 4 else int(a)
    return v >> 64, v & ((1 << 64) - 1)


def _int(text: str) -> int:
    return int(text, 0) if text else 0


def _flag(text: str) -> bool:
    return text in ("1", "True")


def expected_from_tshark(tsv: str) -> dict[str, np.ndarray]:
    """Turn tshark's field output into the PacketBatch columns the reader must produce."""
    lines = tsv.rstrip("\n").split("\n")
    head = lines[0].split("\t")
    cols: dict[str, list[int]] = {k: [] for k in PACKET_FIELDS}
    for line in lines[1:]:
        r = dict(zip(head, line.split("\t"), strict=True))
        protos = r["frame.protocols"].split(":")
        sec, _, frac = r["frame.time_epoch"].partition(".")
        row = dict.fromkeys(PACKET_FIELDS, 0)
        row["ts_ns"] = int(sec or 0) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])
        row["wire_len"] = int(r["frame.len"])
        tags = [p for p in protos if p in ("vlan", "ieee8021ad")]
        row["vlan"] = (
            int(r[f"{tags[0]}.id" if tags[0] == "vlan" else "ieee8021ad.id"]) if tags else -1
        )
        l3 = next((p for p in protos if p in ("ip", "ipv6")), None)
        row["kind"] = KIND_IP if l3 else KIND_NON_IP
        if not l3:  # a non-IP frame carries its innermost ethertype in sport (0: LLC)
            layer = next((p for p in reversed(protos) if p in ETYPE_FIELDS), None)
            column = "last.eth.type" if layer == "eth" else ETYPE_FIELDS.get(layer or "", "")
            row["sport"] = _int(r.get(column, "").split(",")[-1])
        frag = 0
        if l3 == "ip":
            row["ip_version"] = 4
            row["src_hi"], row["src_lo"] = _addr(r["ip.src"])
            row["dst_hi"], row["dst_lo"] = _addr(r["ip.dst"])
            row["protocol"] = int(r["ip.proto"])
            row["ip_len"] = int(r["ip.len"])
            row["frag_id"] = _int(r["ip.id"])
            off = int(r["ip.frag_offset"])
            if off or _flag(r["ip.flags.mf"]):
                frag = FRAG_IS_FRAGMENT | (FRAG_FIRST if off == 0 else 0)
        elif l3 == "ipv6":
            row["ip_version"] = 6
            row["src_hi"], row["src_lo"] = _addr(r["ipv6.src"])
            row["dst_hi"], row["dst_lo"] = _addr(r["ipv6.dst"])
            row["ip_len"] = 40 + int(r["ipv6.plen"])
            nxt = [
                r[k]
                for k in (
                    "ipv6.nxt ipv6.hopopts.nxt ipv6.routing.nxt ipv6.dstopts.nxt "
                    "ipv6.fraghdr.nxt ah.next_header"
                ).split()
                if r[k]
            ]
            upper = [int(v) for v in nxt if int(v) not in (0, 43, 44, 51, 60)]
            row["protocol"] = upper[0]
            if r["ipv6.fraghdr.ident"]:
                row["frag_id"] = _int(r["ipv6.fraghdr.ident"])
                off = int(r["ipv6.fraghdr.offset"])
                if off or _flag(r["ipv6.fraghdr.more"]):
                    frag = FRAG_IS_FRAGMENT | (FRAG_FIRST if off == 0 else 0)
        l4 = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}.get(row["protocol"])
        if l3 and l4 in protos:
            if l4 in ("tcp", "udp"):
                row["sport"] = int(r[f"{l4}.srcport"])
                row["dport"] = int(r[f"{l4}.dstport"])
            else:
                row["sport"] = int(r[f"{l4}.type"])
                row["dport"] = int(r[f"{l4}.code"])
            if l4 == "tcp":
                row["tcp_flags"] = int(r["tcp.flags"], 16) & 0xFF
            frag |= FRAG_HAS_L4
        row["frag"] = frag
        for k in PACKET_FIELDS:
            cols[k].append(row[k])
    return {k: np.array(v, dtype=PACKET_FIELDS[k]) for k, v in cols.items()}


def assert_batch_equal(got: PacketBatch, want: dict[str, np.ndarray]) -> None:
    got.check()
    assert len(got) == len(want["ts_ns"])
    for k in PACKET_FIELDS:
        bad = np.nonzero(got[k] != want[k])[0]
        assert not len(bad), (
            f"{k}: packets {(bad + 1).tolist()[:10]} (1-based): "
            f"got {got[k][bad][:10].tolist()} want {want[k][bad][:10].tolist()}"
        )


def digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in PACKET_FIELDS:
        h.update(k.encode())
        h.update(np.ascontiguousarray(arrays[k]).tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- counts


@pytest.mark.parametrize("name", sorted(CAPINFOS_COUNTS))
def test_packet_count_matches_capinfos(name: str) -> None:
    stats = ReadStats()
    n = sum(len(b) for b in iter_packets(PCAPS / name, stats=stats))
    assert n == stats.frames == CAPINFOS_COUNTS[name]
    assert (
        stats.ip_packets + stats.non_ip + stats.truncated + stats.unsupported + stats.malformed == n
    )


# --------------------------------------------------------------------------- vs tshark


@pytest.mark.parametrize("name", TSHARK_COMPARED)
def test_fields_match_tshark(name: str) -> None:
    want = expected_from_tshark((EXPECTED / f"{name}.tshark.tsv").read_text())
    assert_batch_equal(read_all(PCAPS / name), want)


@pytest.mark.tshark
@pytest.mark.parametrize("name", TSHARK_COMPARED)
def test_committed_tshark_output_is_current(name: str, update_golden: bool) -> None:
    fresh = run_tshark(PCAPS / name)
    target = EXPECTED / f"{name}.tshark.tsv"
    if update_golden:
        target.write_text(fresh)
    assert fresh == target.read_text()


ECHO = "zeek-echo-connections.pcap.gz"


def test_gzip_capture_matches_tshark_digest() -> None:
    ref = json.loads((EXPECTED / f"{ECHO}.summary.json").read_text())
    stats = ReadStats()
    got = read_all(PCAPS / ECHO, stats=stats)
    assert sniff_format(PCAPS / ECHO) == "pcap"
    assert len(got) == ref["packets"] == 82582
    assert stats.ip_packets == 82582 and stats.warnings == []
    assert int(got["wire_len"].astype(np.int64).sum()) == ref["wire_bytes"]
    assert int((got["tcp_flags"] & 2).astype(bool).sum()) == ref["syn_packets"]
    assert digest(got.arrays) == ref["sha256"]


@pytest.mark.slow
@pytest.mark.tshark
def test_gzip_capture_matches_tshark_live(update_golden: bool) -> None:
    want = expected_from_tshark(run_tshark(PCAPS / ECHO))
    summary = {
        "packets": len(want["ts_ns"]),
        "wire_bytes": int(want["wire_len"].astype(np.int64).sum()),
        "syn_packets": int((want["tcp_flags"] & 2).astype(bool).sum()),
        "sha256": digest(want),
    }
    target = EXPECTED / f"{ECHO}.summary.json"
    if update_golden:
        target.write_text(json.dumps(summary, indent=1) + "\n")
    assert json.loads(target.read_text()) == summary
    assert_batch_equal(read_all(PCAPS / ECHO), want)


# --------------------------------------------------------------------------- specifics


def test_vlan_ids_outermost_and_vid0() -> None:
    vc = read_all(PCAPS / "zeek-vlan-collisions.pcap")
    assert sorted(set(vc["vlan"].tolist())) == [-1, 10, 42]  # untagged, 42, QinQ 10/20
    assert set(read_all(PCAPS / "zeek-vlan-qinqinq.pcap")["vlan"].tolist()) == {30}
    # Zeek's vlan-0 baselines log vlan=0: a priority tag is a tag with VID 0
    assert set(read_all(PCAPS / "zeek-http-vlan-0.pcap")["vlan"].tolist()) == {0}
    assert set(read_all(PCAPS / "zeek-http-qinq-0.pcap")["vlan"].tolist()) == {0}
    qinq = read_all(PCAPS / "tcpdump-802.1ad_QinQ.pcap")  # 0x88a8 S-tag 200, C-tag 2001, ARP
    assert qinq["vlan"].tolist() == [200, 200]
    assert qinq["kind"].tolist() == [KIND_NON_IP, KIND_NON_IP]


def test_timestamps_beyond_2038_and_2106() -> None:
    t38 = read_all(PCAPS / "tcpdump-time_2038.pcap")["ts_ns"]
    assert t38.tolist() == [2145916800 * 10**9]  # 2038-01-01, needs unsigned 32-bit seconds
    t2106 = read_all(PCAPS / "tcpdump-time_2106_overflow.pcapng")["ts_ns"]
    assert t2106.tolist() == [2**32 * 10**9]  # 2106-02-07 06:28:16


def test_nanosecond_pcap_keeps_nanoseconds() -> None:
    ts = read_all(PCAPS / "tcpdump-tcp-handshake-nano.sll.pcap")["ts_ns"]
    assert (ts % 1000 != 0).any()


# --------------------------------------------------------------------------- broken files


@pytest.mark.parametrize("name", ["zeek-empty.pcap", "tcpdump-empty.pcapng"])
def test_empty_capture_gives_no_packets_and_no_warning(name: str) -> None:
    stats = ReadStats()
    assert list(iter_packets(PCAPS / name, stats=stats)) == []
    assert stats.frames == 0 and stats.warnings == []


def test_zero_byte_file_is_a_capture_error(tmp_path: Path) -> None:
    p = tmp_path / "zero.pcap"
    p.write_bytes(b"")
    with pytest.raises(CaptureError, match=r"zero\.pcap: empty file at byte 0"):
        list(iter_packets(p))
    with pytest.raises(CaptureError, match="at byte 0"):
        sniff_format(p)


def test_garbage_is_a_capture_error_at_offset_0(tmp_path: Path) -> None:
    p = tmp_path / "garbage.pcap"
    p.write_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 10)
    with pytest.raises(CaptureError, match=r"garbage\.pcap: not a pcap or pcapng file at byte 0"):
        list(iter_packets(p))
    assert sniff_format(p) == "unknown"
    gz = tmp_path / "garbage.gz"
    gz.write_bytes(gzip.compress(p.read_bytes()))
    with pytest.raises(CaptureError, match="at byte 0"):
        list(iter_packets(gz))


def test_truncated_file_header_is_a_capture_error(tmp_path: Path) -> None:
    p = tmp_path / "hdr.pcap"
    p.write_bytes((PCAPS / "zeek-http-get.pcap").read_bytes()[:20])
    with pytest.raises(CaptureError, match=r"hdr\.pcap: truncated pcap file header"):
        list(iter_packets(p))


def test_trunc_hdr_record_shorter_than_ethernet() -> None:
    stats = ReadStats()
    b = read_all(PCAPS / "zeek-trunc-hdr.pcap", stats=stats)
    assert b["kind"].tolist() == [KIND_TRUNCATED]
    assert b["wire_len"].tolist() == [78]
    assert stats.truncated == 1 and stats.warnings == []


@pytest.mark.parametrize(
    ("name", "version", "wire_len"),
    [("zeek-ip4-trunc.pcap", 4, 46), ("zeek-ip6-trunc.pcap", 6, 74)],
)
def test_ip_header_cut_short_is_truncated(name: str, version: int, wire_len: int) -> None:
    # caplen 20 = Ethernet + 6 bytes of IPv4; caplen 48 = Ethernet + 34 of the 40 IPv6 bytes
    stats = ReadStats()
    b = read_all(PCAPS / name, stats=stats)
    assert b["kind"].tolist() == [KIND_TRUNCATED]
    assert b["ip_version"].tolist() == [version]
    assert b["wire_len"].tolist() == [wire_len]
    assert int(b["src_lo"][0]) == int(b["dst_lo"][0]) == 0
    assert b["frag"].tolist() == [0] and b["sport"].tolist() == [0]
    assert stats.truncated == 1 and stats.warnings == []


def test_fuzz_file_cut_short_warns_with_offset() -> None:
    stats = ReadStats()
    p = PCAPS / "ndpi-fuzz-2021-10-13.cut-short.pcap"
    assert list(iter_packets(p, stats=stats)) == []
    assert stats.warnings == [
        f"{p}: truncated at byte 24: record of 524501 bytes runs past the end of the file"
        " (199 bytes left) (0 packets read)"
    ]


@pytest.mark.parametrize("cut", [7, 16 + 5])  # inside a record header / inside its data
def test_ssh_cut_mid_record_keeps_earlier_packets(tmp_path: Path, cut: int) -> None:
    data = (PCAPS / "zeek-ssh.pcap").read_bytes()
    full = read_all(PCAPS / "zeek-ssh.pcap")
    # find the offset of record 1000 by walking the (little-endian) record headers
    off = 24
    for _ in range(1000):
        off += 16 + struct.unpack_from("<I", data, off + 8)[0]
    p = tmp_path / "ssh-cut.pcap"
    p.write_bytes(data[: off + cut])
    stats = ReadStats()
    got = read_all(p, stats=stats)
    assert len(got) == 1000
    for k in PACKET_FIELDS:
        assert np.array_equal(got[k], full[k][:1000]), k
    detail = (
        f"record header cut short ({cut} of 16 bytes)"
        if cut < 16
        else f"record of {_caplen(data, off)} bytes"
        f" runs past the end of the file ({cut - 16} bytes left)"
    )
    assert stats.warnings == [f"{p}: truncated at byte {off}: {detail} (1000 packets read)"]


def _caplen(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<I", data, off + 8)[0])


def test_unsupported_link_type_counted_and_warned_once(tmp_path: Path) -> None:
    src = (PCAPS / "tcpdump-unsupported-link-type-160.pcap").read_bytes()
    rec = src[24:]
    p = tmp_path / "lt160x3.pcap"
    p.write_bytes(src[:24] + rec * 3)
    stats = ReadStats()
    b = read_all(p, stats=stats)
    assert b["kind"].tolist() == [KIND_UNSUPPORTED] * 3
    assert stats.unsupported == 3 and stats.link_types == {160}
    assert stats.warnings == [
        f"{p}: link type 160 (USER13) is not decoded by the fast reader: its frames are"
        " counted as unsupported (the tshark engine decodes more link types)"
    ]


@pytest.mark.parametrize(
    ("name", "unit", "limit", "ts_ns"),
    [
        ("tcpdump-timestamp_invalid_micro.pcap", "µs", "1,000,000",
         [1418145369_999999000, 1418145371_000000000, 1418147517_483648000]),
        ("tcpdump-timestamp_invalid_nano.pcap", "ns", "1,000,000,000",
         [1418145369_999999999, 1418145371_000000000, 1418145372_147483648]),
    ],
)  # fmt: skip
def test_bad_subsecond_timestamps_kept_normalised_warned(
    name: str, unit: str, limit: str, ts_ns: list[int]
) -> None:
    # record 2 has µs/ns field 1e6/1e9, record 3 has 2**31: carried into seconds
    stats = ReadStats()
    b = read_all(PCAPS / name, stats=stats)
    assert len(b) == 3 and stats.ip_packets == 3
    assert b["ts_ns"].tolist() == ts_ns
    assert stats.warnings == [
        f"{PCAPS / name}: 2 packet(s) with a sub-second timestamp field ({unit}) ≥ {limit};"
        " kept, normalised by carrying the excess into seconds"
    ]


# --------------------------------------------------------------------------- chunking


@pytest.mark.parametrize(
    "name",
    ["zeek-ssh.pcap", "ptcpdump-tcp.comments.pcapng", "zeek-ldap-modify-request.many-idbs.pcapng"],
)
def test_tiny_chunks_and_batches_give_identical_packets(name: str) -> None:
    full = read_all(PCAPS / name)
    parts = list(iter_packets(PCAPS / name, chunk_bytes=1000, max_batch=7))
    # batches are filled across chunk boundaries: all full but the last
    assert [len(b) for b in parts[:-1]] == [7] * (len(parts) - 1) and 0 < len(parts[-1]) <= 7
    for k in PACKET_FIELDS:
        assert np.array_equal(np.concatenate([b[k] for b in parts]), full[k]), k


def test_sniff_format(tmp_path: Path) -> None:
    assert sniff_format(PCAPS / "zeek-http-get.pcap") == "pcap"
    assert sniff_format(PCAPS / "tcpdump-pptp.bigendian.pcap") == "pcap"
    assert sniff_format(PCAPS / "tcpdump-tcp-handshake-nano.sll.pcap") == "pcap"
    assert sniff_format(PCAPS / "tcpdump-empty.pcapng") == "pcapng"
    assert sniff_format(PCAPS / ECHO) == "pcap"
    renamed = tmp_path / "capture.txt"  # the suffix does not matter
    shutil.copy(PCAPS / "ptcpdump-tcp.comments.pcapng", renamed)
    assert sniff_format(renamed) == "pcapng"
    with pytest.raises(CaptureError, match="cannot"):
        sniff_format(tmp_path / "missing.pcap")


# --------------------------------------------------------------------------- synthetic pcapng

# Ethernet / 802.1Q VLAN 111 / IPv4 10.25.233.4 -> 10.25.233.5 / TCP 40000 -> 2379 SYN
_IP_TCP = bytes.fromhex(
    "45000028abcd40004006"
    "0000"
    "0a19e904"
    "0a19e905"  # IPv4, id 0xabcd, DF
    "9c40094b"
    "00000001"
    "00000000"
    "5002ffff"
    "00000000"  # TCP SYN
)
ETH_VLAN_TCP = bytes.fromhex("0200000000020200000000018100006f0800") + _IP_TCP


def _blk(e: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def _opt(e: str, code: int, val: bytes) -> bytes:
    return struct.pack(e + "HH", code, len(val)) + val + b"\0" * (-len(val) % 4)


def _shb(e: str) -> bytes:
    return _blk(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def _idb(e: str, link: int, opts: bytes = b"", snaplen: int = 0) -> bytes:
    end = _opt(e, 0, b"") if opts else b""
    return _blk(e, 1, struct.pack(e + "HHI", link, 0, snaplen) + opts + end)


def _epb(e: str, iface: int, ts: int, data: bytes, orig: int | None = None) -> bytes:
    comment = _opt(e, 1, b"a comment") + _opt(e, 0, b"")
    head = struct.pack(e + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), orig or len(data))
    return _blk(e, 6, head + data + b"\0" * (-len(data) % 4) + comment)


def _pcapng_sample() -> bytes:
    le, be = "<", ">"
    return b"".join(
        [
            _shb(le),
            _idb(le, 1, snaplen=58),  # if 0: Ethernet, default µs resolution
            _idb(le, 101, _opt(le, 9, b"\x8a") + _opt(le, 14, struct.pack("<q", 1000))),
            _epb(le, 0, 1_700_000_000_123456, ETH_VLAN_TCP),
            _blk(le, 4, b"\x00\x00\x00\x00"),  # NRB: skipped
            _epb(le, 1, (1_700_000_000 << 10) + 512, _IP_TCP, 1500),  # 2^-10 s, +1000 s
            _blk(le, 3, struct.pack("<I", 64) + ETH_VLAN_TCP),  # SPB on if 0, no timestamp
            _blk(le, 5, struct.pack("<III", 0, 0, 0)),  # ISB: skipped
            _blk(le, 0xBAD, b"unknown block"),  # unknown: skipped by length
            _blk(le, 2, struct.pack("<HHIIII", 0, 0, 0, 7, len(ETH_VLAN_TCP), 80) + ETH_VLAN_TCP),
            _shb(be),  # a second, big-endian section: interfaces start again
            _idb(be, 276, _opt(be, 9, b"\x09")),  # SLL2, ns
            _epb(be, 0, 1_700_000_123_000_000_007, bytes.fromhex("0800") + b"\0" * 18 + _IP_TCP),
        ]
    )


PCAPNG_SAMPLE_TS = [
    1_700_000_000_123456_000,
    1_700_001_000_500000_000,  # (2^-10 resolution) 1700000000.5 s + if_tsoffset 1000 s
    1_700_001_000_500000_000,  # SPB: the previous packet's timestamp
    7_000,  # OPB on if 0: 7 µs
    1_700_000_123_000_000_007,
]


def test_synthetic_pcapng_blocks_sections_resolutions(tmp_path: Path) -> None:
    p = tmp_path / "sample.pcapng"
    p.write_bytes(_pcapng_sample())
    stats = ReadStats()
    b = read_all(p, stats=stats)
    assert b["ts_ns"].tolist() == PCAPNG_SAMPLE_TS
    assert b["wire_len"].tolist() == [58, 1500, 64, 80, 60]
    assert b["vlan"].tolist() == [111, -1, 111, 111, -1]
    assert b["kind"].tolist() == [KIND_IP] * 5
    assert b["sport"].tolist() == [40000] * 5 and b["dport"].tolist() == [2379] * 5
    assert b["tcp_flags"].tolist() == [2] * 5 and b["frag_id"].tolist() == [0xABCD] * 5
    assert stats.link_types == {1, 101, 276} and stats.warnings == []
    # the same packets through tiny chunks (every block carried over chunk ends)
    small = list(iter_packets(p, chunk_bytes=64, max_batch=2))
    assert np.concatenate([x["ts_ns"] for x in small]).tolist() == PCAPNG_SAMPLE_TS


@pytest.mark.tshark
def test_synthetic_pcapng_agrees_with_tshark(tmp_path: Path) -> None:
    p = tmp_path / "sample.pcapng"
    p.write_bytes(_pcapng_sample())
    lines = run_tshark(p).split("\n")
    # tshark 4.0 shows the unknown block (type 0xBAD) as a 12-byte "data" record: drop it
    assert lines[4].startswith("data\t\t12\t")
    want = expected_from_tshark("\n".join(lines[:4] + lines[5:]))
    got = read_all(p)
    ts_ok = [0, 1, 3, 4]  # tshark gives the SPB no timestamp
    assert got["ts_ns"][ts_ok].tolist() == want["ts_ns"][ts_ok].tolist()
    want["ts_ns"] = got["ts_ns"]
    assert_batch_equal(got, want)


def test_pcapng_cut_mid_block_keeps_earlier_packets(tmp_path: Path) -> None:
    data = _pcapng_sample()
    p = tmp_path / "cut.pcapng"
    p.write_bytes(data[:-10])  # inside the last EPB
    stats = ReadStats()
    b = read_all(p, stats=stats)
    assert b["ts_ns"].tolist() == PCAPNG_SAMPLE_TS[:4]
    blen = len(_epb(">", 0, 0, bytes(20) + _IP_TCP))
    assert blen == 112
    assert stats.warnings == [
        f"{p}: truncated at byte {len(data) - blen}: block of 112 bytes runs past the end"
        " of the file (102 bytes left) (4 packets read)"
    ]
