"""Query and report values as JSON and as text: the one conversion every output shares.

DuckDB hands results over as Arrow; ``json_value`` turns each value into something strict
JSON can hold, and ``text_value`` gives the CSV/table cell of that same value:

- integers (UTINYINT..UBIGINT, BIGINT, ...) stay integers;
- HUGEINT and DECIMAL (``sum()`` over the unsigned counters, ``approx_quantile``, casts):
  an integer when the value is integral, else a decimal string with the type's scale
  (``1.50``), never a float and never exponent notation;
- DOUBLE/FLOAT: a number; NaN, Infinity and -Infinity become null (JSON has no such number);
- BOOLEAN: true/false; VARCHAR: the string;
- BLOB: lower-case hex (``src_addr`` is 16 bytes: 32 hex digits; ``src_ip`` is its text);
- TIMESTAMP WITH TIME ZONE: ISO-8601 in UTC with ``Z``, as the reports write times
  (``_util.time.iso``); TIMESTAMP without a zone, DATE and TIME: ISO-8601 as they are;
- INTERVAL: an ISO-8601 duration (``INTERVAL 90 SECOND`` → ``PT1M30S``; months as
  ``Y``/``M``, days as ``D``, the rest as ``H``/``M``/``S``; a negative part carries its
  sign, ``-P1D`` when all parts are negative);
- LIST/ARRAY → JSON array, STRUCT → JSON object, MAP → JSON object keyed by the keys'
  text form; their members converted the same way;
- NULL → null (an empty CSV/table cell).

``text_value`` of a scalar is its JSON text without quotes (``true``, ``1.50``,
``PT1M30S``); of a list, struct or map the compact JSON. ``dumps`` writes strict JSON:
it converts whatever the layer knows and refuses NaN rather than writing it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

import pyarrow as pa

from flowaudit._util.time import iso

_NS_PER_H = 3_600_000_000_000
_NS_PER_M = 60_000_000_000
_NS_PER_S = 1_000_000_000


def decimal_value(d: Decimal) -> int | str:
    """An integral decimal as an int, else its plain decimal text (scale kept: ``1.50``)."""
    if d.is_finite() and d == d.to_integral_value():
        return int(d)
    return format(d, "f")


def iso_duration(months: int, days: int, nanoseconds: int) -> str:
    """An interval's (months, days, nanoseconds), as DuckDB keeps them, in ISO-8601."""
    if months == days == nanoseconds == 0:
        return "PT0S"
    sign = ""
    if months <= 0 and days <= 0 and nanoseconds <= 0:
        sign, months, days, nanoseconds = "-", -months, -days, -nanoseconds

    y, m = divmod(abs(months), 12)
    neg_m = "-" if months < 0 else ""
    date = (f"{neg_m}{y}Y" if y else "") + (f"{neg_m}{m}M" if m else "")
    date += f"{days}D" if days else ""
    ns, neg_t = abs(nanoseconds), "-" if nanoseconds < 0 else ""
    h, ns = divmod(ns, _NS_PER_H)
    mi, ns = divmod(ns, _NS_PER_M)
    s, frac = divmod(ns, _NS_PER_S)
    sec = f"{s}.{frac:09d}".rstrip("0") if frac else (str(s) if s else "")
    time = (f"{neg_t}{h}H" if h else "") + (f"{neg_t}{mi}M" if mi else "")
    time += f"{neg_t}{sec}S" if sec else ""
    return f"{sign}P{date}" + (f"T{time}" if time else "")


def _scalar(v: Any) -> Any:
    """A Python value as Arrow's ``to_pylist`` gives it → a JSON-safe value."""
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, Decimal):
        return decimal_value(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v).hex()
    if isinstance(v, dt.datetime):
        return iso(v) if v.tzinfo is not None else v.isoformat()
    if isinstance(v, dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        us = (v.days * 86_400 + v.seconds) * 1_000_000 + v.microseconds
        return iso_duration(0, 0, us * 1000)
    if isinstance(v, pa.MonthDayNano):
        return iso_duration(v.months, v.days, v.nanoseconds)
    if isinstance(v, dict):
        return {str(k): _scalar(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_scalar(x) for x in v]
    return str(v)


def json_value(v: Any, typ: pa.DataType | None = None) -> Any:
    """``v`` (from ``to_pylist``) as a JSON-safe value; ``typ``, its Arrow type, tells a MAP
    (a list of key/value pairs in Python) from a list, and types nested members."""
    if v is None or typ is None:
        return _scalar(v)
    if pa.types.is_map(typ):
        return {text_value(json_value(k, typ.key_type)): json_value(x, typ.item_type) for k, x in v}
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        return [json_value(x, typ.value_type) for x in v]
    if pa.types.is_struct(typ):
        return {f.name: json_value(v.get(f.name), f.type) for f in typ}
    return _scalar(v)


def text_value(v: Any) -> str:
    """A JSON-safe value as a CSV/table cell: scalars bare, nested values as compact JSON."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"), allow_nan=False)


def column_values(table: pa.Table) -> list[list[Any]]:
    """Each column of ``table`` as JSON-safe values (tz-aware timestamps read without
    pyarrow's tz conversion, which imports pandas)."""
    out: list[list[Any]] = []
    for field, col in zip(table.schema, table.columns, strict=True):
        typ = field.type
        if pa.types.is_timestamp(typ) and typ.tz is not None:
            naive = col.cast(pa.timestamp(typ.unit)).to_pylist()
            out.append([None if t is None else iso(t.replace(tzinfo=dt.UTC)) for t in naive])
            continue
        out.append([json_value(v, typ) for v in col.to_pylist()])
    return out


def table_rows(table: pa.Table) -> list[list[Any]]:
    """The rows of ``table``, each a list of JSON-safe values in column order."""
    cols = column_values(table)
    return [list(r) for r in zip(*cols, strict=True)] if cols else []


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """Strict JSON text of ``obj``; values the layer knows (Decimal, bytes, times, ...) are
    converted, NaN/Infinity become null."""
    return json.dumps(_deep(obj), indent=indent, allow_nan=False)


def _deep(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _deep(x) for k, x in v.items()}
    if isinstance(v, list | tuple) and not isinstance(v, pa.MonthDayNano):
        return [_deep(x) for x in v]
    return _scalar(v)


__all__ = [
    "column_values",
    "decimal_value",
    "dumps",
    "iso_duration",
    "json_value",
    "table_rows",
    "text_value",
]
