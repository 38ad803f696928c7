"""Every audit SQL file transpiles to Spark SQL, with no DuckDB-only form left (no JVM).

The audit's equality tests run the statements the audit uses; this also covers the ones
only other commands run on DuckDB today (finding_flows.sql), so a DuckDB-only construct
added to any .sql file is named here at once."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from flowaudit.spark.transpile import spark_sql, statements, temp_tables

pytestmark = pytest.mark.spark

NAMES = sorted(
    p.name.removesuffix(".sql")
    for p in (files("flowaudit.audit") / "sql").iterdir()
    if p.name.endswith(".sql")
)


@pytest.mark.parametrize("name", NAMES)
def test_transpiles(name: str) -> None:
    import sqlglot

    for step in statements(name):
        if step.drops is not None:  # DROP TABLE x: the engine drops its view
            assert step.drops in temp_tables() and step.tree is None
            continue
        text = spark_sql(step.tree, {"flows": "p_flows", "conv": "p_conv", "rules": "p_rules"})
        code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # the files' comments travel along
        for duckdb_only in ("GETBIT", "::", "$", "[1:", "ARG_MIN", " LIST(", "OVER ()"):
            assert duckdb_only not in code.upper(), duckdb_only
        assert all(f":{p}" in text for p in step.params)
        assert step.creates is None or step.creates in temp_tables()
        # the renamed relations are gone as table names (each kept as its alias, so
        # qualified columns such as conv.conv_id still resolve); the text parses as Spark SQL
        tree = sqlglot.parse_one(text, read="spark")
        assert not {t.name for t in tree.find_all(sqlglot.exp.Table)} & {"flows", "conv", "rules"}


def test_rewrites() -> None:
    assert set(temp_tables()) >= {"conv_raw", "conv", "addr_side", "conv_cp", "conv_match"}
    (step,) = statements("conversations")
    text = spark_sql(step.tree, {})
    assert step.creates == "conv_raw" and step.params == ("service_ports", "since", "until")
    assert "CAST(SUBSTRING(:service_ports, f.src_port + 1, 1) AS INT) = 0" in text
    groups = spark_sql(statements("finding_groups")[-1].tree, {})
    # arg_min(ip, (-bytes, ip), 3): sorted by -bytes, then ip (both ascending), first three
    assert (
        "SLICE(TRANSFORM(ARRAY_SORT(COLLECT_LIST(STRUCT(-bytes AS k0, ip AS k1, ip AS v)), "
        "(l, r) -> CASE WHEN l.k0 < r.k0 THEN -1 WHEN l.k0 > r.k0 THEN 1 ELSE CASE WHEN "
        "l.k1 < r.k1 THEN -1 WHEN l.k1 > r.k1 THEN 1 ELSE 0 END END), e -> e.v), 1, 3)"
    ) in groups
    # list(finding_id ORDER BY bytes DESC, packets DESC, finding_id): DESC flips the sign
    assert (
        "TRANSFORM(ARRAY_SORT(COLLECT_LIST(STRUCT(bytes AS k0, packets AS k1, finding_id AS k2, "
        "finding_id AS v)), (l, r) -> CASE WHEN l.k0 < r.k0 THEN 1 WHEN l.k0 > r.k0 THEN -1 "
    ) in groups
    keys, rows = statements("violations")  # the facts per key, then the findings
    assert (keys.creates, rows.creates) == ("violation_keys", "violation_rows")
    nearest = spark_sql(keys.tree, {})
    assert "MIN_BY(rule_id, STRUCT(score, port_distance, rule_id))" in nearest
    assert rows.params == ("strict",) and keys.params == ()


def test_bare_row_number_becomes_a_unique_id() -> None:
    import sqlglot

    from flowaudit.spark.transpile import _rewrite

    q = "SELECT row_number() OVER () AS k, row_number() OVER (ORDER BY a) AS o FROM t"
    text = sqlglot.parse_one(q, read="duckdb").transform(_rewrite).sql(dialect="spark")
    assert text == (
        "SELECT MONOTONICALLY_INCREASING_ID() + 1 AS k, "
        "ROW_NUMBER() OVER (ORDER BY a NULLS LAST) AS o FROM t"
    )


def test_a_row_id_becomes_a_unique_id() -> None:
    import sqlglot

    from flowaudit.spark.transpile import _rewrite

    q = "SELECT c.rowid + 1 AS conv_id, c.* FROM conv_raw AS c"
    text = sqlglot.parse_one(q, read="duckdb").transform(_rewrite).sql(dialect="spark")
    assert text == "SELECT MONOTONICALLY_INCREASING_ID() + 1 AS conv_id, c.* FROM conv_raw AS c"
    (step, _) = statements("conversation_ids")
    assert "MONOTONICALLY_INCREASING_ID() + 1 AS conv_id" in spark_sql(step.tree, {})


def test_several_statements_and_drops() -> None:
    from flowaudit.spark.transpile import parse_steps

    steps = parse_steps(
        "-- a comment\nCREATE OR REPLACE TEMP TABLE conv AS SELECT a FROM conv_raw WHERE b = $x;\n"
        "DROP TABLE conv_raw;\nDROP TABLE IF EXISTS violation_rows;\n"
    )
    assert [(s.creates, s.params, s.drops) for s in steps] == [
        ("conv", ("x",), None),
        (None, (), "conv_raw"),
        (None, (), "violation_rows"),
    ]
    assert parse_steps("-- only a comment\n") == ()
