"""Community ID v1 against a plain statement of the spec written for this test: the corners
the Zeek baselines do not reach (found by mutation testing, tests/MUTATION.md): one address
on both ends, IPv6 addresses that differ only in their upper half, a lone ICMP echo reply,
an empty batch."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import struct

import numpy as np
import pytest

from flowaudit.flows.community_id import community_id, community_ids

# the spec's ICMP/ICMPv6 counterpart types (corelight/community-id-spec)
ICMP4 = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17, 10: 9, 9: 10}
ICMP6 = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130,
         144: 145, 145: 144}  # fmt: skip


def spec(src: str, sport: int, dst: str, dport: int, proto: int, seed: int = 0) -> str:
    s, d = ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed
    one_way = False
    if proto in (1, 58):
        table = ICMP4 if proto == 1 else ICMP6
        if sport in table:
            dport = table[sport]
        else:
            one_way = True  # port stays the code
    if not one_way and (s, sport) > (d, dport):
        s, d, sport, dport = d, s, dport, sport
    data = struct.pack("!H", seed) + s + d + struct.pack("!BB", proto, 0)
    if proto in (1, 6, 17, 58, 132):
        data += struct.pack("!HH", sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()


CASES = [
    ("127.0.0.1", 40000, "127.0.0.1", 80, 6),  # one address, ports decide the order
    ("127.0.0.1", 80, "127.0.0.1", 40000, 6),
    ("::1", 5353, "::1", 53, 17),
    ("2001:db8::1", 5000, "2001:db9::1", 443, 6),  # equal lower halves
    ("2001:db9::1", 443, "2001:db8::1", 5000, 6),
    ("10.0.0.2", 0, "10.0.0.1", 0, 1),  # an echo reply seen alone
    ("fe80::2", 129, "fe80::1", 0, 58),  # an ICMPv6 echo reply seen alone
    ("10.0.0.1", 3, "10.0.0.2", 1, 1),  # host unreachable: one way, ports are type/code
    ("10.0.0.1", 8, "10.0.0.2", 5, 1),  # an echo request with an odd code: mapped to 8/0
    ("10.0.0.1", 2905, "10.0.0.2", 38412, 132),  # SCTP: a protocol number above 127
    ("10.25.233.4", 0, "10.25.233.5", 0, 47),  # GRE: no ports, 12 bytes hashed
    ("2001:db8::2", 0, "2001:db8::1", 0, 50),  # ESP over IPv6: no ports, 36 bytes
]


def _halves(addr: str) -> tuple[int, int, int]:
    ip = ipaddress.ip_address(addr)
    v = int(ip) if ip.version == 6 else (0xFFFF << 32) | int(ip)
    return v >> 64, v & ((1 << 64) - 1), ip.version


@pytest.mark.parametrize("seed", [0, 40000])  # the spec's seed is an unsigned 16-bit number
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}:{c[1]}-{c[2]}:{c[3]}/{c[4]}")
def test_scalar_and_bulk_equal_the_spec(case: tuple[str, int, str, int, int], seed: int) -> None:
    src, sp, dst, dp, proto = case
    want = spec(src, sp, dst, dp, proto, seed)
    assert community_id(src, dst, proto, sp, dp, seed=seed) == want
    a, b = ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed
    assert community_id(a, b, proto, sp, dp, seed=seed) == want  # addresses as bytes
    s, d = _halves(src), _halves(dst)
    got = community_ids(
        np.array([s[2]]), np.array([s[0]], np.uint64), np.array([s[1]], np.uint64),
        np.array([d[0]], np.uint64), np.array([d[1]], np.uint64), np.array([proto]),
        np.array([sp]), np.array([dp]), seed=seed,
    )  # fmt: skip
    assert got.to_pylist() == [want]


def test_bad_addresses_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="different families"):
        community_id("10.0.0.1", "::1", 6, 1, 2)
    with pytest.raises(ValueError, match="address must be 4 or 16 bytes, got 5"):
        community_id(b"\x0a\x00\x00\x00\x01", b"\x0a\x00\x00\x02", 6, 1, 2)


def test_an_empty_batch_is_an_empty_string_array() -> None:
    z = np.zeros(0, np.uint64)
    got = community_ids(np.zeros(0, np.int8), z, z, z, z, np.zeros(0, np.uint8), z, z)
    assert len(got) == 0 and str(got.type) == "string"
