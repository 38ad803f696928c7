"""One Spark session (local[2]) for every test marked ``spark``: a JVM starts once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from benchscripts import load_bench

# The driver JVM compiles with C1 only: a test session is short, and C2's compilations of
# Spark's planner cost more CPU than they save before the JVM exits (the module
# test_spark_audit.py alone: 122-143 s of CPU, JVM included, in four runs with it, 160-178 s
# in three without, on the shared 2-core machine). It collects with the serial GC: the
# driver's heap is small (1g) and G1's concurrent threads cost CPU on two cores (a mixed and
# an approved sample's audit twice, session start included: 67.8-72.4 CPU-s in three runs,
# 72.9-79.7 in four with G1, alternated, at load 6-12). Neither the JIT tier nor the
# collector changes a result; the user's own PYSPARK_SUBMIT_ARGS wins. With C1 only the JVM's
# code cache is 48 MiB: it filled after ~35 s of audits ("CodeCache is full. Compiler has been
# disabled") and later tests ran interpreted; at 240 MiB eight audits of the mixed sample took
# 81 CPU-s (JVM), 99 at 48 MiB, the steady audit 7.3-7.8 s instead of 7.5-10.4 s.
SUBMIT_ARGS = (
    "--driver-java-options="
    "'-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:ReservedCodeCacheSize=240m' pyspark-shell"
)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from flowaudit.spark import session

    with pytest.MonkeyPatch.context() as mp:
        if "PYSPARK_SUBMIT_ARGS" not in os.environ:
            mp.setenv("PYSPARK_SUBMIT_ARGS", SUBMIT_ARGS)
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
