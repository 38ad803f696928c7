"""One Spark session (local[2]) for every test marked ``spark``: a JVM starts once."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from testpaths import REPO


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from flowaudit.spark import session

    s = session("local[2]")
    yield s
    s.stop()


def load_bench_audit() -> ModuleType:
    """benchmarks/bench_audit.py (a script; its synthetic store builders), imported by path."""
    if "bench_audit" in sys.modules:
        return sys.modules["bench_audit"]
    spec = importlib.util.spec_from_file_location(
        "bench_audit", REPO / "benchmarks" / "bench_audit.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_audit"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def store_1m(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of 1,000,000 synthetic VLAN 111 flows (benchmarks/bench_audit.py's builder:
    approved traffic between the deployment's hosts and four kinds of violation)."""
    store = tmp_path_factory.mktemp("store1m") / "store"
    load_bench_audit().build_store(store, 1_000_000, seed=3)
    return store
