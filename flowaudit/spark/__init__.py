"""The Spark backend: the audit's SQL on Spark over the same Parquet store, and ingest
fanned out over Spark's executors (``pip install 'flowaudit[spark]'`` and a Java runtime).

Nothing here is imported on the DuckDB path; pyspark and sqlglot are imported when a
function of this package runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flowaudit.spark.engine import SparkEngine
from flowaudit.spark.session import build_session

if TYPE_CHECKING:
    from flowaudit.ingest import IngestResult
    from flowaudit.store import FlowStore


def session(master: str | None = None) -> Any:
    """A Spark session for flowaudit: ``master`` (else ``$SPARK_MASTER``, else
    ``local[2]``), settings from ``$SPARK_CONF_DIR``; UsageError when pyspark, sqlglot or
    Java is missing or the master is unreachable."""
    return build_session(master)


def ingest(
    spark: Any,
    paths: Iterable[str | os.PathLike[str]],
    store: str | os.PathLike[str] | FlowStore,
    *,
    engine: str = "auto",
    format: str = "auto",
    rules: str | os.PathLike[str] | None = None,
    groups: dict[str, list[str]] | None = None,
) -> list[IngestResult]:
    """Ingest capture and record files into ``store`` with one Spark task per file (each
    the normal ingest of that file, committed as a serial ingest commits); results in
    input order. ``rules``/``groups``: the matrix whose service ports orient flows seen
    without a SYN (default the shipped one), as for ``flowaudit.ingest``."""
    from flowaudit.matrix import load_matrix
    from flowaudit.spark.fanout import ingest_paths
    from flowaudit.store import FlowStore

    st = store if isinstance(store, FlowStore) else FlowStore(store)
    from pathlib import Path

    ports = load_matrix(Path(rules) if rules is not None else None, groups).service_ports
    return ingest_paths(spark, paths, st, engine=engine, format=format, service_ports=ports)


__all__ = ["SparkEngine", "ingest", "session"]
