"""Which UDP ports carry tunnels, for both engines.

VXLAN is recognised on UDP destination ports 4789 (IANA) and 8472 (Linux's and Cilium's
default) and any port added with ``--vxlan-port``; Geneve on 6081; GRE (IP protocol 47)
always. ``port_table`` is the fast reader's lookup table (kernels/tunnel), ``decode_as``
the tshark ``-d`` rules that make tshark open the same ports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from flowaudit.kernels.layout import TUN_GENEVE, TUN_VXLAN

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

VXLAN_PORTS = (4789, 8472)
GENEVE_PORTS = (6081,)


def vxlan_ports(extra: Sequence[int] = ()) -> tuple[int, ...]:
    """The default VXLAN ports plus ``extra`` (each 1..65535), sorted, no duplicates."""
    for p in extra:
        if not 0 < int(p) < 65536:
            raise ValueError(f"VXLAN port {p} is not a UDP port (1..65535)")
    return tuple(sorted({*VXLAN_PORTS, *(int(p) for p in extra)}))


def port_table(vxlan: Sequence[int] = VXLAN_PORTS) -> npt.NDArray[np.uint8]:
    """uint8[65536]: TUN_VXLAN / TUN_GENEVE by UDP destination port, 0 elsewhere."""
    import numpy as np

    t = np.zeros(65536, dtype=np.uint8)
    t[list(GENEVE_PORTS)] = TUN_GENEVE
    t[list(vxlan)] = TUN_VXLAN
    return t


def decode_as(vxlan: Sequence[int] = VXLAN_PORTS) -> list[str]:
    """tshark ``-d`` rules for the VXLAN ports tshark does not open by itself."""
    return [f"udp.port=={p},vxlan" for p in vxlan if p != 4789]


__all__ = ["GENEVE_PORTS", "VXLAN_PORTS", "decode_as", "port_table", "vxlan_ports"]
