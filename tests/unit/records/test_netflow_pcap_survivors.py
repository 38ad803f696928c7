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
from pathlib import Path

import pytest
from test_netflow_pcap_edges import SRC4, eth, ipv4, pcap_file, udp

from flowaudit.errors import CaptureError
from flowaudit.records.netflow.pcap import iter_udp_payloads

MIB = 1 << 20  # the reader's read size
HEAD = 24  # the libpcap file header


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
