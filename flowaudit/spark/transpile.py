"""The audit's SQL files, transpiled from DuckDB's dialect to Spark SQL with sqlglot.

The ``.sql`` files in ``flowaudit/audit/sql`` stay the one source of truth; this module
parses each once (cached) and rewrites the few DuckDB forms sqlglot has no Spark
equivalent for into ones that give the same values:

- ``get_bit($bits::BIT, p)`` (a 65536-bit string read by position) becomes
  ``CAST(SUBSTRING($bits, p + 1, 1) AS INT)`` on the same bound string;
- ``list(x ORDER BY k1 DESC, k2)`` (an ordered aggregate) becomes ``collect_list`` of a
  struct sorted with a comparator on the keys, then projected back to ``x``;
- ``list[a:b]`` becomes ``slice(list, a, b - a + 1)``;
- ``arg_min(x, (a, b))`` compares a row, which Spark writes ``struct(a, b)``;
- ``arg_min(x, (a, b), n)`` (the ``x`` of the n smallest keys, smallest first) becomes the
  sorted ``collect_list`` of ``list(x ORDER BY a, b)``, sliced to its first n;
- ``row_number() OVER ()`` (a key in scan order) and a table's ``rowid`` (a key unique
  within the table) become ``monotonically_increasing_id()`` (+ 1 for the row number;
  unique, which is all a key needs; the table holding it is computed once).

Relation names the engine owns (``flows``, ``rules``, ``conv`` ...) are prefixed per
engine, so two audits in one Spark session (a notebook) never see each other's views;
``$name`` parameters become Spark's named parameters ``:name``, bound by ``spark.sql``.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any, NamedTuple

from flowaudit.audit.engine import load_sql


def _sqlglot() -> Any:
    try:
        import sqlglot
    except ImportError:  # pragma: no cover - the extra installs it
        from flowaudit.errors import UsageError

        raise UsageError(
            "the Spark backend needs sqlglot", hint="pip install 'flowaudit[spark]'"
        ) from None
    return sqlglot


def _ordered_list(node: Any) -> Any:
    """``list(x ORDER BY k...)`` → a sorted ``collect_list`` of ``struct(k..., x)``."""
    order = node.this
    return _sorted_list(order.this, [(k.this, bool(k.args.get("desc"))) for k in order.expressions])


def _sorted_list(value: Any, keys: list[tuple[Any, bool]]) -> Any:
    """The values of ``value`` sorted by ``keys`` ((expression, descending) ...), as Spark's
    ``collect_list`` of ``struct(k..., v)`` sorted with a comparator, projected to ``v``."""
    sqlglot = _sqlglot()
    exp = sqlglot.exp
    fields = [f"{k.sql(dialect='spark')} AS k{i}" for i, (k, _) in enumerate(keys)]
    fields.append(f"{value.sql(dialect='spark')} AS v")
    # comparator: the first key that differs decides; DESC flips it
    cmp = "0"
    for i in reversed(range(len(keys))):
        sign = -1 if keys[i][1] else 1
        cmp = (
            f"CASE WHEN l.k{i} < r.k{i} THEN {-sign} WHEN l.k{i} > r.k{i} THEN {sign} "
            f"ELSE {cmp} END"
        )
    text = (
        f"TRANSFORM(ARRAY_SORT(COLLECT_LIST(STRUCT({', '.join(fields)})), (l, r) -> {cmp}), "
        "e -> e.v)"
    )
    return sqlglot.parse_one(text, read="spark").assert_is(exp.Expression)


def _rewrite(node: Any) -> Any:
    exp = _sqlglot().exp
    if isinstance(node, exp.Getbit) and isinstance(node.this, exp.Cast):
        bits = node.this.this
        pos = exp.Add(this=node.expression.copy(), expression=exp.Literal.number(1))
        return exp.Cast(
            this=exp.Substring(this=bits.copy(), start=pos, length=exp.Literal.number(1)),
            to=exp.DataType.build("INT"),
        )
    if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order):
        return _ordered_list(node)
    if isinstance(node, exp.Bracket) and len(node.expressions) == 1:
        s = node.expressions[0]
        if isinstance(s, exp.Slice) and s.this is not None and s.expression is not None:
            start, stop = int(s.this.this), int(s.expression.this)
            return exp.func(
                "SLICE",
                node.this.transform(_rewrite),  # the list may be an ordered aggregate
                exp.Literal.number(start),
                exp.Literal.number(stop - start + 1),
            )
    if (
        isinstance(node, exp.Window)
        and isinstance(node.this, exp.RowNumber)
        and not node.args.get("partition_by")
        and not node.args.get("order")
    ):
        # a bare key (DuckDB numbers rows in scan order): Spark wants an order for
        # row_number, and a unique id is all the key needs
        return exp.Add(
            this=exp.func("MONOTONICALLY_INCREASING_ID"), expression=exp.Literal.number(1)
        )
    if (
        isinstance(node, exp.ArgMin)
        and node.args.get("count") is not None
        and isinstance(node.expression, exp.Tuple)
    ):
        keys = [(k.copy(), False) for k in node.expression.expressions]
        return exp.func(
            "SLICE",
            _sorted_list(node.this.copy(), keys),
            exp.Literal.number(1),
            node.args["count"].copy(),
        )
    if isinstance(node, exp.Column) and node.name.lower() == "rowid":
        return exp.func("MONOTONICALLY_INCREASING_ID")
    if isinstance(node, exp.ArgMin | exp.ArgMax) and isinstance(node.expression, exp.Tuple):
        node.set("expression", exp.Struct(expressions=node.expression.expressions))
    return node


class Step(NamedTuple):
    """One statement of a ``.sql`` file, ready for Spark."""

    tree: Any  #: the SELECT's syntax tree (None for a DROP)
    creates: str | None  #: the temp table it creates (CREATE ... TABLE name AS SELECT)
    params: tuple[str, ...]  #: the parameter names it binds
    drops: str | None  #: the temp table it drops (DROP TABLE name)


@cache
def statements(name: str) -> tuple[Step, ...]:
    """``sql/<name>.sql`` parsed and rewritten for Spark, statement by statement (a file may
    hold several, e.g. a CREATE then the DROP of what it replaced; none when it holds only
    comments)."""
    return parse_steps(load_sql(name))


def parse_steps(text: str) -> tuple[Step, ...]:
    """The statements of ``text`` (DuckDB's dialect) as Spark steps."""
    sqlglot = _sqlglot()
    exp = sqlglot.exp
    out: list[Step] = []
    for tree in sqlglot.parse(text, read="duckdb"):
        if tree is None:
            continue
        if isinstance(tree, exp.Drop):
            out.extend(Step(None, None, (), t.name) for t in tree.args.get("tables") or ())
            continue
        creates = None
        if isinstance(tree, exp.Create):
            creates = tree.this.name
            tree = tree.expression
        tree = tree.transform(_rewrite)
        params = tuple(sorted({p.name for p in tree.find_all(exp.Placeholder)}))
        out.append(Step(tree, creates, params, None))
    return tuple(out)


@cache
def temp_tables() -> tuple[str, ...]:
    """The temp tables the audit's statements create (``CREATE ... TABLE name AS``)."""
    sql = files("flowaudit.audit") / "sql"
    names = sorted(p.name[: -len(".sql")] for p in sql.iterdir() if p.name.endswith(".sql"))
    return tuple(sorted({s.creates for n in names for s in statements(n) if s.creates}))


def sqlglot_error_level() -> Any:
    return _sqlglot().ErrorLevel.RAISE


def spark_sql(tree: Any, rename: dict[str, str]) -> str:
    """The Spark SQL text of ``tree`` with the engine's relations renamed (``rename``)."""
    exp = _sqlglot().exp
    cte_names = {c.alias_or_name for c in tree.find_all(exp.CTE)}

    def table(node: Any) -> Any:
        if isinstance(node, exp.Table) and not node.db and node.name not in cte_names:
            new = rename.get(node.name)
            if new is not None:
                alias = node.alias or node.name  # `conv.conv_id` still names the column
                node = node.copy()
                node.set("this", exp.to_identifier(new))
                node.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
        return node

    raise_ = sqlglot_error_level()
    out: str = tree.transform(table).sql(dialect="spark", unsupported_level=raise_)
    return out
