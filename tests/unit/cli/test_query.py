"""``flowaudit query``: every result type × every format, read back by strict parsers.

A real store (the mixed sample ingested through ``api.ingest``), real DuckDB, the CLI
through CliRunner. Each output is parsed back (``json.loads`` refusing NaN/Infinity, the
``csv`` module, the aligned table by its dash line, ``pyarrow.parquet``) and compared with
the value DuckDB returned and with the documented JSON/text form of it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import ipaddress
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from testpaths import MIXED

from flowaudit import api
from flowaudit.cli import cli
from flowaudit.matrix.compile import RELATIONS
from flowaudit.schema import FLOW_DESCRIPTIONS, FLOW_SCHEMA

UTC = dt.UTC


def MDN(months: int, days: int, ns: int) -> Any:
    return pa.MonthDayNano((months, days, ns))


# (column, SQL expression, DuckDB type, the value DuckDB returns, its JSON value, CSV text)
LITERALS: list[tuple[str, str, str, Any, Any, str]] = [
    ("u8", "255::UTINYINT", "UTINYINT", 255, 255, "255"),
    ("u16", "65535::USMALLINT", "USMALLINT", 65535, 65535, "65535"),
    ("u32", "4294967295::UINTEGER", "UINTEGER", 2**32 - 1, 2**32 - 1, "4294967295"),
    ("u64", "18446744073709551615::UBIGINT", "UBIGINT", 2**64 - 1, 2**64 - 1, str(2**64 - 1)),
    ("i8", "(-5)::TINYINT", "TINYINT", -5, -5, "-5"),
    ("i16", "(-111)::SMALLINT", "SMALLINT", -111, -111, "-111"),
    ("i64", "(-9007199254740993)::BIGINT", "BIGINT", -(2**53) - 1, -(2**53) - 1,
     str(-(2**53) - 1)),
    ("huge", "170141183460469231731687303715884105727::HUGEINT", "HUGEINT",
     Decimal(2**127 - 1), 2**127 - 1, str(2**127 - 1)),
    ("huge_neg", "(-12345678901234567890123)::HUGEINT", "HUGEINT",
     Decimal(-12345678901234567890123), -12345678901234567890123, "-12345678901234567890123"),
    ("hsum", "(SELECT sum(x) FROM (VALUES (18446744073709551615::UBIGINT), (1::UBIGINT)) v(x))",
     "HUGEINT", Decimal(2**64), 2**64, str(2**64)),
    ("dec", "1.50::DECIMAL(10,2)", "DECIMAL(10,2)", Decimal("1.50"), "1.50", "1.50"),
    ("dec_int", "2.00::DECIMAL(10,2)", "DECIMAL(10,2)", Decimal("2.00"), 2, "2"),
    ("dec_neg", "(-0.05)::DECIMAL(4,2)", "DECIMAL(4,2)", Decimal("-0.05"), "-0.05", "-0.05"),
    ("dbl", "0.1::DOUBLE", "DOUBLE", 0.1, 0.1, "0.1"),
    ("nan", "'nan'::DOUBLE", "DOUBLE", "nan", None, ""),
    ("inf", "'inf'::DOUBLE", "DOUBLE", float("inf"), None, ""),
    ("ninf", "'-inf'::DOUBLE", "DOUBLE", float("-inf"), None, ""),
    ("str", """'µs,"q"'""", "VARCHAR", 'µs,"q"', 'µs,"q"', 'µs,"q"'),
    ("blob", "'\\x01\\xff'::BLOB", "BLOB", b"\x01\xff", "01ff", "01ff"),
    ("yes", "true", "BOOLEAN", True, True, "true"),
    ("no", "false", "BOOLEAN", False, False, "false"),
    ("ts", "TIMESTAMPTZ '2026-11-20 09:00:00.5+01'", "TIMESTAMP WITH TIME ZONE",
     dt.datetime(2026, 11, 20, 8, 0, 0, 500000, tzinfo=UTC),
     "2026-11-20T08:00:00.500000Z", "2026-11-20T08:00:00.500000Z"),
    ("day", "DATE '2026-11-20'", "DATE", dt.date(2026, 11, 20), "2026-11-20", "2026-11-20"),
    ("iv", "INTERVAL 90 SECOND", "INTERVAL", MDN(0, 0, 90 * 10**9), "PT1M30S", "PT1M30S"),
    ("iv_long", "INTERVAL '1 year 2 months 3 days 04:05:06.789'", "INTERVAL",
     MDN(14, 3, 14_706_789_000_000), "P1Y2M3DT4H5M6.789S", "P1Y2M3DT4H5M6.789S"),
    ("iv_neg", "-INTERVAL 1 DAY", "INTERVAL", MDN(0, -1, 0), "-P1D", "-P1D"),
    ("list", "[1, 2]", "INTEGER[]", [1, 2], [1, 2], "[1,2]"),
    ("list_odd", "['nan'::DOUBLE, 1.5, NULL]", "DOUBLE[]", ["nan", 1.5, None],
     [None, 1.5, None], "[null,1.5,null]"),
    ("list_huge", "[1::HUGEINT, NULL]", "HUGEINT[]", [Decimal(1), None], [1, None], "[1,null]"),
    ("struct", "{'a': 1, 'b': 'x'}", "STRUCT(a INTEGER, b VARCHAR)", {"a": 1, "b": "x"},
     {"a": 1, "b": "x"}, '{"a":1,"b":"x"}'),
    ("struct_deep", "{'d': 1.50::DECIMAL(4,2), 't': TIMESTAMPTZ '2026-11-20 08:00:00+00', "
     "'x': '\\x00'::BLOB}",
     "STRUCT(d DECIMAL(4,2), t TIMESTAMP WITH TIME ZONE, x BLOB)",
     {"d": Decimal("1.50"), "t": dt.datetime(2026, 11, 20, 8, tzinfo=UTC), "x": b"\x00"},
     {"d": "1.50", "t": "2026-11-20T08:00:00Z", "x": "00"},
     '{"d":"1.50","t":"2026-11-20T08:00:00Z","x":"00"}'),
    ("map", "MAP {'k': 1}", "MAP(VARCHAR, INTEGER)", [("k", 1)], {"k": 1}, '{"k":1}'),
    ("map_int", "MAP {1: [2.5]}", "MAP(INTEGER, DECIMAL(2,1)[])", [(1, [Decimal("2.5")])],
     {"1": ["2.5"]}, '{"1":["2.5"]}'),
    ("nothing", "NULL", '"NULL"', None, None, ""),
]  # fmt: skip

# the common aggregates over the real flows, checked against the sample's ground truth
TRUTH = [json.loads(line) for line in MIXED.with_suffix(".truth.jsonl").read_text().splitlines()]
SRC_BYTES = [t["src_bytes"] for t in TRUTH]


def _t(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


FIRST = min(_t(t["first_seen"]) for t in TRUTH)
SPAN_NS = (max(_t(t["last_seen"]) for t in TRUTH) - FIRST) // dt.timedelta(microseconds=1) * 1000
AVG = sum(SRC_BYTES) / len(SRC_BYTES)
MEDIAN = sorted(SRC_BYTES)[len(SRC_BYTES) // 2]
SPAN = f"PT{SPAN_NS // 10**9}.{SPAN_NS % 10**9:09d}".rstrip("0") + "S"
PROTOS = sorted({t["protocol"] for t in TRUTH})
AGGREGATES: list[tuple[str, str, str, Any, Any, str]] = [
    ("n", "count(*)", "BIGINT", len(TRUTH), len(TRUTH), str(len(TRUTH))),
    ("total", "sum(src_bytes)", "HUGEINT", Decimal(sum(SRC_BYTES)), sum(SRC_BYTES),
     str(sum(SRC_BYTES))),
    ("mean", "avg(src_bytes)", "DOUBLE", AVG, AVG, repr(AVG)),
    ("mean_dec", "avg(src_bytes)::DECIMAL(10,3)", "DECIMAL(10,3)", Decimal(f"{AVG:.3f}"),
     f"{AVG:.3f}", f"{AVG:.3f}"),
    ("median", "approx_quantile(src_bytes, 0.5)", "HUGEINT", Decimal(MEDIAN), MEDIAN,
     str(MEDIAN)),
    ("first", "min(first_seen)", "TIMESTAMP WITH TIME ZONE", FIRST,
     FIRST.isoformat().replace("+00:00", "Z"), FIRST.isoformat().replace("+00:00", "Z")),
    ("span", "max(last_seen) - min(first_seen)", "INTERVAL", MDN(0, 0, SPAN_NS),
     SPAN, SPAN),
    ("protos", "list(DISTINCT protocol ORDER BY protocol)", "UTINYINT[]", PROTOS, PROTOS,
     json.dumps(PROTOS, separators=(",", ":"))),
]  # fmt: skip

QUERIES = {
    "literals": (
        "SELECT " + ", ".join(f"{e} AS {c}" for c, e, *_ in LITERALS) + " FROM flows LIMIT 1",
        LITERALS,
    ),
    "aggregates": ("SELECT " + ", ".join(f"{e} AS {c}" for c, e, *_ in AGGREGATES) + " FROM flows",
                   AGGREGATES),
}  # fmt: skip
CASES = [(q, row) for q, (_, rows) in QUERIES.items() for row in rows]
TEXT_FORMATS = ("table", "csv", "json", "ndjson")


def strict_json(text: str) -> Any:
    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def parse_table(text: str) -> list[dict[str, str]]:
    """The aligned table back into cells: the dash line gives each column's span."""
    header, dashes, *lines = text.splitlines()
    spans, pos = [], 0
    for d in dashes.split("  "):
        spans.append((pos, pos + len(d)))
        pos += len(d) + 2
    names = [header[a:b].strip() for a, b in spans]
    return [{n: line[a:b].rstrip() for n, (a, b) in zip(names, spans, strict=True)}
            for line in lines]  # fmt: skip


def parse(fmt: str, text: str) -> list[dict[str, Any]]:
    if fmt == "json":
        rows = strict_json(text)
        assert isinstance(rows, list)
        return rows
    if fmt == "ndjson":
        assert text.endswith("\n")
        return [strict_json(line) for line in text.splitlines()]
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text, newline="")))
    return parse_table(text)


def same(got: Any, want: Any) -> bool:
    """Equality with NaN equal to itself (the table writes ``"nan"`` for it)."""
    if want == "nan":
        return isinstance(got, float) and got != got
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(
            same(g, w) for g, w in zip(got, want, strict=True)
        )  # fmt: skip
    return bool(got == want) and type(got) is type(want)


def in_utc(v: Any) -> Any:
    """Times (also a struct's) in UTC: DuckDB's Arrow zone is the session's (Etc/UTC)."""
    if isinstance(v, dt.datetime):
        return v.astimezone(UTC)
    if isinstance(v, dict):
        return {k: in_utc(x) for k, x in v.items()}
    return v


def nan_marked(v: Any) -> Any:
    if isinstance(v, float) and v != v:
        return "nan"
    if isinstance(v, list):
        return [nan_marked(x) for x in v]
    if isinstance(v, dict):
        return {k: nan_marked(x) for k, x in v.items()}
    return v


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store")
    (res,) = api.ingest(MIXED, path)
    assert res.flows == len(TRUTH)
    return path


def run(store: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["query", "--store", str(store), *args])


@pytest.fixture(scope="module")
def outputs(store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Any]:
    """Each query in each format, parsed back (parquet: the Arrow table read back)."""
    out: dict[tuple[str, str], Any] = {}
    tmp = tmp_path_factory.mktemp("out")
    for name, (sql, _) in QUERIES.items():
        for fmt in TEXT_FORMATS:
            r = run(store, sql, "--format", fmt)
            assert r.exit_code == 0, (fmt, r.output, r.stderr)
            out[name, fmt] = parse(fmt, r.stdout)
            assert len(out[name, fmt]) == 1
        no_interval = [c for c, _, typ, *_ in QUERIES[name][1] if typ != "INTERVAL"]
        file = tmp / f"{name}.parquet"
        sql = sql.replace("SELECT ", f"SELECT {', '.join(no_interval)} FROM (SELECT ", 1) + ")"
        r = run(store, sql, "--format", "parquet", "-o", str(file))
        assert r.exit_code == 0, (r.output, r.stderr)
        out[name, "parquet"] = (pq.read_table(file), api.query(sql, store=store))
    return out


@pytest.fixture(scope="module")
def duck(store: Path) -> dict[str, dict[str, Any]]:
    """What DuckDB returns for each query: the values and the type names."""
    got: dict[str, dict[str, Any]] = {}
    for name, (sql, rows) in QUERIES.items():
        (values,) = api.query(sql, store=store).to_pylist()
        types_sql = sql.replace(
            "SELECT " + ", ".join(f"{e} AS {c}" for c, e, *_ in rows),
            "SELECT " + ", ".join(f"typeof({e}) AS {c}" for c, e, *_ in rows),
        )
        (types,) = api.query(types_sql, store=store).to_pylist()
        got[name] = {"values": values, "types": types}
    return got


@pytest.mark.parametrize("query, case", CASES, ids=[f"{q}-{c[0]}" for q, c in CASES])
def test_duckdb_returns_the_expected_type_and_value(
    duck: dict[str, dict[str, Any]], query: str, case: tuple[str, ...]
) -> None:
    col, _, typ, value, *_ = case
    assert duck[query]["types"][col] == typ
    got = in_utc(duck[query]["values"][col])
    assert same(got, value), (got, value)


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
@pytest.mark.parametrize("query, case", CASES, ids=[f"{q}-{c[0]}" for q, c in CASES])
def test_each_format_reads_back_to_the_documented_value(
    outputs: dict[tuple[str, str], Any], fmt: str, query: str, case: tuple[str, ...]
) -> None:
    col, _, _, _, as_json, as_text = case
    (row,) = outputs[query, fmt]
    if fmt in ("json", "ndjson"):
        assert same(row[col], as_json), (row[col], as_json)
    else:
        assert row[col] == as_text


@pytest.mark.parametrize("query", QUERIES)
def test_parquet_keeps_duckdbs_types_and_values(
    outputs: dict[tuple[str, str], Any], query: str
) -> None:
    read, returned = outputs[query, "parquet"]
    assert read.schema.equals(returned.schema)
    assert nan_marked(read.to_pylist()) == nan_marked(returned.to_pylist())  # NaN != NaN
    want = {c: v for c, _, t, v, *_ in QUERIES[query][1] if t != "INTERVAL"}
    (row,) = read.to_pylist()
    for col, value in want.items():
        got = in_utc(row[col])
        assert same(got, value), (col, got, value)


def test_the_issue_query_scripts_cleanly(store: Path, tmp_path: Path) -> None:
    sql = "SELECT dst_port, sum(src_bytes) FROM flows GROUP BY 1 ORDER BY 1 NULLS FIRST"
    r = run(store, sql, "--format", "json")
    assert r.exit_code == 0, r.stderr
    want: dict[int | None, int] = {}
    for t in TRUTH:
        want[t["dst_port"]] = want.get(t["dst_port"], 0) + t["src_bytes"]
    rows = strict_json(r.stdout)
    assert {d["dst_port"]: d["sum(src_bytes)"] for d in rows} == want
    assert all(type(d["sum(src_bytes)"]) is int for d in rows)
    # -o writes the same bytes, atomically (no temp file left beside it)
    out = tmp_path / "ports.json"
    r2 = run(store, sql, "--format", "json", "-o", str(out))
    assert r2.exit_code == 0 and r2.stdout == "" and out.read_text() == r.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["ports.json"]
    nd = run(store, sql, "--format", "ndjson")
    assert [strict_json(line) for line in nd.stdout.splitlines()] == rows


def test_addresses_text_and_sortable_blob(store: Path) -> None:
    r = run(store, "SELECT src_ip, src_addr FROM flows ORDER BY first_seen LIMIT 3", "--format",
            "csv")  # fmt: skip
    assert r.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 3
    for row in rows:
        mapped = ipaddress.IPv6Address(f"::ffff:{row['src_ip']}").packed.hex()
        assert row["src_addr"] == mapped and len(mapped) == 32


def test_empty_result_in_every_format(store: Path, tmp_path: Path) -> None:
    sql = "SELECT dst_port, sum(src_bytes) AS b FROM flows WHERE false GROUP BY 1"
    assert run(store, sql, "--format", "json").stdout == "[]\n"
    assert run(store, sql, "--format", "ndjson").stdout == ""
    assert run(store, sql, "--format", "csv").stdout == "dst_port,b\n"
    out = tmp_path / "e.parquet"
    assert run(store, sql, "--format", "parquet", "-o", str(out)).exit_code == 0
    t = pq.read_table(out)
    assert t.num_rows == 0 and t.schema.field("b").type == pa.decimal128(38, 0)


@pytest.mark.parametrize(
    "args, message",
    [
        (["SELECT 1 AS a", "--format", "parquet"], "--format parquet writes a binary file"),
        ([], "give a SELECT statement, or --describe"),
        (["SELECT 1", "--describe"], "not both"),
        (["SELECT 1 AS a, 2 AS a", "--format", "json"], "more than one column named 'a'"),
        (["SELECT 1 AS a, 2 AS a", "--format", "ndjson"], "more than one column named 'a'"),
        (["SELECT INTERVAL 1 DAY AS i", "--format", "parquet", "-o", "{tmp}/x.parquet"],
         "Parquet cannot hold the result: column(s) 'i'"),
        (["SELECT 1", "--format", "xml"], "Invalid value for '--format'"),
        (["DELETE FROM flows"], "only one read-only SELECT"),
    ],
)  # fmt: skip
def test_user_mistakes_exit_2_without_traceback(
    store: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    r = run(store, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.exit_code == 2, (r.output, r.stderr)
    assert message in r.stderr
    assert "Traceback" not in r.output + r.stderr
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_describe_lists_every_column_with_its_meaning(store: Path) -> None:
    r = run(store, "--describe", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert {d["view"] for d in rows} == {"flows", "rules", "hosts", "scope"}
    by = {(d["view"], d["column"]): d for d in rows}
    assert by["flows", "src_ip"]["type"] == "VARCHAR"
    assert by["flows", "src_addr"]["type"] == "BLOB"
    assert by["flows", "src_addr"]["meaning"] == FLOW_DESCRIPTIONS["src_addr"]
    assert "text" in by["flows", "src_ip"]["meaning"]
    assert "16 sortable bytes" in by["flows", "src_addr"]["meaning"]
    flows = [d["column"] for d in rows if d["view"] == "flows"]
    assert flows == [*FLOW_SCHEMA.names, "date"]
    for view, (schema, meanings) in RELATIONS.items():
        assert [d["column"] for d in rows if d["view"] == view] == schema.names
        assert all(by[view, c]["meaning"] == meanings[c] for c in schema.names)
    assert all(d["meaning"] for d in rows)
    # the types are those of the store's real view
    real = api.query(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'flows' ORDER BY ordinal_position",
        store=store,
    ).to_pylist()
    assert [(d["column"], d["type"]) for d in rows if d["view"] == "flows"] == [
        (d["column_name"], d["data_type"]) for d in real
    ]
    # no store needed, and the table format lists the same
    t = CliRunner().invoke(cli, ["query", "--describe", "--store", "/nonexistent"])
    assert t.exit_code == 0
    assert [(d["view"], d["column"]) for d in parse_table(t.stdout)] == list(by)
