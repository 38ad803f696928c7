"""Any Arrow table (a ``flowaudit query`` result) as an aligned table, CSV, JSON, NDJSON or
Parquet.

The text formats convert every value through ``report.values`` (strict JSON: HUGEINT and
DECIMAL as integers or decimal strings, NaN/Infinity as null, blobs as hex, times in
ISO-8601 UTC, intervals as ISO-8601 durations; CSV and table cells are the same values as
text). Parquet keeps DuckDB's Arrow types exactly.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa

from flowaudit.choices import QUERY_FORMATS
from flowaudit.errors import OutputError, UsageError
from flowaudit.report.output import write_atomic
from flowaudit.report.values import table_rows, text_value

#: the formats that are text (and so may go to stdout)
TEXT_FORMATS = tuple(f for f in QUERY_FORMATS if f != "parquet")


def _objects(table: pa.Table, rows: list[list[Any]]) -> list[dict[str, Any]]:
    names = table.column_names
    dup = sorted(n for n, k in Counter(names).items() if k > 1)
    if dup:
        raise UsageError(
            f"the result has more than one column named {', '.join(map(repr, dup))}; "
            "JSON objects need distinct names",
            hint="name each column with AS",
        )
    return [dict(zip(names, r, strict=True)) for r in rows]


def _json(v: Any) -> str:
    return json.dumps(v, allow_nan=False)


def format_table(table: pa.Table, fmt: str) -> str:
    """``table`` as text: ``table`` (aligned columns), ``csv``, ``json`` (one array of
    objects, one per line) or ``ndjson`` (one object per line)."""
    rows = table_rows(table)
    names = table.column_names
    if fmt == "json":
        objs = _objects(table, rows)
        if not objs:
            return "[]\n"
        return "[\n" + ",\n".join(_json(o) for o in objs) + "\n]\n"
    if fmt == "ndjson":
        return "".join(_json(o) + "\n" for o in _objects(table, rows))
    cells = [[text_value(v) for v in r] for r in rows]
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(names)
        w.writerows(cells)
        return buf.getvalue()
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(TEXT_FORMATS)}")
    cells.insert(0, list(names))
    widths = [max(len(c[i]) for c in cells) for i in range(len(names))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(names))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def write_parquet_atomic(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """``table`` as a Parquet file at ``path``, its Arrow types as they are (temp file in the
    same directory, then rename). A type Parquet cannot hold is a UsageError naming it."""
    import pyarrow.parquet as pq

    p = Path(path)
    tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, p)
    except pa.ArrowNotImplementedError as e:
        tmp.unlink(missing_ok=True)
        cols = [f.name for f in table.schema if _no_parquet(f.type)]
        which = f"column(s) {', '.join(map(repr, cols))}: " if cols else ""
        raise UsageError(
            f"Parquet cannot hold the result: {which}{e}",
            hint="cast the column in the SQL (an INTERVAL e.g. to epoch(x) or x::VARCHAR), "
            "or use another --format",
        ) from None
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from e


def _no_parquet(t: pa.DataType) -> bool:
    """Types pyarrow cannot write to Parquet (intervals), also nested ones."""
    if pa.types.is_interval(t):
        return True
    return any(_no_parquet(t.field(i).type) for i in range(t.num_fields))


def write_query_result(table: pa.Table, fmt: str, path: str | os.PathLike[str]) -> None:
    """``table`` in ``fmt`` to the file ``path``, atomically (never half a file)."""
    if fmt == "parquet":
        write_parquet_atomic(table, path)
    else:
        write_atomic(path, format_table(table, fmt))


__all__ = ["TEXT_FORMATS", "format_table", "write_parquet_atomic", "write_query_result"]
