"""Address text (numba): the flow tables' ``src_ip``/``dst_ip`` columns, row by row.

Responsible only for writing the bytes of ``flowaudit._util.arrow.ip_text``: each IPv4 row
as a dotted quad, each IPv6 row copied from a small table of the distinct IPv6 texts (RFC
5952, formatted once each by Python's ``ipaddress``). The numpy version compacts a 4×4 cell
per address and scatters the IPv6 rows into place: ~8× slower on IPv4 alone, ~15× when a
few IPv6 rows are mixed in (as in every batch of a real VLAN).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flowaudit.kernels.jit import jit as _jit


@_jit
def address_text(is4: Any, v4: Any, code6: Any, tab6: Any, len6: Any, data: Any, lens: Any) -> int:
    """Write each row's text one after another into ``data``, its length into ``lens``;
    return the bytes written. IPv4 rows (``is4``): the dotted quad of ``v4`` (32-bit
    values); other rows: ``tab6[code6[r], :len6[code6[r]]]``. ``data`` has room for
    ``max(15, tab6.shape[1])`` bytes a row."""
    pos = 0
    for r in range(len(is4)):
        start = pos
        if is4[r]:
            v = v4[r]
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
        else:
            c = code6[r]
            for j in range(len6[c]):
                data[pos] = tab6[c, j]
                pos += 1
        lens[r] = pos - start
    return pos
