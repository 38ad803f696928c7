"""The audit engine on Spark: the same questions (``audit/sql/*.sql``) over the same store.

``SparkEngine`` has the methods of ``audit.engine.Engine`` that the audit calls
(``register_*``, ``execute``, ``run``, ``table_from_rows``, ``read_only_query``,
``close``), so ``audit.run`` drives either. Differences, each kept here:

- The SQL is transpiled from DuckDB's dialect at run time (``spark.transpile``); values
  reach Spark only as named parameters of ``spark.sql(text, args=...)``.
- ``flows`` reads exactly the Parquet files the manifests list (never a directory glob:
  an uncommitted file is never read), with the flow schema given (no footer scan; files of
  older versions lack extension columns, which read as null) and the Hive ``date`` taken
  from the paths below ``<store>/flows``.
- A statement that creates a temp table runs once and is kept as a checkpointed
  DataFrame (``localCheckpoint``) under a view name private to this engine.
- Spark has no unsigned integers: results come back as Arrow and are cast to the types
  DuckDB gives for the same columns (the flow schema's, and BIGINT for sums), so the
  report is the same byte for byte.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from flowaudit.audit.engine import RELATIONS, VIEWS
from flowaudit.errors import QueryError, StoreError, UsageError
from flowaudit.schema import FLOW_SCHEMA, PARTITION_FIELD
from flowaudit.spark.transpile import spark_sql, statements, temp_tables

if TYPE_CHECKING:
    from flowaudit.matrix import Matrix

#: where Spark reads the store when its executors do not see the local path: a URI
#: (hdfs://..., s3a://bucket/prefix) holding the same tree; the manifests are still read here
STORE_URI_ENV = "FLOWAUDIT_SPARK_STORE_URI"
#: the views an ad-hoc query sees (those of the DuckDB engine)
QUERY_VIEWS = VIEWS
#: Spark functions that reach outside the data (Java reflection); refused in ad-hoc queries
_FORBIDDEN_FUNCTIONS = ("reflect", "java_method", "try_reflect")

#: unsigned Arrow types → the Spark-readable type that holds them
_SIGNED = {
    pa.uint8(): pa.int16(),
    pa.uint16(): pa.int32(),
    pa.uint32(): pa.int64(),
    pa.uint64(): pa.decimal128(20, 0),
}
#: the type DuckDB gives a result column of this name (the flow schema's)
_RESULT_TYPES = {f.name: f.type for f in FLOW_SCHEMA}


def _spark_type(t: pa.DataType) -> str:
    """The Spark SQL type of a flow column as Spark reads it from Parquet."""
    if t in _SIGNED:
        s = _SIGNED[t]
        return {pa.int16(): "SMALLINT", pa.int32(): "INT", pa.int64(): "BIGINT"}.get(
            s, "DECIMAL(20,0)"
        )
    return {
        pa.string(): "STRING",
        pa.int8(): "TINYINT",
        pa.int16(): "SMALLINT",
        pa.int32(): "INT",
        pa.int64(): "BIGINT",
        pa.binary(16): "BINARY",
        pa.binary(): "BINARY",
        pa.bool_(): "BOOLEAN",
    }.get(t, "TIMESTAMP" if pa.types.is_timestamp(t) else "STRING")


def flows_ddl() -> str:
    """The ``flows`` schema as a Spark DDL string (flow columns, then the ``date`` partition)."""
    cols = [f"`{f.name}` {_spark_type(f.type)}" for f in FLOW_SCHEMA]
    cols.append(f"`{PARTITION_FIELD.name}` DATE")
    return ", ".join(cols)


def spark_arrow(table: pa.Table) -> pa.Table:
    """``table`` with unsigned columns widened to the signed types Spark has."""
    fields = [pa.field(f.name, _SIGNED.get(f.type, f.type), f.nullable) for f in table.schema]
    return table.cast(pa.schema(fields))


def duck_types(table: pa.Table) -> pa.Table:
    """A Spark result cast to the types DuckDB gives the same columns: flow columns get the
    flow schema's type, whole decimals and 32-bit counts BIGINT, timestamps UTC."""
    fields = []
    for f in table.schema:
        t = f.type
        want = _RESULT_TYPES.get(f.name)
        if want is not None and not pa.types.is_timestamp(want):
            t = want
        elif pa.types.is_decimal(t) and t.scale == 0:
            t = pa.int64()
        elif pa.types.is_timestamp(t):
            t = pa.timestamp("us", tz="UTC")
        fields.append(pa.field(f.name, t))
    return table.cast(pa.schema(fields))


def utc_times(table: pa.Table) -> pa.Table:
    """Timestamps as UTC (the session's zone is UTC; Arrow may carry another name for it)."""
    fields = [
        pa.field(f.name, pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))


class SparkEngine:
    """The audit's relations as temp views of one Spark session, private to this engine.

    ``store_uri``: the store's root as the executors reach it (``hdfs://nn/flowaudit-data``,
    ``s3a://bucket/flowaudit-data``); each manifest-listed file is read there under the same
    relative path. The credentials and endpoints are Spark's/Hadoop's (``SPARK_CONF_DIR``),
    never flowaudit's."""

    def __init__(self, spark: Any, *, store_uri: str | None = None) -> None:
        self.spark = spark
        self.store_uri = store_uri
        self._prefix = f"flowaudit_{uuid.uuid4().hex[:10]}_"
        # every relation the audit's SQL names: flows, the engine's registered relations
        # (audit.engine.RELATIONS) and the temp tables its statements create
        views = ("flows", "all_flows", "inner_flows", *QUERY_VIEWS, *RELATIONS, *temp_tables())
        self._names = {name: self._prefix + name for name in views}
        self._frames: dict[str, Any] = {}  # checkpointed temp tables, released by close
        self._text: dict[tuple[str, int], str] = {}  # transpiled text (names renamed)

    # ------------------------------------------------------------------ relations
    def _register(self, name: str, df: Any) -> None:
        df.createOrReplaceTempView(self._names[name])

    def register_flows(self, source: Sequence[Path] | pa.Table, *, inner: bool = False) -> None:
        """``flows`` over exactly these Parquet files (or an Arrow table). The ``date``
        partition comes from each path's ``date=`` folder below the store's ``flows``.
        As on DuckDB (``audit/sql/flow_views.sql``): ``flows`` holds the outer flows the node
        matrix audits and ``inner_flows`` the tunnels' inner flows, or with ``inner`` (query)
        ``flows`` holds both; columns older files lack read as null (the schema is given)."""
        if isinstance(source, pa.Table):
            self._views(self.spark.createDataFrame(spark_arrow(source)), inner)
            return
        paths = [str(p) for p in source]
        if not paths:
            self._views(self.spark.createDataFrame([], flows_ddl()), inner)
            return
        base = _common_flows_dir(paths)
        if self.store_uri:
            local_root = str(Path(base).parent)
            paths = [self.store_uri.rstrip("/") + p[len(local_root) :] for p in paths]
            base = self.store_uri.rstrip("/") + "/flows"
        try:
            df = self.spark.read.schema(flows_ddl()).option("basePath", base).parquet(*paths)
        except Exception as e:
            raise StoreError(f"cannot read the flow store: {_first_line(e)}") from None
        self._views(df, inner)

    def _views(self, df: Any, inner: bool) -> None:
        self._register("all_flows", df)
        self._register("flows", df if inner else df.filter("tunnel IS NULL"))
        self._register("inner_flows", df.filter("tunnel IS NOT NULL"))

    def register_matrix(self, matrix: Matrix) -> None:
        from flowaudit.matrix.compile import relation_rows

        for name, (schema, rows) in relation_rows(matrix).items():
            self.register_rows(name, schema, rows)

    def register_rows(self, name: str, schema: pa.Schema, rows: list[tuple[Any, ...]]) -> None:
        self.register_table(name, rows_table(schema, rows))

    def register_table(self, name: str, table: pa.Table) -> None:
        if name not in self._names:
            raise ValueError(f"not a relation name of the engine: {name}")
        if table.num_rows == 0:
            df = self.spark.createDataFrame([], _ddl(spark_arrow(table).schema))
        else:
            df = self.spark.createDataFrame(spark_arrow(table))
        self._register(name, df)

    def table_from_rows(self, schema: pa.Schema, rows: list[tuple[Any, ...]]) -> pa.Table:
        return rows_table(schema, rows)

    # ------------------------------------------------------------------ statements
    def _steps(self, name: str, params: dict[str, Any]) -> Any:
        """Run every statement of ``name`` but a final SELECT, which is returned as a
        DataFrame (None when the file ends with a CREATE or a DROP)."""
        steps = statements(name)
        last = None
        for i, step in enumerate(steps):
            if step.drops is not None:  # the view goes, its checkpointed rows are released
                self._drop(step.drops)
                continue
            text = self._text.get((name, i))
            if text is None:
                text = self._text[(name, i)] = spark_sql(step.tree, self._names)
            args = {k: params.get(k) for k in step.params}  # a None binds a NULL literal
            try:
                df = self.spark.sql(text, args=args)
                if step.creates is None:
                    last = df
                    continue
                df = df.localCheckpoint(eager=True)  # computed once, lineage cut
            except Exception as e:
                raise QueryError(f"{name}.sql failed on Spark: {_first_line(e)}") from None
            self._drop(step.creates)
            self._frames[step.creates] = df
            self._register(step.creates, df)
        return last

    def _drop(self, name: str) -> None:
        self.spark.catalog.dropTempView(self._names[name])
        df = self._frames.pop(name, None)
        if df is not None:
            df.unpersist()

    def execute(self, name: str, **params: Any) -> None:
        """Run a statement file; a temp table it creates keeps its rows (checkpointed), one
        it drops releases them."""
        self._steps(name, params)

    def run(self, name: str, **params: Any) -> pa.Table:
        """Run a query file (its last statement a SELECT) and return the rows as Arrow."""
        df = self._steps(name, params)
        if df is None:
            raise QueryError(f"{name}.sql ends without a SELECT: no rows to return")
        try:
            return duck_types(df.toArrow())
        except Exception as e:
            raise QueryError(f"{name}.sql failed on Spark: {_first_line(e)}") from None

    def read_only_query(self, text: str) -> pa.Table:
        """One ad-hoc SELECT, written as for DuckDB (``flowaudit query``), transpiled; it may
        read only ``flows``, ``rules``, ``hosts`` and ``scope`` (and its own CTEs)."""
        from flowaudit.spark.transpile import _sqlglot

        sqlglot = _sqlglot()
        exp = sqlglot.exp
        try:
            trees = sqlglot.parse(text, read="duckdb")
        except sqlglot.errors.ParseError as e:
            raise UsageError(f"SQL does not parse: {_first_line(e)}") from None
        trees = [t for t in trees if t is not None]
        if len(trees) != 1 or not isinstance(trees[0], exp.Query):
            raise UsageError("only one read-only SELECT statement is allowed")
        tree = trees[0]
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        for t in tree.find_all(exp.Table):
            if t.db or t.catalog or (t.name not in QUERY_VIEWS and t.name not in ctes):
                raise UsageError(
                    f"query failed: {t.sql(dialect='duckdb')} is not one of the views "
                    f"{', '.join(QUERY_VIEWS)}"
                )
        for f in tree.find_all(exp.Func):
            fname = (f.name if isinstance(f, exp.Anonymous) else f.sql_name()).lower()
            if fname in _FORBIDDEN_FUNCTIONS or isinstance(f, exp.ReadCSV):
                raise UsageError(f"query failed: {fname}() is not allowed in a query")
        if tree.find(exp.QueryTransform, exp.Create, exp.Insert, exp.Command) is not None:
            # SELECT TRANSFORM ... USING 'script' runs a program: never from a query
            raise UsageError("only one read-only SELECT statement is allowed")
        try:
            spark_text = spark_sql(tree, {v: self._names[v] for v in QUERY_VIEWS})
            # the user's columns keep Spark's types (a name says nothing about the values);
            # times are shown in UTC as DuckDB's are
            return utc_times(self.spark.sql(spark_text).toArrow())
        except UsageError:
            raise
        except Exception as e:
            raise UsageError(f"query failed: {_first_line(e)}") from None

    def close(self) -> None:
        """Drop this engine's views and release its checkpointed tables (the session stays)."""
        catalog = self.spark.catalog
        for view in self._names.values():
            try:
                catalog.dropTempView(view)
            except Exception:  # a stopped session has nothing left to drop
                pass
        for df in self._frames.values():
            try:
                df.unpersist()
            except Exception:
                pass
        self._frames.clear()


def rows_table(schema: pa.Schema, rows: list[tuple[Any, ...]]) -> pa.Table:
    cols: dict[str, list[Any]] = {f.name: [] for f in schema}
    for row in rows:
        for f, v in zip(schema, row, strict=True):
            cols[f.name].append(v)
    return pa.Table.from_pydict(cols, schema=schema)


def _ddl(schema: pa.Schema) -> str:
    from pyspark.sql.pandas.types import from_arrow_schema

    out: str = from_arrow_schema(schema).simpleString()
    return out[len("struct<") : -1]


def _common_flows_dir(paths: list[str]) -> str:
    """The ``flows`` folder above the files (``.../flows/date=.../x.parquet``)."""
    p = Path(paths[0])
    for parent in p.parents:
        if parent.name == "flows":
            return str(parent)
    return str(p.parent)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
