"""The audit engine: owns one DuckDB connection and runs the queries in ``sql/``.

``flows`` (the store's Parquet files, or an Arrow table), ``rules``, ``hosts`` and
``scope`` (the compiled matrix) are registered relations under fixed names; each
question is one ``.sql`` file loaded with ``importlib.resources``; values reach SQL
only as bound parameters. DuckDB errors are translated to QueryError here.
Engine specifics (DuckDB) stay in this module; the SQL is kept portable.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import pyarrow as pa

from flowaudit.errors import QueryError, StoreError, UsageError
from flowaudit.schema import empty_flows

if TYPE_CHECKING:
    from flowaudit.matrix import Matrix

RELATIONS = (
    "rules",
    "hosts",
    "scope",
    "addresses",
    "result_rows",
    "service_ports",
    "control_plane",
    "pod_cidrs",
    "pod_allow",
    "violation_list",
    "cells",
    "difference_texts",
    "coverage_keys",
)
#: connection settings of every engine: the tool works offline, extensions never download
OFFLINE: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
DESCRIBE_SCHEMA = pa.schema([(name, pa.string()) for name in ("view", "column", "type", "meaning")])
#: the views an ad-hoc query (``read_only_query``) sees
VIEWS = ("flows", "rules", "hosts", "scope")
#: DuckDB's memory bound (beyond it, sorts, joins and aggregates spill to the temp
#: directory); FLOWAUDIT_MEMORY_LIMIT overrides it ("2GB", "75%" ... as DuckDB reads them)
MEMORY_LIMIT = "512MB"
MEMORY_ENV = "FLOWAUDIT_MEMORY_LIMIT"

_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.bool_(): "BOOLEAN",
    pa.uint8(): "UTINYINT",
    pa.uint16(): "USMALLINT",
    pa.uint32(): "UINTEGER",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.binary(16): "BLOB",
    pa.binary(): "BLOB",
}


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_list(t):
        return _duck_type(t.value_type) + "[]"
    return _DUCK_TYPES[t]


def _check_name(name: str) -> None:
    if name not in RELATIONS:
        raise ValueError(f"not a relation name of the engine: {name}")


@cache
def load_sql(name: str) -> str:
    """The text of ``flowaudit/audit/sql/<name>.sql``."""
    return (files("flowaudit.audit") / "sql" / f"{name}.sql").read_text(encoding="utf-8")


_INSERT_ROWS = 256  # rows bound in one INSERT by register_rows


class SqlEngine(Protocol):
    """What the audit (``audit.run``) asks of an engine: DuckDB's ``Engine`` here, or the
    Spark backend's ``flowaudit.spark.engine.SparkEngine`` (the same ``sql/*.sql``,
    transpiled at run time)."""

    def register_flows(self, source: Sequence[Path] | pa.Table, *, inner: bool = False) -> None: ...
    def register_matrix(self, matrix: Matrix) -> None: ...
    def register_rows(self, name: str, schema: pa.Schema, rows: list[tuple[Any, ...]]) -> None: ...
    def register_table(self, name: str, table: pa.Table) -> None: ...
    def table_from_rows(self, schema: pa.Schema, rows: list[tuple[Any, ...]]) -> pa.Table: ...
    def execute(self, name: str, **params: Any) -> None: ...
    def run(self, name: str, **params: Any) -> pa.Table: ...
    def read_only_query(self, text: str) -> pa.Table: ...
    def close(self) -> None: ...


class Engine:
    """One DuckDB connection with ``flows``, ``rules``, ``hosts`` and ``scope`` registered.

    Memory is bounded (``MEMORY_LIMIT``, or ``FLOWAUDIT_MEMORY_LIMIT``); what does not fit
    spills into a private directory, ``<store>/.tmp/audit-<run>/`` when ``spill_dir`` (the
    store's root) is given and writable, else a system temp directory, removed by ``close``.
    """

    def __init__(self, *, threads: int | None = None, spill_dir: Path | None = None) -> None:
        # offline by design: never fetch or load an extension behind a query's back
        self.con = duckdb.connect(":memory:", config=dict(OFFLINE))
        self._files: list[str] = []
        self._locked = False
        self.temp_dir: Path | None = None
        try:
            if threads:
                self.con.execute("SET threads = $n", {"n": threads})
            limit = os.environ.get(MEMORY_ENV) or MEMORY_LIMIT
            try:
                self.con.execute("SET memory_limit = $v", {"v": limit})
            except duckdb.Error as e:
                raise UsageError(
                    f"{MEMORY_ENV}={limit!r}: not a memory limit DuckDB reads ({e})",
                    hint="e.g. 512MB, 2GB or 50%",
                ) from None
            # every list a report shows is ordered by its query (ORDER BY); without that
            # guarantee a temp table is built in parallel, not batch by batch in scan order
            self.con.execute("SET preserve_insertion_order = false")
            self.temp_dir = _spill_directory(spill_dir)
            # set before any lock_down: spilling then stays possible in the sandbox
            self.con.execute("SET temp_directory = $v", {"v": str(self.temp_dir)})
        except BaseException:
            self.close()
            raise

    def register_flows(self, source: Sequence[Path] | pa.Table, *, inner: bool = False) -> None:
        """Register the flow views over Parquet files (or an Arrow table): ``flows``, the
        flows the node matrix audits (a tunnel's inner flows carry pod addresses: they are
        in ``inner_flows``), or with ``inner`` every flow (``flowaudit query``). Columns a
        store's older files lack read as null."""
        from flowaudit.schema import FLOW_SCHEMA

        if isinstance(source, pa.Table):
            self.con.register("all_flows", source)
        else:
            paths = [str(p) for p in source]
            self._files = paths
            if not paths:
                self.con.register("all_flows", empty_flows())
            else:
                try:
                    rel = self.con.read_parquet(paths, hive_partitioning=True, union_by_name=True)
                    have = set(rel.columns)
                    # names and types from FLOW_SCHEMA, never from the user
                    added = [
                        f'NULL::{_duck_type(f.type)} AS "{f.name}"'
                        for f in FLOW_SCHEMA
                        if f.name not in have
                    ]
                    if added:
                        rel = rel.project(", ".join(["*", *added]))
                    rel.create_view("all_flows", replace=True)
                except duckdb.Error as e:
                    raise StoreError(f"cannot read the flow store: {e}") from e
        self.execute("flow_views_all" if inner else "flow_views")

    def register_matrix(self, matrix: Matrix) -> None:
        """Load the compiled matrix as the ``rules``, ``hosts`` and ``scope`` relations."""
        from flowaudit.matrix.compile import relation_rows

        for name, (schema, rows) in relation_rows(matrix).items():
            self.register_rows(name, schema, rows)

    def register_rows(self, name: str, schema: pa.Schema, rows: list[tuple[Any, ...]]) -> None:
        """Load Python rows as a temp table of ``schema`` (bound parameters; no Arrow
        conversion in Python, whose ``pa.array`` would import pandas)."""
        _check_name(name)
        cols = ", ".join(f'"{f.name}" {_duck_type(f.type)}' for f in schema)
        marks = ", ".join("?" * len(schema))
        # identifiers come from our own schemas and RELATIONS, never from the user
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({cols})")
        # many rows per INSERT (executemany runs one statement per row: ~16 ms per table)
        for i in range(0, len(rows), _INSERT_ROWS):
            chunk = rows[i : i + _INSERT_ROWS]
            values = ", ".join([f"({marks})"] * len(chunk))
            self.con.execute(f"INSERT INTO {name} VALUES {values}", [v for r in chunk for v in r])

    def register_table(self, name: str, table: pa.Table) -> None:
        """Register an Arrow table (a small result of an earlier query) as ``name``."""
        _check_name(name)
        self.con.register(name, table)

    def table_from_rows(self, schema: pa.Schema, rows: list[tuple[Any, ...]]) -> pa.Table:
        """Python rows → an Arrow table of ``schema``, built by DuckDB."""
        self.register_rows("result_rows", schema, rows)
        return self.con.sql("SELECT * FROM result_rows").to_arrow_table().cast(schema)

    def execute(self, name: str, **params: Any) -> None:
        """Run a statement file (e.g. one that builds a temp table)."""
        self._run(name, params)

    def run(self, name: str, **params: Any) -> pa.Table:
        """Run a query file and return its rows as an Arrow table."""
        try:
            return self.con.sql(load_sql(name), params=params or None).to_arrow_table()
        except duckdb.Error as e:
            raise QueryError(f"{name}.sql failed: {e}") from e

    def lock_down(self) -> None:
        """The sandbox for SQL written by a user: from here on the connection reads only the
        flow files registered as ``flows`` (``allowed_paths``) and its own relations; no
        other file, directory listing or URL (``enable_external_access``), no extension
        installed or loaded, and no setting can be changed back (``lock_configuration``).
        Irreversible: register every relation first."""
        if self._locked:
            return
        for name, value in (
            ("allowed_paths", self._files),
            ("enable_external_access", False),
            ("lock_configuration", True),
        ):
            # the setting names are ours; the values are bound
            self.con.execute(f"SET {name} = $v", {"v": value})
        self._locked = True

    def read_only_query(self, text: str) -> pa.Table:
        """One ad-hoc SELECT (``flowaudit query``, notebooks), run in the sandbox of
        ``lock_down``; anything but a single SELECT is refused before it runs."""
        try:
            statements = duckdb.extract_statements(text)
        except duckdb.Error as e:
            raise UsageError(f"SQL does not parse: {e}") from e
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise UsageError("only one read-only SELECT statement is allowed")
        self.lock_down()
        try:
            return self.con.sql(text).to_arrow_table()
        except duckdb.Error as e:
            raise UsageError(f"query failed: {e}") from e

    def describe(self, view: str) -> list[tuple[str, str]]:
        """(column, DuckDB type) of one of the query views, in order."""
        if view not in VIEWS:
            raise ValueError(f"not a query view: {view}")
        # the name is one of VIEWS, never the user's text
        rows = self.con.sql(f"DESCRIBE {view}").fetchall()
        return [(r[0], r[1]) for r in rows]

    def describe_views(self, matrix: Matrix) -> pa.Table:
        """(view, column, type, meaning) of every query view, as a store shows them: the
        flow columns with their store partition ``date``, and the matrix relations."""
        from flowaudit.matrix.compile import RELATIONS as MATRIX_RELATIONS
        from flowaudit.schema import FLOW_DESCRIPTIONS, PARTITION_FIELD

        flows = empty_flows()
        self.register_flows(flows.append_column(PARTITION_FIELD, pa.nulls(0, PARTITION_FIELD.type)))
        self.register_matrix(matrix)
        meanings = {"flows": FLOW_DESCRIPTIONS}
        meanings.update({name: d for name, (_, d) in MATRIX_RELATIONS.items()})
        rows = [
            (view, col, typ, meanings[view].get(col, ""))
            for view in VIEWS
            for col, typ in self.describe(view)
        ]
        return self.table_from_rows(DESCRIBE_SCHEMA, rows)

    def _run(self, name: str, params: dict[str, Any]) -> Any:
        sql = load_sql(name)
        try:
            return self.con.execute(sql, params or None)
        except duckdb.Error as e:
            raise QueryError(f"{name}.sql failed: {e}") from e

    def close(self) -> None:
        self.con.close()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None


def _spill_directory(store_root: Path | None) -> Path:
    """A fresh directory for DuckDB's spill files: in the store's ``.tmp`` (beside the data,
    with an owner file so `store check` knows a dead audit's leftovers), else system temp."""
    if store_root is not None:
        from flowaudit.store_check import OWNER_FILE, owner_identity

        d = Path(store_root) / ".tmp" / f"audit-{uuid.uuid4().hex[:12]}"
        try:
            d.mkdir(parents=True)
            (d / OWNER_FILE).write_text(json.dumps(owner_identity()), encoding="utf-8")
            return d
        except OSError:  # a read-only store: spill elsewhere
            shutil.rmtree(d, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix="flowaudit-duckdb-"))
