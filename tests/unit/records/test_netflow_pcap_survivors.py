"""Export datagrams out of pcap captures (``records/netflow/pcap.py``): the cases the
second mutmut run left alive.

Frames and records are encoded with ``struct`` by the helpers of
``test_netflow_pcap_edges.py`` from the published layouts: IPv4 (RFC 791), IPv6 (RFC 8200),
UDP (RFC 768: the length field covers the 8-octet header, so 8 is a datagram without
payload) and libpcap's file and record headers (draft-ietf-opsawg-pcap: a 24-octet file
header, 16-octet record headers whose captured length is an unsigned 32-bit number; a
record longer than max(snaplen, 262144) octets is corrupt, decided from its header). The
reader takes the file in 1 MiB reads; a broken gzip trailer (CRC and length zeroed) makes
the read that reaches the end of the data fail, which shows where, and whether, the
reader reads. The expected values are the payloads, addresses and offsets put there.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
from test_netflow_pcap_edges import ETH, RAW, SRC4, SRC6, eth, eth6, ipv4, ipv6, pcap_file, udp

from flowaudit.errors import CaptureError
from flowaudit.records.netflow.pcap import iter_udp_payloads, udp_datagram

MIB = 1 << 20  # the reader's read size
HEAD = 24  # the libpcap file header


# --- one frame ---------------------------------------------------------------------------
def test_a_datagram_that_ends_with_its_udp_header() -> None:
    # a UDP length of 8 (the header alone) or 0 (to the frame end), with the frame ending
    # right after the 8 header octets: a datagram with an empty payload, not a cut one
    for n in (8, 0):
        frames = [(ETH, eth(ipv4(udp(b"", length=n))), SRC4),
                  (RAW, ipv4(udp(b"", length=n)), SRC4),
                  (ETH, eth6(ipv6(udp(b"", length=n))), SRC6),
                  (RAW, ipv6(udp(b"", length=n)), SRC6)]  # fmt: skip
        for link, frame, src in frames:
            counts: dict[str, int] = {}
            assert udp_datagram(link, frame, counts) == (src, b""), (n, link, src)
            assert counts == {}
    # one octet less is a cut UDP header
    counts = {}
    assert udp_datagram(RAW, ipv4(udp(b""))[:27], counts) is None
    assert counts == {"truncated_frames": 1}


# --- libpcap record lengths ----------------------------------------------------------------
@pytest.mark.parametrize("incl", [0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFF0])
def test_pcap_record_lengths_of_2_31_and_above_are_corrupt(tmp_path: Path, incl: int) -> None:
    # the captured length is unsigned: 2^31 and above are lengths, far above the limit
    data, offs = pcap_file([eth(ipv4(udp(b"ab")))])
    path = tmp_path / "x.pcap"
    path.write_bytes(data + struct.pack("<IIII", 0, 0, incl, 60) + bytes(60))
    counts: dict[str, int] = {}
    assert list(iter_udp_payloads(path, counts)) == [(SRC4, b"ab", HEAD)]
    assert counts == {"corrupt_at": len(data)}


# --- where the reads start -----------------------------------------------------------------
def records_of(size: int) -> list[bytes]:
    """Frames whose pcap records (16-octet header + frame) total exactly ``size`` octets,
    each a UDP datagram whose payload starts with its index."""
    frames, used = [], 0
    while size - used >= 2 * (16 + 42 + 1000):
        frames.append(eth(ipv4(udp(len(frames).to_bytes(2, "big") + bytes(998)))))
        used += 16 + len(frames[-1])
    rest = size - used - 16 - 42  # the last one takes what is left (above 1000 octets)
    frames.append(eth(ipv4(udp(len(frames).to_bytes(2, "big") + bytes(rest - 2)))))
    assert sum(16 + len(f) for f in frames) == size
    return frames


def broken_gzip(path: Path, data: bytes) -> None:
    z = bytearray(gzip.compress(data, compresslevel=1))
    z[-8:] = bytes(8)  # CRC-32 and ISIZE no longer match: the read at the end fails
    path.write_bytes(bytes(z))


@pytest.mark.parametrize(("x", "tail"), [(0, 0), (0, 1), (0, 100), (5, 100), (20, 100)])
def test_pcap_read_errors_name_the_offset_the_read_started_at(
    tmp_path: Path, x: int, tail: int
) -> None:
    # whole records up to x octets before byte 24 + 1 MiB, then a next record of which the
    # first 1 MiB read holds x octets and the file ``tail`` more (0: none): every whole
    # record is returned, and the second read, which meets the broken trailer, starts at
    # byte 24 + 1 MiB, however much of the next record the first one held
    frames = records_of(MIB - x)
    data, offs = pcap_file([*frames, eth(ipv4(udp(b"\x00\x0anext" + bytes(200))))])
    assert offs[-1] == HEAD + MIB - x
    path = tmp_path / "x.pcap.gz"
    broken_gzip(path, data[: HEAD + MIB + tail])
    got: list[tuple[str, bytes, int]] = []
    counts: dict[str, int] = {}
    with pytest.raises(CaptureError) as e:
        for d in iter_udp_payloads(path, counts):
            got.append(d)
    assert str(e.value).startswith(f"{path}: unreadable at byte {HEAD + MIB}: ")
    assert got == [(SRC4, f[42:], o) for f, o in zip(frames, offs, strict=False)]
    assert counts == {}


def test_pcap_of_exactly_one_read(tmp_path: Path) -> None:
    # the same records uncompressed; then a whole record after them, in the second read;
    # then a 1-octet or 15-octet cut record header instead
    frames = records_of(MIB)
    data, offs = pcap_file(frames)
    want = [(SRC4, f[42:], o) for f, o in zip(frames, offs, strict=True)]
    path = tmp_path / "x.pcap"
    path.write_bytes(data)
    counts: dict[str, int] = {}
    assert list(iter_udp_payloads(path, counts)) == want
    assert counts == {}
    more, _ = pcap_file([eth(ipv4(udp(b"\x00\x0anext")))])
    path.write_bytes(data + more[HEAD:])
    assert list(iter_udp_payloads(path, counts)) == [*want, (SRC4, b"\x00\x0anext", HEAD + MIB)]
    assert counts == {}
    for cut in (1, 15):
        path.write_bytes(data + bytes(cut))
        counts = {}
        assert list(iter_udp_payloads(path, counts)) == want
        assert counts == {"cut_short_at": HEAD + MIB}


def test_pcap_corrupt_record_header_ending_a_read(tmp_path: Path) -> None:
    # 1 MiB - 16 octets of records, then a record header of length 262145 (above
    # max(65535, 262144)) that ends the first read: it is corrupt from its 16 octets, and
    # nothing after it is read (the broken trailer 100 octets on is never reached)
    frames = records_of(MIB - 16)
    data, offs = pcap_file(frames)
    path = tmp_path / "x.pcap.gz"
    broken_gzip(path, data + struct.pack("<IIII", 0, 0, 262145, 262145) + bytes(100))
    counts: dict[str, int] = {}
    got = list(iter_udp_payloads(path, counts))
    assert got == [(SRC4, f[42:], o) for f, o in zip(frames, offs, strict=True)]
    assert counts == {"corrupt_at": HEAD + MIB - 16}
