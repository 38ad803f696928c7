"""Time helpers: µs since the epoch (as the flow schema stores times), UTC, ISO-8601 text."""

from __future__ import annotations

import datetime as dt

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


def to_us(t: dt.datetime) -> int:
    """A datetime → µs since the epoch; a naive one is taken to be UTC."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return (t - EPOCH) // _US


def as_utc(t: dt.datetime | None) -> dt.datetime | None:
    """A time as UTC; naive times are taken to be UTC already."""
    if t is None:
        return None
    if t.tzinfo is None:
        return t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC)


def iso(t: dt.datetime | None) -> str | None:
    """ISO-8601 in UTC with a ``Z`` (the reports' time format); None stays None."""
    if t is None:
        return None
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def iso_us(us: int | None) -> str | None:
    """µs since the epoch → ISO-8601 UTC ``Z`` text; None stays None."""
    if us is None:
        return None
    return iso(EPOCH + dt.timedelta(microseconds=us))


__all__ = ["EPOCH", "as_utc", "iso", "iso_us", "to_us"]
