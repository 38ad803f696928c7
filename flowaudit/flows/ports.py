"""Service ports: which side of a flow is the server when no SYN says so.

A flow without a SYN (mid-stream TCP, UDP, SCTP) is oriented by its ports: the side
whose port is a service port is the responder. Service ports are the well-known ports
(1..1023) plus the ports the loaded matrix approves, **passed in by the caller**
(``Matrix.service_ports``): no deployment's ports are written here, so another site's
captures are oriented by its own matrix.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

#: ports below this are service ports whatever the matrix says (IANA well-known)
WELL_KNOWN_BELOW = 1024


def service_port_mask(
    ports: Iterable[int | tuple[int, int]], below: int = WELL_KNOWN_BELOW
) -> npt.NDArray[np.bool_]:
    """bool[65536]: True for ports a server listens on (1..``below``-1 and ``ports``).

    Port 0 is not a service port (it is reserved; tunnels and broken stacks send from it).
    """
    mask = np.zeros(65536, dtype=np.bool_)
    mask[1:below] = True
    for p in ports:
        lo, hi = (p, p) if isinstance(p, int) else p
        mask[lo : hi + 1] = True
    return mask


__all__ = ["WELL_KNOWN_BELOW", "service_port_mask"]
