"""Time helpers: µs since the epoch (as the flow schema stores times), UTC, ISO-8601 text."""

from __future__ import annotations

import datetime as dt

from flowaudit.errors import UsageError

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: the times a flow may have, as µs since the epoch: 1970-01-01 up to (not including)
#: 2262-01-01, so every stored time converts to Python, Parquet and pandas (ns) alike; a
#: record outside is skipped by its reader and counted, never stored
TIME_MIN_US = 0
TIME_MAX_US = 9_214_646_400_000_000
_US = dt.timedelta(microseconds=1)


def to_us(t: dt.datetime) -> int:
    """A datetime → µs since the epoch; a naive one is taken to be UTC."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return (t - EPOCH) // _US


def as_utc(t: dt.datetime | None) -> dt.datetime | None:
    """A time as UTC; naive times are taken to be UTC already. UsageError when the time
    has no UTC equivalent a datetime can hold (0001-01-01T00:00+14:00)."""
    if t is None:
        return None
    if t.tzinfo is None:
        return t.replace(tzinfo=dt.UTC)
    try:
        return t.astimezone(dt.UTC)
    except OverflowError:
        raise UsageError(f"{t.isoformat()} is outside the years 1..9999 in UTC") from None


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


__all__ = ["EPOCH", "TIME_MAX_US", "TIME_MIN_US", "as_utc", "iso", "iso_us", "to_us"]
