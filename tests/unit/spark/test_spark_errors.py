"""Spark backend failures are one line with what to install or configure, exit 2."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from testpaths import APPROVED

from flowaudit.cli import cli

pytestmark = pytest.mark.spark


def _audit(*extra: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["audit", str(APPROVED), "--backend", "spark", *extra])
    return res.exit_code, res.output


def test_unreachable_master_exit_2() -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out = _audit("--spark-master", f"spark://127.0.0.1:{port}")
    assert code == 2, out
    assert f"the Spark master spark://127.0.0.1:{port} is unreachable" in out
    assert "Traceback" not in out


def test_spark_master_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARK_MASTER", "nonsense://x")
    code, out = _audit()
    assert code == 2 and "'nonsense://x' is not a Spark master URL" in out


def test_no_java_exit_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))  # no bin/java there
    code, out = _audit("--spark-master", "local[1]")
    assert code == 2, out
    assert "needs Java" in out and "openjdk-17-jre-headless" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("module", ["pyspark", "sqlglot"])
def test_no_pyspark_exit_2(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    if module == "pyspark":
        monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    code, out = _audit()
    assert code == 2, out
    assert f"the Spark backend needs {module}" in out
    assert "pip install 'flowaudit[spark]'" in out


def test_spark_master_needs_backend_spark() -> None:
    res = CliRunner().invoke(cli, ["audit", str(APPROVED), "--spark-master", "local[1]"])
    assert res.exit_code == 2 and "--spark-master needs --backend spark" in res.output


def test_spark_conf_dir_master_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No flag, no SPARK_MASTER: spark-defaults.conf of SPARK_CONF_DIR names the master."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "spark-defaults.conf").write_text(
        f"# the cluster\nspark.master  spark://127.0.0.1:{port}\nspark.executor.memory=2g\n"
    )
    monkeypatch.delenv("SPARK_MASTER", raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    code, out = _audit()
    assert code == 2 and f"spark://127.0.0.1:{port} is unreachable" in out
