"""The value layer (report.values) on its own: durations, decimals, strict JSON."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from flowaudit.report.values import decimal_value, dumps, iso_duration, json_value, text_value


def strict(text: str) -> Any:
    def bad(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=bad)


@pytest.mark.parametrize(
    "months, days, ns, text",
    [
        (0, 0, 0, "PT0S"),
        (0, 0, 90 * 10**9, "PT1M30S"),
        (0, 0, 3600 * 10**9, "PT1H"),
        (0, 0, 1_500_000, "PT0.0015S"),
        (0, 0, 58_619_503_000, "PT58.619503S"),
        (14, 3, (4 * 3600 + 5 * 60 + 6) * 10**9 + 789_000_000, "P1Y2M3DT4H5M6.789S"),
        (12, 0, 0, "P1Y"),
        (1, 0, 0, "P1M"),
        (0, 7, 0, "P7D"),
        (0, -1, 0, "-P1D"),
        (-14, 0, -(10**9), "-P1Y2MT1S"),
        (0, -1, 2 * 3600 * 10**9, "P-1DT2H"),
    ],
)
def test_iso_duration(months: int, days: int, ns: int, text: str) -> None:
    assert iso_duration(months, days, ns) == text


@pytest.mark.parametrize(
    "d, want",
    [
        (Decimal("535552"), 535552),
        (Decimal("2.00"), 2),
        (Decimal("1.50"), "1.50"),
        (Decimal("-0.05"), "-0.05"),
        (Decimal("1E+2"), 100),
        (Decimal("1.5E-7"), "0.00000015"),
        (Decimal("170141183460469231731687303715884105727"), 2**127 - 1),
    ],
)
def test_decimal_value(d: Decimal, want: int | str) -> None:
    assert decimal_value(d) == want
    assert type(decimal_value(d)) is type(want)


def test_json_value_of_python_values() -> None:
    t = dt.datetime(2026, 11, 20, 9, 0, 0, 500000, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert json_value(t) == "2026-11-20T08:00:00.500000Z"
    assert json_value(dt.datetime(2026, 11, 20, 8)) == "2026-11-20T08:00:00"
    assert json_value(dt.timedelta(days=1, seconds=1)) == "PT24H1S"
    assert json_value(b"\x00\xff") == "00ff"
    assert json_value(float("nan")) is None and json_value(float("-inf")) is None
    assert json_value(True) is True and text_value(True) == "true"
    typ = pa.map_(pa.int32(), pa.list_(pa.float64()))
    assert json_value([(1, [1.5, float("inf")])], typ) == {"1": [1.5, None]}
    assert text_value({"a": [1, "x"]}) == '{"a":[1,"x"]}'
    assert text_value(None) == "" and text_value("a,b") == "a,b"


def test_dumps_is_strict_json_and_plain_values_unchanged() -> None:
    doc = {"n": float("nan"), "d": Decimal("1.50"), "h": Decimal("7"), "b": b"\x01"}
    assert strict(dumps(doc)) == {"n": None, "d": "1.50", "h": 7, "b": "01"}
    plain = {"a": [1, "é", None, 2.5, True], "b": {"c": (1, 2)}}
    assert dumps(plain, indent=2) == json.dumps(plain, indent=2)
