"""Dotted-quad text of IPv4 addresses (numba): the flow tables' address columns.

Responsible only for the IPv4 bytes of ``flowaudit._util.arrow.ip_text`` (its numpy
version builds a 4×4 cell per address and compacts it: ~8× slower at 30k rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flowaudit.kernels.jit import jit as _jit


@_jit
def ipv4_text(v4: Any, data: Any, lens: Any) -> int:
    """Write the dotted quads of ``v4`` (32-bit values) one after another into ``data``
    (room for 15 bytes a row), their lengths into ``lens``; return the bytes written."""
    pos = 0
    for r in range(len(v4)):
        v = v4[r]
        start = pos
        for k in range(4):
            o = (v >> np.uint64(24 - 8 * k)) & np.uint64(255)
            if o >= 100:
                data[pos] = 48 + o // 100
                pos += 1
            if o >= 10:
                data[pos] = 48 + (o // 10) % 10
                pos += 1
            data[pos] = 48 + o % 10
            pos += 1
            if k < 3:
                data[pos] = 46  # "."
                pos += 1
        lens[r] = pos - start
    return pos
