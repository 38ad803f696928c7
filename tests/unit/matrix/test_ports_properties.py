"""Port ranges against set-based oracles: ``port_complement``, ``merge_ranges``, and
``parse_port_range`` against the port space 0-65535.

The oracles below enumerate ports one by one (plain sets, no range arithmetic), so a
bug in a boundary (a range's top port, an adjacent range, a single-port range) shows
as a difference in the exact output, not only in set membership.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from flowaudit.matrix.model import merge_ranges, parse_port_range, port_complement

# ports near the edges and a small band in the middle, so ranges touch and overlap often
PORT = st.one_of(st.integers(0, 40), st.integers(2370, 2400), st.integers(65500, 65535))


@st.composite
def port_range(draw: st.DrawFn) -> tuple[int, int]:
    a, b = draw(PORT), draw(PORT)
    return (min(a, b), max(a, b))


RANGES = st.lists(port_range(), max_size=6)


def runs(ports: list[int]) -> list[tuple[int, int]]:
    """Sorted distinct ports → maximal runs of consecutive ports."""
    out: list[tuple[int, int]] = []
    for p in ports:
        if out and p == out[-1][1] + 1:
            out[-1] = (out[-1][0], p)
        else:
            out.append((p, p))
    return out


def complement_oracle(ranges: list[tuple[int, int]], used: set[int]) -> list[tuple[int, int]]:
    """Per input range, in input order: the maximal runs of its ports not in ``used``."""
    out: list[tuple[int, int]] = []
    for lo, hi in ranges:
        out.extend(runs(sorted(set(range(lo, hi + 1)) - used)))
    return out


@given(ranges=RANGES, used=st.sets(PORT, max_size=30))
@example(ranges=[(2379, 2380)], used={2380})  # a used top port is not unused
@example(ranges=[(2379, 2380)], used={2379})  # a used bottom port
@example(ranges=[(443, 443)], used={443})  # a single-port range fully used
@example(ranges=[(65534, 65535)], used={65534})  # the last port of the port space
@example(ranges=[(0, 3)], used={1})  # a hole in the middle
def test_port_complement_equals_set_oracle(ranges: list[tuple[int, int]], used: set[int]) -> None:
    got = port_complement(ranges, used)
    assert got == complement_oracle(ranges, used)
    for lo, hi in got:  # well-formed, and no used port inside any unused range
        assert lo <= hi
        assert not used & set(range(lo, hi + 1))


@given(ranges=RANGES, used=st.sets(PORT, max_size=30))
def test_port_complement_is_empty_or_whole(ranges: list[tuple[int, int]], used: set[int]) -> None:
    every = {p for lo, hi in ranges for p in range(lo, hi + 1)}
    assert port_complement(ranges, every) == []
    merged = list(merge_ranges(ranges))
    assert port_complement(merged, set()) == merged


@given(ranges=RANGES)
@example(ranges=[(1, 2), (3, 4)])  # adjacent ranges merge
@example(ranges=[(1, 5), (2, 3)])  # a range inside another
@example(ranges=[(5, 5), (1, 1), (3, 3)])  # unsorted, with gaps
def test_merge_ranges_equals_set_oracle(ranges: list[tuple[int, int]]) -> None:
    every = sorted({p for lo, hi in ranges for p in range(lo, hi + 1)})
    assert merge_ranges(ranges) == tuple(runs(every))


@given(lo=st.integers(-2, 65537), hi=st.integers(-2, 65537), form=st.sampled_from(["int", "str"]))
@example(lo=443, hi=443, form="str")  # "443-443": a one-port range, lo == hi
@example(lo=70000, hi=-2, form="str")  # two bad parts: the first one is reported
@example(lo=0, hi=0, form="int")  # port 0 and 65535 are ports
@example(lo=65535, hi=65535, form="int")
def test_parse_port_range_accepts_exactly_the_port_space(lo: int, hi: int, form: str) -> None:
    if form == "int":
        if 0 <= lo <= 65535:
            assert parse_port_range(lo) == (lo, lo)
        else:
            with pytest.raises(ValueError, match=rf"^port {lo} outside 0-65535$"):
                parse_port_range(lo)
        return
    text = f"{lo}-{hi}" if lo != hi or lo % 2 else str(lo)  # both spellings of one port
    # the first bad part, left to right, is the one reported
    if lo < 0:  # "-1-5": no number where the first port should be
        with pytest.raises(ValueError, match=rf"^bad port '{text}'$"):
            parse_port_range(text)
    elif lo > 65535:
        with pytest.raises(ValueError, match=rf"^port {lo} outside 0-65535$"):
            parse_port_range(text)
    elif hi < 0:
        with pytest.raises(ValueError, match=rf"^bad port '{text}'$"):
            parse_port_range(text)
    elif hi > 65535:
        with pytest.raises(ValueError, match=rf"^port {hi} outside 0-65535$"):
            parse_port_range(text)
    elif lo > hi:
        with pytest.raises(ValueError, match=rf"^port range '{text}' has lo > hi$"):
            parse_port_range(text)
    else:
        assert parse_port_range(text) == (lo, hi)


@pytest.mark.parametrize(
    ("value", "message"),
    [(True, "bad port True"), ("80-x", "bad port '80-x'"), ("x", "bad port 'x'"),
     (1.5, "bad port 1.5 (use 443, '2379-2380' or a list of them)")],
)  # fmt: skip
def test_parse_port_range_names_the_bad_value(value: object, message: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_port_range(value)
    assert str(e.value) == message
