"""Addresses, ranges and protocol names of the matrix model against ``ipaddress``.

The model maps IPv4 into IPv6 (``::ffff:a.b.c.d``) so one integer order covers both
families; the oracle here is the standard library's own parsing, per family.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from flowaudit.matrix.model import (
    addr_bytes,
    addr_text,
    parse_address,
    parse_protocol,
    protocol_name,
    range_text,
)

V4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
V6 = (
    st.integers(0, 2**128 - 1)
    .map(ipaddress.IPv6Address)
    .filter(
        lambda a: int(a) >> 32 != 0xFFFF  # IPv4-mapped: printed as IPv4 on purpose
    )
)


def as_int(a: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    return (0xFFFF << 32) | int(a) if a.version == 4 else int(a)


def shown(a: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The model prints an IPv4-mapped address (::ffff:a.b.c.d) as IPv4, by design."""
    if a.version == 6 and int(a) >> 32 == 0xFFFF:
        return str(ipaddress.IPv4Address(int(a) & 0xFFFFFFFF))
    return str(a)


@given(addr=st.one_of(V4, V6), prefix=st.integers(0, 128))
@example(addr=ipaddress.IPv6Address("2001:db8::"), prefix=32)
@example(addr=ipaddress.IPv4Address("10.25.233.0"), prefix=24)
@example(addr=ipaddress.IPv6Address("::"), prefix=80)  # ends inside ::ffff:0:0/96
def test_cidr_bounds_and_text(
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address, prefix: int
) -> None:
    net = ipaddress.ip_network(f"{addr}/{min(prefix, addr.max_prefixlen)}", strict=False)
    (lo, hi), text = parse_address(str(net))
    assert (lo, hi) == (as_int(net.network_address), as_int(net.broadcast_address))
    assert text == str(net)
    assert addr_text(lo) == shown(net.network_address)
    assert addr_bytes(lo) == (
        ipaddress.IPv6Address(lo).packed if net.version == 6 else b"\0" * 10 + b"\xff\xff"
        + net.network_address.packed
    )  # fmt: skip
    first, last = shown(net.network_address), shown(net.broadcast_address)
    assert range_text(lo, hi) == (first if lo == hi else f"{first}-{last}")


@given(a=st.one_of(V4, V6))
def test_address_range_text_round_trips(a: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    (lo, hi), text = parse_address(f"{a}-{a}")
    assert lo == hi == as_int(a)
    assert addr_text(lo) == str(a) and text == f"{a}-{a}"


@given(number=st.integers(0, 255))
@example(number=47)  # GRE: no name, shown as its number
def test_protocol_names_round_trip(number: int) -> None:
    name = protocol_name(number)
    iana = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}  # keywords
    assert name == iana.get(number, str(number))
    assert parse_protocol(name) == number


@given(value=st.integers(-3, 300))
@example(value=0)  # protocol 0 (HOPOPT) and 255 are protocol numbers
@example(value=255)
def test_parse_protocol_accepts_exactly_0_to_255(value: int) -> None:
    for v in (value, str(value)):
        if 0 <= value <= 255:
            assert parse_protocol(v) == value
        elif isinstance(v, int):
            with pytest.raises(ValueError, match=rf"^protocol number {value} outside 0-255$"):
                parse_protocol(v)
        else:
            with pytest.raises(ValueError):
                parse_protocol(v)


def test_parse_protocol_refuses_a_bool_by_name() -> None:
    with pytest.raises(ValueError, match=r"^unknown protocol True$"):
        parse_protocol(True)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("10.25.233.4/24",
         "bad address or CIDR '10.25.233.4/24': 10.25.233.4/24 has host bits set"),
        ("10.0.0.1-::1", "address range '10.0.0.1-::1' mixes IPv4 and IPv6"),
        ("10.0.0.9-10.0.0.1", "address range '10.0.0.9-10.0.0.1' has first > last"),
        ("10.0.0.1-x", "bad address range '10.0.0.1-x': 'x' does not appear to be an IPv4 or "
                       "IPv6 address"),
    ],
)  # fmt: skip
def test_parse_address_names_the_bad_spec(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_address(spec)
    assert str(e.value) == message


@given(a=st.one_of(V4, V6), b=st.one_of(V4, V6))
def test_address_ranges_need_one_family_and_order(
    a: ipaddress.IPv4Address | ipaddress.IPv6Address,
    b: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    if a.version != b.version or int(a) > int(b):
        with pytest.raises(ValueError):
            parse_address(f"{a}-{b}")
    else:
        assert parse_address(f"{a}-{b}")[0] == (as_int(a), as_int(b))
