"""The Spark backend: the audit's SQL on Spark over the same Parquet store, and ingest
fanned out over Spark's executors (``pip install 'flowaudit[spark]'`` and a Java runtime).

Nothing here is imported on the DuckDB path; pyspark and sqlglot are imported when a
function of this package runs.
"""

from __future__ import annotations

from typing import Any

from flowaudit.spark.engine import SparkEngine
from flowaudit.spark.session import build_session


def session(master: str | None = None) -> Any:
    """A Spark session for flowaudit: ``master`` (else ``$SPARK_MASTER``, else
    ``local[2]``), settings from ``$SPARK_CONF_DIR``; UsageError when pyspark, sqlglot or
    Java is missing or the master is unreachable."""
    return build_session(master)


__all__ = ["SparkEngine", "session"]
