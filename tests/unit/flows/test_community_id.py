"""Community ID v1 against Zeek's baselines (every row of the five communityid-*.pcap.out).

Zeek's ``bifs.community_id.run-pcaps`` baseline prints, per connection of five real
captures, the oriented tuple and its Community ID (seed 0). We check the hash of each
tuple, the order independence the spec promises (except ICMP one-way types), the bulk
function, and that the flow builder produces exactly those tuples and ids from the pcaps.
"""

from __future__ import annotations

import ipaddress
import re

import numpy as np
import pyarrow as pa
import pytest
from testpaths import DATA as TEST_DATA

from flowaudit.flows.builder import FlowBuilder
from flowaudit.flows.community_id import community_id, community_ids, icmp_ports
from flowaudit.packets.pcap import iter_packets

DATA = TEST_DATA / "flows"
KINDS = ("icmp", "icmp6", "ipv6", "tcp", "udp")
ROW = re.compile(
    r"orig_h=([^,]+), orig_p=(\d+)/\w+, resp_h=([^,]+), resp_p=(\d+)/\w+, proto=(\d+).*\], (\S+)"
)

Row = tuple[str, int, str, int, int, str]


def baseline(kind: str) -> list[Row]:
    rows: list[Row] = []
    for line in (DATA / f"communityid-{kind}.pcap.out").read_text().splitlines():
        m = ROW.search(line)
        if m:
            oh, op, rh, rp, proto, cid = m.groups()
            rows.append((oh, int(op), rh, int(rp), int(proto), cid))
    return rows


ALL_ROWS = [r for k in KINDS for r in baseline(k)]


def test_baselines_hold_all_eighteen_rows() -> None:
    assert [len(baseline(k)) for k in KINDS] == [1, 14, 1, 1, 1]


@pytest.mark.parametrize("row", ALL_ROWS, ids=[f"{r[0]}-{r[1]}-{r[3]}" for r in ALL_ROWS])
def test_community_id_matches_zeek(row: Row) -> None:
    oh, op, rh, rp, proto, expected = row
    assert community_id(oh, rh, proto, op, rp) == expected


@pytest.mark.parametrize("row", ALL_ROWS, ids=[f"{r[0]}-{r[1]}-{r[3]}" for r in ALL_ROWS])
def test_order_independent_except_icmp_one_way(row: Row) -> None:
    oh, op, rh, rp, proto, expected = row
    swapped = community_id(rh, oh, proto, rp, op)
    one_way = proto in (1, 58) and icmp_ports(proto, op, rp)[2]
    assert (swapped == expected) is (not one_way)


def test_one_way_types_are_the_five_unreachable_rows() -> None:
    one_way = [r for r in ALL_ROWS if r[4] in (1, 58) and icmp_ports(r[4], r[1], r[3])[2]]
    assert sorted((r[1], r[3]) for r in one_way) == [(1, 4), (1, 4), (3, 0), (3, 0), (3, 0)]


def test_icmp_mapping_is_idempotent() -> None:
    # the builder emits already-mapped ports (8/0, 128/129); mapping them again is a no-op
    assert icmp_ports(1, 8, 0) == (8, 0, False)
    assert icmp_ports(1, 0, 0) == (0, 8, False)
    assert icmp_ports(58, 135, 0) == (135, 136, False)
    assert icmp_ports(58, 135, 136) == (135, 136, False)
    assert icmp_ports(1, 3, 1) == (3, 1, True)


def test_protocol_without_ports_ignores_ports() -> None:
    a = community_id("10.0.0.1", "10.0.0.2", 47)
    assert a == community_id("10.0.0.2", "10.0.0.1", 47, 5, 6)
    assert a.startswith("1:") and len(a) == 30


def _split(addr: str) -> tuple[int, int, int]:
    ip = ipaddress.ip_address(addr)
    v = int(ip) if ip.version == 6 else (0xFFFF << 32) | int(ip)
    return v >> 64, v & ((1 << 64) - 1), ip.version


def test_bulk_equals_scalar_for_every_row() -> None:
    s = [_split(r[0]) for r in ALL_ROWS]
    d = [_split(r[2]) for r in ALL_ROWS]
    ids = community_ids(
        np.array([x[2] for x in s]),
        np.array([x[0] for x in s], dtype=np.uint64),
        np.array([x[1] for x in s], dtype=np.uint64),
        np.array([x[0] for x in d], dtype=np.uint64),
        np.array([x[1] for x in d], dtype=np.uint64),
        np.array([r[4] for r in ALL_ROWS]),
        np.array([r[1] for r in ALL_ROWS]),
        np.array([r[3] for r in ALL_ROWS]),
    )
    assert ids.to_pylist() == [r[5] for r in ALL_ROWS]


@pytest.mark.parametrize("kind", KINDS)
def test_flow_builder_reproduces_zeek_tuples_and_ids(kind: str) -> None:
    fb = FlowBuilder("c", "pcap")
    tables = [fb.add(b) for b in iter_packets(DATA / f"zeek-communityid-{kind}.pcap")]
    flows = pa.concat_tables([*tables, fb.finish()]).to_pylist()
    got = sorted(
        (f["src_ip"], f["src_port"], f["dst_ip"], f["dst_port"], f["protocol"], f["flow_id"])
        for f in flows
    )
    assert got == sorted(baseline(kind))


def test_compiled_ids_equal_hashlib_on_random_tuples() -> None:
    """The compiled pass (order, pack, SHA-1, base64) gives, row by row, what the scalar
    ``community_id`` (struct + hashlib) gives: both families, every protocol kind, random
    ports and ICMP types, addresses that tie on the high half or entirely."""
    import numpy as np

    rng = np.random.default_rng(7)
    n = 4000
    ipv = np.where(rng.random(n) < 0.5, 4, 6).astype(np.int8)
    hi = rng.integers(0, 1 << 63, (2, n), dtype=np.uint64)
    lo = rng.integers(0, 1 << 63, (2, n), dtype=np.uint64) | (rng.random((2, n)) < 0.5).astype(
        np.uint64
    ) << np.uint64(63)
    hi[1, ::7] = hi[0, ::7]  # ties on the high half
    lo[1, ::14] = lo[0, ::14]  # and on the whole address
    v4 = ipv == 4
    hi[:, v4] = 0
    lo[:, v4] = (np.uint64(0xFFFF) << np.uint64(32)) | (lo[:, v4] & np.uint64(0xFFFFFFFF))
    proto = rng.choice(np.array([1, 6, 17, 58, 132, 47, 50, 0, 255]), n).astype(np.uint8)
    sp = rng.integers(0, 65536, n)
    dp = rng.integers(0, 65536, n)
    icmp = (proto == 1) | (proto == 58)
    sp[icmp] = rng.integers(0, 256, int(icmp.sum()))
    dp[icmp] = rng.integers(0, 256, int(icmp.sum()))
    ids = community_ids(ipv, hi[0], lo[0], hi[1], lo[1], proto, sp, dp)

    def addr(r: int, side: int) -> bytes:
        v = (int(hi[side, r]) << 64) | int(lo[side, r])
        return v.to_bytes(16, "big")[-4:] if v4[r] else v.to_bytes(16, "big")

    want = [
        community_id(addr(r, 0), addr(r, 1), int(proto[r]), int(sp[r]), int(dp[r]))
        for r in range(n)
    ]
    assert ids.to_pylist() == want
