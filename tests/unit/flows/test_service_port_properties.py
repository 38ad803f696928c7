"""The service-port mask against its documented meaning, port by port.

flows/ports.py: level 2 for Zeek's likely server ports, level 1 for the well-known ports
1..``below``-1 plus the ports passed in (single ports or inclusive ranges), 0 for the rest;
port 0 never is a service port unless passed in.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from flowaudit.flows.ports import LIKELY_SERVER_PORTS, WELL_KNOWN_BELOW, service_port_mask

PORT = st.one_of(st.integers(0, 1100), st.integers(65500, 65535))
ITEM = st.one_of(PORT, st.tuples(PORT, PORT).map(lambda t: (min(t), max(t))))


@given(ports=st.lists(ITEM, max_size=5), below=st.sampled_from([WELL_KNOWN_BELOW, 1, 100]))
@example(ports=[2380, (2379, 2379), (65535, 65535)], below=WELL_KNOWN_BELOW)
@example(ports=[], below=WELL_KNOWN_BELOW)  # 1 and 1023 are, 0 and 1024 are not
def test_mask_holds_exactly_the_service_ports(
    ports: list[int | tuple[int, int]], below: int
) -> None:
    ranges = [(p, p) if isinstance(p, int) else p for p in ports]
    want = {p for p in range(1, below)} | {p for lo, hi in ranges for p in range(lo, hi + 1)}
    likely = {
        p
        for x in LIKELY_SERVER_PORTS
        for p in ([x] if isinstance(x, int) else range(x[0], x[1] + 1))
    }
    mask = service_port_mask(ports, below)
    assert mask.shape == (65536,)
    assert {int(p) for p in (mask == 2).nonzero()[0]} == likely
    assert {int(p) for p in (mask == 1).nonzero()[0]} == want - likely
