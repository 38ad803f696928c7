"""JSON text of Arrow columns, computed column-wise: a report's long lists without a
Python object per row.

``json_texts(array)`` gives each value's JSON text exactly as ``values.dumps`` writes it
(``json.dumps`` with its default separators and ``ensure_ascii``): integers as decimal
text, booleans, ``null``, strings quoted (the few with a quote, a backslash, a control or
a non-ASCII character escaped by ``json.dumps`` itself), tz-aware timestamps as
``_util.time.iso`` writes them (``2026-11-20T08:00:00.077592Z``, no fraction on a whole
second), lists of those as ``[a, b]``. Any other type falls back to ``dumps`` per value.
``object_texts(table, spec)`` joins such columns into one JSON object per row, key order
as in ``spec``. A million violations encode in about a second, and a caller writes them
record batch by record batch, so the report never holds its whole text.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any, BinaryIO, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowaudit._util.arrow import bools, constant, int_values, ints, pylist, strings, text_array
from flowaudit.report.values import dumps

# printable ASCII without '"' and '\': such a string's JSON text is the string in quotes
_PLAIN = r"^[ !#-\[\]-~]*$"


@functools.cache
def lit(value: str | bool) -> pa.Scalar:
    """``value`` as an Arrow scalar, taken from an array built from buffers: converting a
    Python value (``pa.scalar``, or a plain str/bool passed to a compute function) imports
    pandas (~0.4 s, ~50 MB)."""
    if isinstance(value, bool):
        return bools(np.array([value]))[0]
    return constant(value, 1)[0]


#: a spec value: a column name, a nested object spec, or an array of JSON texts
Value = Union[str, "Spec", pa.Array, pa.ChunkedArray]
Spec = Sequence[tuple[str, Value]]


def _fallback(arr: pa.Array) -> pa.Array:
    """Each value's JSON text through ``dumps`` (types the fast paths do not cover)."""
    values = pylist(pa.table({"v": arr}))
    return text_array([dumps(r["v"]) for r in values])


# the bytes _PLAIN admits: printable ASCII but '"' (0x22) and '\\' (0x5c)
_PLAIN_BYTE = np.zeros(256, dtype=np.bool_)
_PLAIN_BYTE[0x20:0x7F] = True
_PLAIN_BYTE[[0x22, 0x5C]] = False


def _all_plain(arr: pa.Array) -> bool:
    """Whether every byte of the array's values (and of any bytes under its nulls) is one
    _PLAIN admits: one pass over the data buffer instead of a regex per value."""
    offsets = np.frombuffer(arr.buffers()[1], np.int32, count=arr.offset + len(arr) + 1)
    start, end = int(offsets[arr.offset]), int(offsets[-1])
    data = arr.buffers()[2]
    if data is None or end == start:
        return True
    raw = np.frombuffer(data, np.uint8, count=end)[start:]
    return bool(_PLAIN_BYTE[raw].all())


def _strings(arr: pa.Array) -> pa.Array:
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    quoted = pc.binary_join_element_wise(lit('"'), arr, lit('"'), lit(""))
    if _all_plain(arr):  # the common case: nothing to escape
        return quoted
    plain = pc.fill_null(pc.match_substring_regex(arr, _PLAIN), lit(True))
    if not pc.all(plain, min_count=0).as_py():
        odd = pc.invert(plain)
        values = pc.filter(arr, odd).to_pylist()
        quoted = pc.replace_with_mask(quoted, odd, text_array([json.dumps(v) for v in values]))
    return quoted


# "00" .. "99" as two ASCII bytes each
_TWO = np.array([[48 + i // 10, 48 + i % 10] for i in range(100)], dtype=np.uint8)


def _timestamps(arr: pa.Array) -> pa.Array:
    """tz-aware µs timestamps as ``iso`` writes them, quoted: ``"2026-11-20T08:00:00.077592Z"``,
    ``"2026-11-20T08:00:00Z"`` on a whole second. The civil date by integer arithmetic
    (days to year/month/day, H. Hinnant's algorithm; the flow times are 1970..2261), once
    per distinct day; the digits two at a time from a table."""
    us = int_values(arr)
    secs, frac = np.divmod(us, 1_000_000)
    days, sod = np.divmod(secs, 86_400)
    first = int(days.min()) if len(days) else 0
    day_of = days - first
    day_set = np.arange(first, first + (int(day_of.max()) + 1 if len(days) else 0))
    if len(day_set) > len(days):  # days far apart: only those that occur
        day_set, day_of = np.unique(days, return_inverse=True)
    z = day_set + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    if len(year) and (int(year.min()) < 1000 or int(year.max()) > 9999):
        return _fallback(arr)  # beyond four digits: as ``iso`` writes it, value by value
    dates = np.zeros((len(day_set), 10), dtype=np.uint8)  # YYYY-MM-DD of each distinct day
    dates[:, 4] = dates[:, 7] = ord("-")
    for col, values in ((0, year // 100), (2, year % 100), (5, month), (8, day)):
        dates[:, col : col + 2] = _TWO[values]
    n = len(us)
    out = np.zeros((n, 29), dtype=np.uint8)
    out[:, 0] = ord('"')
    out[:, 1:11] = dates[day_of.reshape(-1)]
    for col, text in ((11, "T"), (14, ":"), (17, ":"), (20, ".")):
        out[:, col] = ord(text)
    for col, values in (
        (12, sod // 3600), (15, sod // 60 % 60), (18, sod % 60),
        (21, frac // 10_000), (23, frac // 100 % 100), (25, frac % 100),
    ):  # fmt: skip
        out[:, col : col + 2] = _TWO[values]
    whole = frac == 0
    if not whole.any():  # every one with its fraction: 29 bytes each
        out[:, 27] = ord("Z")
        out[:, 28] = ord('"')
        text = strings(out.reshape(-1), np.full(n, 29, np.int32))
    else:
        end = np.where(whole, 20, 27)
        rows = np.arange(n)
        out[rows, end] = ord("Z")
        out[rows, end + 1] = ord('"')
        lens = end + 2
        text = strings(out[np.arange(29) < lens[:, None]], lens)
    if arr.null_count:
        text = pc.if_else(arr.is_null(), lit("null"), text)
    return text


def _lists(arr: pa.Array) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    first, last = arr.offsets[0].as_py(), arr.offsets[-1].as_py()
    # the values the offsets point at (``flatten`` would drop those under null lists)
    inner = json_texts(arr.values.slice(first, last - first))
    offsets = ints(pa.int32(), int_values(arr.offsets) - first)
    mask = arr.is_null() if arr.null_count else None
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, inner, mask=mask), lit(", "))
    return pc.binary_join_element_wise(lit("["), joined, lit("]"), lit(""))


def json_texts(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The JSON text of each value of ``arr`` (see the module docstring); no nulls."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_null(t):
        out = constant("null", len(arr))
    elif pa.types.is_integer(t):
        out = arr.cast(pa.string())
    elif pa.types.is_boolean(t):
        out = pc.if_else(arr, lit("true"), lit("false"))
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        out = _strings(arr)
    elif pa.types.is_timestamp(t) and t.tz is not None and t.unit == "us":
        out = _timestamps(arr)
    elif pa.types.is_list(t) and (
        pa.types.is_string(t.value_type) or pa.types.is_integer(t.value_type)
    ):
        out = _lists(arr)
    else:
        return _fallback(arr)
    return pc.fill_null(out, lit("null")) if out.null_count else out


def _bare(col: pa.Array | pa.ChunkedArray) -> pa.Array | None:
    """A string column with no null and nothing to escape (its JSON text is the value in
    quotes), else None."""
    t = col.type
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)) or col.null_count:
        return None
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_large_string(t):
        arr = arr.cast(pa.string())
    return arr if _all_plain(arr) else None


def _object_parts(table: pa.Table, spec: Spec, parts: list[Any], text: list[str]) -> None:
    """The parts of ``object_texts``: arrays, and the literal text between two of them
    gathered in ``text`` (a string column with nothing to escape goes in as it is, its
    quotes in the literals beside it: no quoted copy of the column)."""
    if not spec:
        text.append("{}")
        return

    def array(a: pa.Array) -> None:
        parts.append(lit("".join(text)))
        text.clear()
        parts.append(a)

    for i, (key, value) in enumerate(spec):
        text.append(("{" if i == 0 else ", ") + json.dumps(key) + ": ")
        if isinstance(value, str):
            col = table.column(value)
            bare = _bare(col)
            if bare is not None:
                text.append('"')
                array(bare)
                text.append('"')
            else:
                array(json_texts(col))
        elif isinstance(value, pa.ChunkedArray):
            array(value.combine_chunks())
        elif isinstance(value, pa.Array):
            array(value)
        else:
            _object_parts(table, value, parts, text)
    text.append("}")


def object_texts(table: pa.Table, spec: Spec) -> pa.Array:
    """One JSON object text per row of ``table``: ``{"key": value, ...}`` in ``spec``
    order; a value is a column of ``table``, a nested spec, or an array of JSON texts.
    Joined in one pass over the row's parts (a nested object's parts are its parent's)."""
    parts: list[Any] = []
    text: list[str] = []
    _object_parts(table, spec, parts, text)
    parts.append(lit("".join(text)))
    if table.num_rows == 0:
        return text_array([])
    joined = pc.binary_join_element_wise(*parts, lit(""))
    if not isinstance(joined, pa.Array):  # every part a literal: one value per row
        return constant(joined.as_py(), table.num_rows)
    return joined


def joined_lines(texts: pa.Array, prefix: str, sep: str) -> pa.Array:
    """Each text with ``prefix`` before it and ``sep`` after it (``write_joined`` leaves out
    the last ``sep``)."""
    return pc.binary_join_element_wise(lit(prefix), texts, lit(sep), lit(""))


def write_joined(out: BinaryIO, lines: pa.Array, sep: str) -> None:
    """Write ``joined_lines``' texts straight from the array's buffers, without the last
    ``sep``."""
    if len(lines) == 0:
        return
    buf = lines.buffers()
    offsets = pa.Array.from_buffers(pa.int32(), len(lines) + 1, [None, buf[1]], offset=lines.offset)
    start, end = offsets[0].as_py(), offsets[-1].as_py() - len(sep.encode())
    out.write(memoryview(buf[2])[start:end])


def write_lines(out: BinaryIO, texts: pa.Array, prefix: str, sep: str) -> None:
    """Write each text with ``prefix`` before it, ``sep`` between two (not after the last),
    straight from the array's buffers."""
    if len(texts) == 0:
        return
    write_joined(out, joined_lines(texts, prefix, sep), sep)


__all__ = ["joined_lines", "json_texts", "lit", "object_texts", "write_joined", "write_lines"]
