"""The audit window against its documented meaning, at whole-second boundaries.

`flowaudit audit --help`: ``--since`` "Only flows active at or after this time" (a flow
counts when its last packet is at or after it), ``--until`` "Only flows that started
before this time". Flow times and window bounds are drawn from a few seconds so that a
flow often ends exactly at ``since`` or starts exactly at ``until``. Checked through the
audit (``run_audit``) and through the evidence's per-finding flow query, which applies
the same window on its own (``finding_flows.sql``).
"""

from __future__ import annotations

import datetime as dt

import pytest
from flowrows import T0, flow, make_flows
from hypothesis import example, given, settings
from hypothesis import strategies as st

from flowaudit.audit.run import run_audit
from flowaudit.evidence.write import finding_flows
from flowaudit.matrix import Matrix, load_matrix

pytestmark = pytest.mark.slow

N4, N5, N6 = "10.25.233.4", "10.25.233.5", "10.25.233.6"
# the same hosts both ways, another initiator, another responder
PAIRS = [(N5, N6), (N6, N5), (N4, N6), (N5, N4)]
SECOND = st.integers(0, 6)
BOUND = st.one_of(st.none(), SECOND)


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return load_matrix(groups={"admin_workstations": ["10.25.100.0/24"]})


def at(s: int | None) -> dt.datetime | None:
    return None if s is None else T0 + dt.timedelta(seconds=s)


# a third of the profile's examples: each one runs the audit twice over
@settings(max_examples=max(10, settings.default.max_examples // 3))
@given(
    spans=st.lists(
        st.tuples(
            SECOND,
            SECOND,
            st.sampled_from([111, None]),
            st.sampled_from([6, 17, 47]),
            st.sampled_from([3000, 3001]),
            st.sampled_from(["syn", "first_packet"]),
            st.sampled_from([40000, 40001]),
            st.sampled_from(range(len(PAIRS))),
        ),
        min_size=1,
        max_size=6,
    ),
    since=BOUND,
    until=BOUND,
)
@example(
    spans=[(0, 2, 111, 6, 3000, "syn", 40000, 0), (4, 4, 111, 6, 3001, "syn", 40000, 0)],
    since=2,
    until=4,
)  # ends at since: in; starts at until: out
@example(
    spans=[(0, 1, 111, 47, 0, "syn", 0, 0), (4, 5, 111, 47, 0, "syn", 0, 0)], since=None, until=4
)  # one finding: its flow that starts at until is not its
@example(
    spans=[(0, 2, 111, 47, 0, "syn", 0, 0), (3, 5, 111, 47, 0, "syn", 0, 0)], since=2, until=None
)  # one finding: its flow that ends at since is its
@example(
    spans=[(0, 1, None, 47, 0, "syn", 0, 0), (1, 2, None, 47, 0, "syn", 0, 0)],
    since=None,
    until=None,
)  # untagged capture, no ports (GRE): NULL keys
@example(
    spans=[(0, 1, None, 6, 3000, "syn", 40000, 0), (0, 1, 111, 47, 0, "syn", 0, 0)],
    since=None,
    until=None,
)  # native VLAN
@example(
    spans=[
        (0, 1, 111, 6, 3000, "first_packet", 40000, 0),
        (0, 1, 111, 6, 3000, "first_packet", 40001, 0),
    ],
    since=None,
    until=None,
)  # one finding, two initiator ports (uncertain direction)
@example(
    spans=[(0, 1, 111, 6, 3000, "syn", 40000, p) for p in range(len(PAIRS))]
    + [(0, 1, 111, 17, 3000, "syn", 40000, 0)],
    since=None,
    until=None,
)  # same ports between other hosts, or under another protocol: other findings
@example(
    spans=[(0, 1, 111, 6, 80, "first_packet", 30003, 0)],
    since=None,
    until=None,
)  # from a service port (30003: a matrix port) to a well-known one, without a SYN: uncertain
@example(
    spans=[(0, 1, 111, 6, 3000, "syn", 40000, 0), (0, 1, 111, 6, 3001, "syn", 40000, 0)],
    since=None,
    until=None,
)  # the same hosts on two ports: two findings, each with its own flow
def test_window_keeps_exactly_the_documented_flows(
    matrix: Matrix,
    spans: list[tuple[int, int, int | None, int, int, str, int, int]],
    since: int | None,
    until: int | None,
) -> None:
    if since is not None and until is not None and since >= until:
        return  # refused before the audit runs (UsageError)
    rows = []
    want: dict[tuple[object, ...], list[tuple[object, ...]]] = {}
    for a, b, vlan, proto, dport, direction, sport, pair in spans:
        first, last = min(a, b), max(a, b)
        port = dport if proto in (6, 17) else None  # no rule approves 3000 or 3001
        src, dst = PAIRS[pair]
        rows.append(
            flow(src, dst, port, proto=proto, sport=sport if port else None, vlan=vlan,
                 t=float(first), dur=float(last - first), direction=direction)
        )  # fmt: skip
        if (since is None or last >= since) and (until is None or first < until):
            key = (vlan, src, dst, proto, port)
            want.setdefault(key, []).append((port, at(first), at(last)))
    table = make_flows(rows)
    result = run_audit(matrix, table, since=at(since), until=at(until))
    found = result.violations.to_pylist()
    keys = [(v["vlan_id"], v["src_ip"], v["dst_ip"], v["protocol"], v["dst_port"]) for v in found]
    assert sorted(keys, key=str) == sorted(want, key=str)
    assert result.flows == sum(len(x) for x in want.values())
    per_finding = finding_flows(table, matrix, found, at(since), at(until))
    for v, flows in zip(found, per_finding, strict=True):
        got = sorted((f["dst_port"], f["first_seen"], f["last_seen"]) for f in flows)
        assert got == sorted(want[(v["vlan_id"], v["src_ip"], v["dst_ip"], v["protocol"],
                                   v["dst_port"])])  # fmt: skip


def test_untagged_flows_of_a_tagged_and_an_untagged_capture_are_listed_once(
    matrix: Matrix,
) -> None:
    # capture A holds tagged frames, so its untagged flow is native VLAN; capture B holds
    # none, so its untagged flow is not: one finding, two conversations, two flows
    rows = [flow(N5, N6, 3000, vlan=111), flow(N5, N6, 3000, vlan=None, sport=40001),
            flow(N5, N6, 3000, vlan=None, sport=40002)]  # fmt: skip
    rows[2]["capture_id"] = "1" * 64
    table = make_flows(rows)
    found = run_audit(matrix, table).violations.to_pylist()
    untagged = [v for v in found if v["vlan_id"] is None]
    assert len(untagged) == 1 and untagged[0]["flows"] == 2
    (flows,) = finding_flows(table, matrix, untagged, None, None)
    assert sorted((f["src_port"], f["capture_id"][0]) for f in flows) == [
        (40001, "0"),
        (40002, "1"),
    ]
