"""The service-port mask against its documented meaning, port by port.

flows/ports.py: service ports are the well-known ports 1..``below``-1 plus the ports
passed in (single ports or inclusive ranges); port 0 never is.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from flowaudit.flows.ports import WELL_KNOWN_BELOW, service_port_mask

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
    mask = service_port_mask(ports, below)
    assert mask.shape == (65536,)
    assert {int(p) for p in mask.nonzero()[0]} == want
