"""Times as the flow schema stores them: integer microseconds since the Unix epoch, UTC."""

from __future__ import annotations

import datetime as dt

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


def to_us(t: dt.datetime) -> int:
    """A datetime → µs since the epoch; a naive one is taken to be UTC."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return (t - EPOCH) // _US
