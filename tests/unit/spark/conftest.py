"""One Spark session (local[2]) for every test marked ``spark``: a JVM starts once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from benchscripts import load_bench


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from flowaudit.spark import session

    s = session("local[2]")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def store_1m(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of 1,000,000 synthetic VLAN 111 flows (benchmarks/bench_audit.py's builder:
    approved traffic between the deployment's hosts and four kinds of violation)."""
    store = tmp_path_factory.mktemp("store1m") / "store"
    load_bench("bench_audit").build_store(store, 1_000_000, seed=3)
    return store
