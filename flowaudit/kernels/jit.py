"""The one numba decorator of the flow-table kernels (JIT fallback of ``flowaudit.kernels.build``).

``jit`` is ``numba.njit(cache=True, nogil=True)``: compiled once per machine into
``__pycache__``, and the GIL is released while a kernel runs so the capture's sha256
keeps hashing on the other core. ``mix`` is the 64-bit hash step both tables use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def jit(fn: F) -> F:
    return cast(F, numba.njit(cache=True, nogil=True)(fn))


def jit_any(fn: Callable[..., Any]) -> Any:
    """``jit`` for the untyped reader kernels (their dispatchers are typed ``Any``)."""
    return jit(fn)


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


@jit
def mix(h: np.uint64, v: np.uint64) -> np.uint64:
    z = (h ^ v) + _GOLD
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))
