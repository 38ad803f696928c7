"""The Spark session the CLI audits with: checked before it starts, failures in one line.

``--spark-master`` (else ``SPARK_MASTER``, else ``local[2]``) names the master; the rest of
the configuration is the user's own (``SPARK_CONF_DIR``'s ``spark-defaults.conf``, as
``spark-submit`` reads it: object-storage settings, executors, memory). A notebook on a
cluster passes its existing session through the API instead and none of this runs.
No Java, no pyspark or an unreachable master is a UsageError naming what to install or
configure (exit 2), never a Java stack trace.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import warnings
from typing import Any
from urllib.parse import urlsplit

from flowaudit.errors import UsageError

MASTER_ENV = "SPARK_MASTER"
DEFAULT_MASTER = "local[2]"
#: how long a standalone master may take to accept a connection before it is unreachable
CONNECT_TIMEOUT = 5.0
INSTALL_HINT = "pip install 'flowaudit[spark]' (pyspark and sqlglot)"
JAVA_HINT = (
    "install a Java 17 runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) "
    "or set JAVA_HOME"
)


def master_url(master: str | None = None) -> str:
    """The master to use: ``master``, else ``SPARK_MASTER``, else ``spark.master`` of
    ``$SPARK_CONF_DIR/spark-defaults.conf``, else ``local[2]``."""
    return master or os.environ.get(MASTER_ENV) or _conf_dir_value("spark.master") or DEFAULT_MASTER


def require_pyspark() -> Any:
    """The ``pyspark.sql`` module, or a UsageError saying what to install."""
    try:
        import pyspark.sql
    except ImportError:
        raise UsageError("the Spark backend needs pyspark", hint=INSTALL_HINT) from None
    try:
        import sqlglot  # noqa: F401  (the transpiler: needed before any query)
    except ImportError:
        raise UsageError("the Spark backend needs sqlglot", hint=INSTALL_HINT) from None
    return pyspark.sql


def java_available() -> bool:
    """A ``java`` that pyspark will launch: ``$JAVA_HOME/bin/java`` or one on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        return os.access(os.path.join(home, "bin", "java"), os.X_OK)
    return shutil.which("java") is not None


def check_master(master: str) -> None:
    """Refuse a master URL this process cannot use before the JVM starts: a standalone
    ``spark://host:port`` must accept a TCP connection (else the driver waits ~60 s and
    fails in the logs); ``local``, ``local[N]``, ``local[*]``, ``yarn`` and ``k8s://``
    are left to Spark."""
    if master.startswith("spark://"):
        for hostport in master[len("spark://") :].split(","):
            u = urlsplit(f"spark://{hostport}")
            host, port = u.hostname, u.port or 7077
            try:
                with socket.create_connection((host or "", port), timeout=CONNECT_TIMEOUT):
                    return
            except OSError as e:
                why = e.strerror or str(e) or type(e).__name__
                last = f"{host}:{port}: {why}"
        raise UsageError(
            f"the Spark master {master} is unreachable ({last})",
            hint=f"check --spark-master / {MASTER_ENV}, or use local[N] to run here",
        )
    if not master.startswith(("local", "yarn", "k8s://", "mesos://")):
        raise UsageError(
            f"{master!r} is not a Spark master URL",
            hint="local[N], spark://HOST:PORT, yarn or k8s://https://HOST:PORT",
        )


def build_session(master: str | None = None, app_name: str = "flowaudit") -> Any:
    """A Spark session for the audit (created, or Spark's active one for this master).

    Session settings the audit needs whatever the user's configuration: the session time
    zone is UTC (flow times are UTC; reports print them as such). In local mode the shuffle
    has as many partitions as cores x 2 (Spark's 200 would be 200 tasks per small stage)
    unless ``SPARK_CONF_DIR`` sets ``spark.sql.shuffle.partitions``; the web UI is off."""
    sql = require_pyspark()
    url = master_url(master)
    check_master(url)
    if not java_available():
        raise UsageError("the Spark backend needs Java, and no java was found", hint=JAVA_HINT)
    builder = sql.SparkSession.builder.master(url).appName(app_name)
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    if url.startswith("local"):
        builder = builder.config("spark.ui.enabled", "false")
        if not _conf_dir_sets("spark.sql.shuffle.partitions"):
            builder = builder.config("spark.sql.shuffle.partitions", str(2 * _local_cores(url)))
        if not _conf_dir_sets("spark.pyspark.python"):
            # local workers run this interpreter (its flowaudit, pyarrow), not whatever
            # python3 comes first on PATH (pyspark reads only the variable for that)
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        with warnings.catch_warnings():  # pyspark's note on pandas versions: not ours to act on
            warnings.simplefilter("ignore", FutureWarning)
            spark = builder.getOrCreate()
            if not _conf_dir_sets("spark.log.level"):
                spark.sparkContext.setLogLevel("ERROR")  # Spark's own warnings are not ours
            return spark
    except Exception as e:  # the JVM did not start: Java missing or broken, bad settings
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UsageError(
            f"Spark did not start ({first})",
            hint=f"{JAVA_HINT}; check SPARK_CONF_DIR and --spark-master",
        ) from None


def _local_cores(url: str) -> int:
    inner = url[url.find("[") + 1 : url.find("]")] if "[" in url else "1"
    inner = inner.split(",")[0]
    if inner == "*":
        return os.cpu_count() or 1
    try:
        return max(1, int(inner))
    except ValueError:
        return 1


def _conf_dir_value(key: str) -> str | None:
    """``key``'s value in ``$SPARK_CONF_DIR/spark-defaults.conf`` (as spark-submit reads it:
    ``key value`` or ``key=value`` per line), or None."""
    conf_dir = os.environ.get("SPARK_CONF_DIR")
    if not conf_dir:
        return None
    try:
        with open(os.path.join(conf_dir, "spark-defaults.conf"), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = re.split(r"\s*=\s*|\s+", line.strip(), maxsplit=1)
        if parts[0] == key and not line.lstrip().startswith("#"):
            return parts[1].strip() if len(parts) > 1 else ""
    return None


def _conf_dir_sets(key: str) -> bool:
    return _conf_dir_value(key) is not None
