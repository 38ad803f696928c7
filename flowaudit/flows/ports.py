"""Service ports: which side of a flow is the server when no SYN says so.

A flow without a SYN (mid-stream TCP, UDP, SCTP) is oriented by its ports, graded:

* level 2, **likely server ports**: the server ports Zeek's base protocol analyzers
  register (its ``likely_server_ports``: DNS 53, DHCP 67, NTP 123, SNMP 161, syslog 514,
  mDNS 5353 ...), so a DHCP reply 67 → 68 seen alone is oriented client → server;
* level 1, **service ports**: the well-known ports (1..1023) plus the ports the loaded
  matrix approves, **passed in by the caller** (``Matrix.service_ports``): no deployment's
  ports are written here, so another site's captures are oriented by its own matrix;
* level 0, every other port (port 0 included: tunnels and broken stacks send from it).

The side whose port has the higher level is the responder; equal levels leave it to the
first packet.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

#: ports below this are service ports whatever the matrix says (IANA well-known)
WELL_KNOWN_BELOW = 1024
#: Zeek's likely_server_ports: the server ports its base protocol analyzers register
#: (zeek/zeek @ a13de64f, scripts/base/protocols/*: ``ports`` or ``server_ports``), as
#: port numbers for every transport
LIKELY_SERVER_PORTS: tuple[int | tuple[int, int], ...] = (
    21, 22, 25, 53, 67, 79, 80, 81, 88, 123, 135, 137, 139, 143, 161, 162, 443, 445, 465,
    502, 514, 563, 585, 587, 614, 631, 636, 784, 853, 989, 990, 992, 993, 995, 1080, 1434,
    1812, 1883, 2811, 3128, 3306, 3389, 4011, 5060, 5222, 5223, 5269, 5353, 5355, 6379,
    (6666, 6669), 8000, 8080, 8888, 20000,
)  # fmt: skip


def service_port_mask(
    ports: Iterable[int | tuple[int, int]], below: int = WELL_KNOWN_BELOW
) -> npt.NDArray[np.uint8]:
    """uint8[65536]: each port's level (2 likely server, 1 service: 1..``below``-1 and
    ``ports``, 0 none). Port 0 is never a service port."""
    mask = np.zeros(65536, dtype=np.uint8)
    mask[1:below] = 1
    for level, ranges in ((1, ports), (2, LIKELY_SERVER_PORTS)):
        for p in ranges:
            lo, hi = (p, p) if isinstance(p, int) else p
            mask[lo : hi + 1] = np.maximum(mask[lo : hi + 1], level)
    return mask


__all__ = ["LIKELY_SERVER_PORTS", "WELL_KNOWN_BELOW", "service_port_mask"]
