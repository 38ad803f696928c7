"""numpy columns → Arrow arrays, built from buffers (the ingest's hot output path).

Responsible for turning the flow builder's numpy columns into Arrow arrays without
going through ``pa.array``: pyarrow's generic conversion imports pandas and
``pyarrow.compute`` on first use (~0.8 s of a 1.5 s ingest), while
``pa.Array.from_buffers`` wraps the numpy memory directly. Also the text columns:
dotted-quad IPv4 / RFC 5952 IPv6 addresses, and strings chosen from a small table of
names (states, directions, constants), assembled as Arrow string buffers in numpy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa


def fixed(
    typ: pa.DataType, values: npt.NDArray[np.generic], null: npt.NDArray[np.bool_] | None = None
) -> pa.Array:
    """A fixed-width Arrow array of ``typ`` over ``values`` (same width); ``null`` rows null."""
    data = np.ascontiguousarray(values)
    if data.dtype.itemsize * 8 != typ.bit_width:
        raise TypeError(f"{data.dtype} values do not fit Arrow {typ}")
    validity = None
    if null is not None and bool(null.any()):
        validity = pa.py_buffer(np.packbits(~null, bitorder="little"))
    return pa.Array.from_buffers(typ, len(data), [validity, pa.py_buffer(data)])


def empty_table(schema: pa.Schema) -> pa.Table:
    """A table of ``schema`` with no rows (``Schema.empty_table`` imports pandas)."""
    return pa.Table.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema)


def strings(data: npt.NDArray[np.uint8], lengths: npt.NDArray[np.integer]) -> pa.Array:
    """A string array from concatenated UTF-8 bytes and per-row lengths."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.StringArray.from_buffers(
        len(lengths), pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data))
    )


def _padded(names: list[bytes]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    width = max([len(b) for b in names] + [1])
    table = np.zeros((len(names), width), dtype=np.uint8)
    for i, b in enumerate(names):
        table[i, : len(b)] = np.frombuffer(b, dtype=np.uint8)
    return table, np.array([len(b) for b in names], dtype=np.int64)


def from_codes(codes: npt.NDArray[np.integer], names: tuple[str, ...] | list[str]) -> pa.Array:
    """``names[codes[i]]`` for every row, as a string array."""
    enc = [s.encode() for s in names]
    lens = np.array([len(b) for b in enc], dtype=np.int64)
    starts = np.zeros(len(enc), dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    rows = lens[codes]
    offsets = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum(rows, out=offsets[1:])
    # each output byte's place in the concatenated names
    at = np.repeat(starts[codes] - offsets[:-1], rows) + np.arange(offsets[-1])
    data = np.frombuffer(b"".join(enc), dtype=np.uint8)[at]
    return pa.StringArray.from_buffers(len(rows), pa.py_buffer(offsets), pa.py_buffer(data))


# decimal digits of 0..255, left-aligned, and their count
_DIG, _DLEN = _padded([str(i).encode() for i in range(256)])


def _ipv4_bytes(v4: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Dotted quads of 32-bit addresses: (concatenated bytes, length of each)."""
    m = len(v4)
    cells = np.empty((m, 4, 4), dtype=np.uint8)  # per octet: 3 digit slots and a dot
    valid = np.zeros((m, 4, 4), dtype=np.bool_)
    lens = np.full(m, 3, dtype=np.int64)
    for k, shift in enumerate((24, 16, 8, 0)):
        o = ((v4 >> np.uint64(shift)) & np.uint64(255)).astype(np.intp)
        cells[:, k, :3] = _DIG[o]
        dl = _DLEN[o]
        valid[:, k, :3] = np.arange(3) < dl[:, None]
        lens += dl
    cells[:, :, 3] = ord(".")
    valid[:, :3, 3] = True
    return cells[valid], lens


#: writes the text of every row: (is4, v4, code6, tab6, len6) → (bytes, lengths); see ip_text
RowWriter = Callable[..., tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]]


def _rows_numpy(
    is4: npt.NDArray[np.bool_],
    v4: npt.NDArray[np.uint64],
    code6: npt.NDArray[np.int64],
    tab6: npt.NDArray[np.uint8],
    len6: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    r4 = np.flatnonzero(is4)
    r6 = np.flatnonzero(~is4)
    d4, l4 = _ipv4_bytes(v4[r4])
    if not len(r6):
        return d4, l4
    inv = code6[r6]
    l6 = len6[inv]
    d6 = tab6[inv][np.arange(tab6.shape[1]) < l6[:, None]]
    lens = np.empty(len(is4), dtype=np.int64)
    lens[r4], lens[r6] = l4, l6
    offsets = np.zeros(len(is4) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    data = np.empty(int(offsets[-1]), dtype=np.uint8)
    for rows, d, ln in ((r4, d4, l4), (r6, d6, l6)):
        starts = np.zeros(len(ln), dtype=np.int64)
        np.cumsum(ln[:-1], out=starts[1:])
        data[np.repeat(offsets[rows] - starts, ln) + np.arange(len(d))] = d
    return data, lens


def ip_text(
    ipv: npt.NDArray[np.generic],
    hi: npt.NDArray[np.generic],
    lo: npt.NDArray[np.generic],
    rows: RowWriter | None = None,
) -> pa.Array:
    """Canonical text of addresses (IPv4 dotted quad, IPv6 RFC 5952) as a string array.

    The distinct IPv6 addresses are formatted once each (``ipaddress``) into a table;
    ``rows(is4, v4, code6, tab6, len6)`` then writes every row: the IPv4 rows' dotted quads
    (``v4``, 32-bit values), the others' ``tab6[code6[r], :len6[code6[r]]]``. The flow
    builders pass the compiled writer (``flowaudit.kernels.text``); the default is numpy."""
    m = len(ipv)
    is4 = np.asarray(ipv) == 4
    v4 = np.asarray(lo, dtype=np.uint64) & np.uint64(0xFFFFFFFF)
    code6 = np.zeros(m, dtype=np.int64)
    if bool(is4.all()):
        tab6, len6 = np.zeros((1, 1), dtype=np.uint8), np.zeros(1, dtype=np.int64)
    else:
        r6 = np.flatnonzero(~is4)
        pairs = np.stack([np.asarray(hi, np.uint64)[r6], np.asarray(lo, np.uint64)[r6]], 1)
        uniq, inv = np.unique(pairs, axis=0, return_inverse=True)
        texts = [str(ipaddress.IPv6Address((int(h) << 64) | int(w))).encode() for h, w in uniq]
        tab6, len6 = _padded(texts)
        code6[r6] = inv.reshape(-1)
    data, lens = (_rows_numpy if rows is None else rows)(is4, v4, code6, tab6, len6)
    return strings(data, lens)


__all__ = [
    "bools",
    "constant",
    "empty_table",
    "fixed",
    "from_codes",
    "int_values",
    "ints",
    "np_dtype",
    "ip_text",
    "ip_text_unique",
    "pick",
    "pylist",
    "strings",
    "text_array",
]


def text_array(values: list[str]) -> pa.Array:
    """Python strings → an Arrow string array, from buffers (no pandas import)."""
    data = [v.encode() for v in values]
    offsets = np.zeros(len(data) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in data], out=offsets[1:])
    return pa.Array.from_buffers(
        pa.string(), len(data), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
    )


def pylist(table: pa.Table) -> list[dict[str, Any]]:
    """``table.to_pylist()``, with tz-aware timestamps as UTC datetimes built without
    pyarrow's tz conversion (which imports pandas, ~0.4 s)."""
    import datetime as dt

    tz_cols = [
        f.name for f in table.schema if pa.types.is_timestamp(f.type) and f.type.tz is not None
    ]
    if not tz_cols:
        out: list[dict[str, Any]] = table.to_pylist()
        return out
    naive = table
    for name in tz_cols:
        i = naive.schema.get_field_index(name)
        unit = naive.schema.field(i).type.unit
        naive = naive.set_column(i, name, naive.column(i).cast(pa.timestamp(unit)))
    rows: list[dict[str, Any]] = naive.to_pylist()
    for row in rows:
        for name in tz_cols:
            if row[name] is not None:
                row[name] = row[name].replace(tzinfo=dt.UTC)
    return rows


def np_dtype(typ: pa.DataType) -> np.dtype[Any]:
    if pa.types.is_timestamp(typ):
        return np.dtype(np.int64)
    kind = "u" if pa.types.is_unsigned_integer(typ) else "i"
    return np.dtype(f"{kind}{typ.bit_width // 8}")


def ints(
    typ: pa.DataType, values: npt.ArrayLike, null: npt.NDArray[np.bool_] | None = None
) -> pa.Array:
    """An integer (or timestamp, from int64 ticks) array of ``typ`` over ``values``, cast
    to the matching numpy dtype; ``null`` rows null (``pa.array`` imports pandas)."""
    return fixed(typ, np.asarray(values).astype(np_dtype(typ), copy=False), null)


def bools(mask: npt.NDArray[np.bool_]) -> pa.Array:
    """A boolean array (no nulls) from a numpy mask, e.g. for ``Table.filter``."""
    m = np.asarray(mask, dtype=np.bool_)
    return pa.Array.from_buffers(
        pa.bool_(), len(m), [None, pa.py_buffer(np.packbits(m, bitorder="little"))]
    )


def int_values(col: pa.Array | pa.ChunkedArray, fill: int = 0) -> npt.NDArray[np.int64]:
    """An integer or timestamp column as int64 numpy values, nulls → ``fill`` (instead of
    ``fill_null(...).to_numpy()``, whose Python scalar imports pandas). uint64 values
    beyond int64 (a corrupt or wrapped counter) saturate at the int64 maximum."""
    if len(col) == 0:
        return np.zeros(0, np.int64)
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    wide = pa.types.is_uint64(arr.type)
    if not pa.types.is_int64(arr.type) and not wide:
        arr = arr.cast(pa.int64())
    n, off = len(arr), arr.offset
    if n == 0:
        return np.zeros(0, np.int64)
    validity, data = arr.buffers()[:2]
    if wide:
        raw = np.frombuffer(data, dtype=np.uint64, count=off + n)[off:]
        out = np.minimum(raw, np.uint64(np.iinfo(np.int64).max)).astype(np.int64)
    else:
        out = np.frombuffer(data, dtype=np.int64, count=off + n)[off:].copy()
    if arr.null_count:
        bits = np.frombuffer(validity, dtype=np.uint8)
        valid = np.unpackbits(bits, count=off + n, bitorder="little")[off:].astype(np.bool_)
        out[~valid] = fill
    return out


def _gather(
    data: npt.NDArray[np.uint8], lens: npt.NDArray[np.int64], codes: npt.NDArray[np.integer]
) -> pa.Array:
    """Row i = string ``codes[i]`` of (``data``: concatenated bytes, ``lens``)."""
    starts = np.zeros(len(lens), dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    rows = lens[codes]
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(rows, out=offsets[1:])
    shift = starts[codes] - offsets[:-1]
    return strings(data[np.repeat(shift, rows) + np.arange(int(offsets[-1]))], rows)


def pick(codes: npt.NDArray[np.integer], names: tuple[str, ...] | list[str]) -> pa.Array:
    """``from_codes`` by a byte gather instead of a (rows × widest name) mask: faster
    on large inputs, same result."""
    enc = [s.encode() for s in names]
    data = np.frombuffer(b"".join(enc), dtype=np.uint8)
    return _gather(data, np.array([len(b) for b in enc], dtype=np.int64), codes)


def constant(value: str, n: int) -> pa.Array:
    """``value`` ``n`` times, as a string array (offsets and one buffer, no per-row work)."""
    b = value.encode()
    offsets = np.arange(n + 1, dtype=np.int32) * len(b)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(b * n))


def ip_text_unique(
    ipv: npt.NDArray[np.generic], hi: npt.NDArray[np.generic], lo: npt.NDArray[np.generic]
) -> pa.Array:
    """``ip_text``, formatting each distinct address once (flow tables repeat addresses)."""
    m = len(ipv)
    key = np.stack(
        [np.asarray(ipv, np.uint64), np.asarray(hi, np.uint64), np.asarray(lo, np.uint64)], 1
    )
    if m == 0:
        return ip_text(ipv, hi, lo)
    if bool((key[:, 0] == 4).all()):
        uniq_lo, inv = np.unique(key[:, 2] & np.uint64(0xFFFFFFFF), return_inverse=True)
        u = ip_text(np.full(len(uniq_lo), 4, np.int8), np.zeros_like(uniq_lo), uniq_lo)
    else:
        uniq, inv = np.unique(key, axis=0, return_inverse=True)
        u = ip_text(uniq[:, 0], uniq[:, 1], uniq[:, 2])
    offs = np.frombuffer(u.buffers()[1], dtype=np.int32, count=len(u) + 1)
    data = np.frombuffer(u.buffers()[2], dtype=np.uint8, count=int(offs[-1]))
    return _gather(data, np.diff(offs).astype(np.int64), inv.reshape(-1))
