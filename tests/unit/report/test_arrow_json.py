"""The column-wise JSON encoder (report.arrow_json) writes what ``values.dumps`` writes,
value for value, and the streamed report is the dict report's text byte for byte."""

from __future__ import annotations

import datetime as dt
import io
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from testpaths import ADMIN, MIXED

from flowaudit import api
from flowaudit._util.arrow import ints
from flowaudit._util.time import EPOCH, TIME_MAX_US, iso
from flowaudit.report.arrow_json import json_texts, object_texts
from flowaudit.report.json_ import render_json, result_to_dict, write_json
from flowaudit.report.values import dumps

TS = pa.timestamp("us", tz="UTC")


def test_strings_are_quoted_and_escaped_as_dumps_does() -> None:
    values = ["", "plain text 10.0.0.1", 'a "quoted" word', "back\\slash", "tab\there",
              "line\nbreak", "\x00\x1f\x7f", "nodes → pma", "é", "😀", "{x}", None]  # fmt: skip
    got = json_texts(pa.array(values, pa.string())).to_pylist()
    assert got == [dumps(v) for v in values]


def test_integers_booleans_and_nulls() -> None:
    cases: list[tuple[list[Any], pa.DataType]] = [
        ([0, 1, 2**64 - 1, None], pa.uint64()),
        ([-(2**63), 2**63 - 1, None], pa.int64()),
        ([0, 255], pa.uint8()),
        ([True, False, None], pa.bool_()),
        ([None, None], pa.null()),
    ]
    for values, typ in cases:
        assert json_texts(pa.array(values, typ)).to_pylist() == [dumps(v) for v in values]


def test_timestamps_are_iso_text_with_z() -> None:
    rng = random.Random(11)
    edges = [0, 1, 999_999, 1_000_000, TIME_MAX_US - 1,
             951_782_400_000_000,  # 2000-02-29
             4_107_542_400_000_000]  # 2100-03-01 (no 29 February in 2100)  # fmt: skip
    values = edges + [rng.randrange(TIME_MAX_US) for _ in range(20_000)]
    values += [rng.randrange(TIME_MAX_US // 10**6) * 10**6 for _ in range(1000)]  # whole s
    arr = ints(TS, np.array(values, np.int64))
    want = [dumps(iso(EPOCH + dt.timedelta(microseconds=v))) for v in values]
    assert json_texts(arr).to_pylist() == want
    nulls = ints(TS, np.array([5, 0], np.int64), np.array([False, True]))
    assert json_texts(nulls).to_pylist() == ['"1970-01-01T00:00:00.000005Z"', "null"]


def test_lists_and_nested_objects() -> None:
    table = pa.table(
        {
            "ids": pa.array([["a", 'b"'], [], None, ["→"]], pa.list_(pa.string())),
            "ports": pa.array([[1, 2], [], [3], None], pa.list_(pa.int32())),
            "n": pa.array([1, None, 3, 4], pa.int64()),
        }
    ).slice(1)  # an offset into the arrays too
    spec = [("ids", "ids"), ("inner", [("n", "n"), ("ports", "ports")])]
    want = [dumps({"ids": r["ids"], "inner": {"n": r["n"], "ports": r["ports"]}})
            for r in table.to_pylist()]  # fmt: skip
    assert object_texts(table, spec).to_pylist() == want


def _dict_report(doc: dict[str, Any]) -> str:
    """The report as it was written from the dict, one list item per line."""
    parts = []
    for key, value in doc.items():
        if isinstance(value, list) and value:
            items = ",\n    ".join(dumps(v) for v in value)
            text = f"[\n    {items}\n  ]"
        else:
            text = dumps(value)
        parts.append(f"  {dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


@pytest.fixture(scope="module")
def result() -> Any:
    return api.audit([MIXED], groups=ADMIN)


def test_streamed_report_is_the_dict_report(result: Any) -> None:
    text = render_json(result)
    assert text == _dict_report(result_to_dict(result))
    out = io.BytesIO()
    write_json(result, out)
    assert out.getvalue() == text.encode()
    assert text.count('"finding_id"') >= result.violations.num_rows > 0


def test_streamed_report_with_changes_is_the_dict_report(result: Any, tmp_path: Path) -> None:
    base = tmp_path / "previous.json"
    base.write_text(render_json(result), encoding="utf-8")
    again = api.audit([MIXED], groups=ADMIN, baseline=base)
    assert again.changes is not None and again.changes.persisting
    text = render_json(again)
    assert text == _dict_report(result_to_dict(again))
    assert '"change": "persisting"' in text


def test_the_json_report_does_not_import_pandas() -> None:
    """A Python value converted to an Arrow scalar imports pandas (~0.4 s, ~50 MB)."""
    code = (
        "import io, sys, flowaudit\n"
        "from flowaudit.report.json_ import write_json\n"
        f"r = flowaudit.audit([{str(MIXED)!r}], groups={ADMIN!r})\n"
        "write_json(r, io.BytesIO())\n"
        "print(r.violations.num_rows, 'pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rows, pandas = out.stdout.split()
    assert int(rows) > 0 and pandas == "False"
