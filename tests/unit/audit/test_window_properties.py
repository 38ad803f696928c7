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

N5, N6 = "10.25.233.5", "10.25.233.6"
SECOND = st.integers(0, 6)
BOUND = st.one_of(st.none(), SECOND)


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return load_matrix(groups={"admin_workstations": ["10.25.100.0/24"]})


def at(s: int | None) -> dt.datetime | None:
    return None if s is None else T0 + dt.timedelta(seconds=s)


# a third of the profile's examples: each one runs the audit twice over
@settings(max_examples=max(10, settings.default.max_examples // 3))
@given(spans=st.lists(st.tuples(SECOND, SECOND), min_size=1, max_size=6), since=BOUND,
       until=BOUND)  # fmt: skip
@example(spans=[(0, 2), (4, 4)], since=2, until=4)  # ends at since: in; starts at until: out
def test_window_keeps_exactly_the_documented_flows(
    matrix: Matrix, spans: list[tuple[int, int]], since: int | None, until: int | None
) -> None:
    if since is not None and until is not None and since >= until:
        return  # refused before the audit runs (UsageError)
    rows = []
    for i, (a, b) in enumerate(spans):  # one finding per flow: port 3000 + i is not approved
        first, last = min(a, b), max(a, b)
        rows.append(flow(N5, N6, 3000 + i, t=float(first), dur=float(last - first)))
    want = {
        3000 + i
        for i, (a, b) in enumerate(spans)
        if (since is None or max(a, b) >= since) and (until is None or min(a, b) < until)
    }
    table = make_flows(rows)
    result = run_audit(matrix, table, since=at(since), until=at(until))
    found = result.violations.to_pylist()
    assert {v["dst_port"] for v in found} == want
    assert result.flows == len(want)
    per_finding = finding_flows(table, matrix, found, at(since), at(until))
    assert [[f["dst_port"] for f in flows] for flows in per_finding] == [
        [v["dst_port"]] for v in found
    ]
