"""Byte-order helpers of the reader kernels: 16/32/64-bit integers out of a ``uint8`` buffer."""

from __future__ import annotations

import numpy as np

from flowaudit.kernels.jit import jit_any as njit


@njit
def _u16(buf, p, big):  # type: ignore[no-untyped-def]
    if big:
        return (np.uint32(buf[p]) << 8) | np.uint32(buf[p + 1])
    return (np.uint32(buf[p + 1]) << 8) | np.uint32(buf[p])


@njit
def _u32(buf, p, big):  # type: ignore[no-untyped-def]
    if big:
        return (
            (np.uint32(buf[p]) << 24)
            | (np.uint32(buf[p + 1]) << 16)
            | (np.uint32(buf[p + 2]) << 8)
            | np.uint32(buf[p + 3])
        )
    return (
        (np.uint32(buf[p + 3]) << 24)
        | (np.uint32(buf[p + 2]) << 16)
        | (np.uint32(buf[p + 1]) << 8)
        | np.uint32(buf[p])
    )


@njit
def _be64(buf, p):  # type: ignore[no-untyped-def]
    v = np.uint64(0)
    for k in range(8):
        v = (v << np.uint64(8)) | np.uint64(buf[p + k])
    return v
