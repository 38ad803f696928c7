"""Python rows → an Arrow table, column by column from buffers: the engine's
``register_rows`` inserts row by row (a few ms a row for tens of thousands of keys), and
``pa.array`` over Python objects imports pandas (~0.4 s)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowaudit._util.arrow import bools, ints, text_array


def _column(typ: pa.DataType, values: list[Any]) -> pa.Array:
    null = np.array([v is None for v in values], dtype=np.bool_)
    if pa.types.is_string(typ):
        arr = text_array(["" if v is None else v for v in values])
    elif pa.types.is_boolean(typ):
        arr = bools(np.array([bool(v) for v in values], dtype=np.bool_))
    elif pa.types.is_integer(typ):
        return ints(typ, np.array([0 if v is None else v for v in values], dtype=np.int64), null)
    elif pa.types.is_binary(typ) or pa.types.is_fixed_size_binary(typ):
        width = 16
        data = b"".join(b"\0" * width if v is None else bytes(v) for v in values)
        if len(data) != width * len(values):
            raise ValueError(f"{typ} values are not all {width} bytes")
        fixed = pa.Array.from_buffers(pa.binary(width), len(values), [None, pa.py_buffer(data)])
        arr = fixed.cast(pa.binary())  # a BLOB to DuckDB: fixed-size binary joins slowly
    elif pa.types.is_list(typ) and pa.types.is_string(typ.value_type):
        offsets = np.zeros(len(values) + 1, dtype=np.int64)
        np.cumsum([0 if v is None else len(v) for v in values], out=offsets[1:])
        flat = text_array([x for v in values if v is not None for x in v])
        arr = pa.ListArray.from_arrays(ints(pa.int32(), offsets), flat)
    else:
        raise TypeError(f"no column builder for {typ}")
    if null.any():
        arr = pc.if_else(bools(null), pa.nulls(len(values), typ), arr)
    return arr


def rows_table(schema: pa.Schema, rows: Sequence[Sequence[Any]]) -> pa.Table:
    """``rows`` (tuples in ``schema`` order) as an Arrow table of ``schema``."""
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    arrays = [_column(f.type, list(c)) for f, c in zip(schema, cols, strict=True)]
    return pa.Table.from_arrays(arrays, names=schema.names)


__all__ = ["rows_table"]
