"""Any Arrow table as text: an aligned table, CSV or JSON lines (for `flowaudit query`)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pyarrow as pa


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.hex()
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def format_table(table: pa.Table, fmt: str) -> str:
    rows = [[_plain(v) for v in r.values()] for r in table.to_pylist()]
    names = table.column_names
    if fmt == "json":
        return "".join(json.dumps(dict(zip(names, r, strict=True))) + "\n" for r in rows)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(names)
        w.writerows(rows)
        return buf.getvalue()
    cells = [names] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(names))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(names))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"
