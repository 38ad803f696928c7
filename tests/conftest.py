"""Shared test fixtures. Tests use real DuckDB, real Parquet and real tshark."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent


# Property tests (tests/unit/*/test_*_properties.py): the `ci` profile's bounded example count
# wherever the suite runs (the README's test command is CI's: one suite, one time budget,
# issue 18), more when asked: --hypothesis-profile=dev (100) or thorough (2000).
# No deadline: the machine is shared and the first example may build the numba kernels.
_PROFILE = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow], "print_blob": True}
settings.register_profile("ci", max_examples=50, **_PROFILE)
settings.register_profile("mutation", max_examples=25, **_PROFILE)  # tests/mutation runs
settings.register_profile("dev", max_examples=100, **_PROFILE)
settings.register_profile("thorough", max_examples=2000, **_PROFILE)
settings.load_profile("ci")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", help="rewrite tests/data/expected/* goldens"
    )


# marker → the program its tests run (installed by .ci/run; skipped elsewhere with a reason)
TOOLS = {
    "tshark": "tshark",
    "nfdump": "nfdump",
    "softflowd": "softflowd",
    "chromium": "chromium",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tests/e2e runs the samples, the notebooks and the daily job end to end: slow by nature
    # (`make test-fast` leaves them out); tests/unit mirrors the packages of flowaudit/
    # `make test-fast` (-m "not slow") is the inner loop: it also leaves out what runs an
    # external tool (tshark, nfdump, softflowd, chromium) and the property-based modules
    # (hypothesis draws dozens of audits each); CI runs everything
    for item in items:
        if (
            "e2e" in item.path.parts
            or item.path.name.endswith("_properties.py")
            or any(marker in item.keywords for marker in TOOLS)
        ):
            item.add_marker(pytest.mark.slow)
    for marker, program in TOOLS.items():
        if shutil.which(program):
            continue
        used = [item for item in items if marker in item.keywords]
        if not used:
            continue
        if os.environ.get("CI"):
            # a skip must never hide a missing tool in CI: fail loudly instead
            raise pytest.UsageError(
                f"{program} is not installed but CI is set: .ci/run must install it"
            )
        skip = pytest.mark.skip(reason=f"{program} not installed (apt-get install {program})")
        for item in used:
            item.add_marker(skip)
    _spark_marker(items)


def _spark_marker(items: list[pytest.Item]) -> None:
    """Tests marked ``spark`` need pyspark and sqlglot (the extra) and a Java runtime:
    slow (a JVM), failed in CI when missing, skipped elsewhere with the reason."""
    used = [item for item in items if "spark" in item.keywords]
    if not used:
        return
    import importlib.util

    for item in used:
        item.add_marker(pytest.mark.slow)
        if SPARK_DIR not in item.path.parents:
            # the parallel run groups them by folder (pytest_xdist_make_scheduler below)
            raise pytest.UsageError(f"{item.nodeid}: a test marked spark belongs in {SPARK_DIR}")
    missing = [m for m in ("pyspark", "sqlglot") if importlib.util.find_spec(m) is None]
    java = os.environ.get("JAVA_HOME")
    if not (
        os.access(os.path.join(java, "bin", "java"), os.X_OK) if java else shutil.which("java")
    ):
        missing.append("java")
    if not missing:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(
            f"{', '.join(missing)} missing but CI is set: .ci/run must install "
            "openjdk-17-jre-headless and .[dev] (which includes the spark extra)"
        )
    skip = pytest.mark.skip(
        reason=f"{', '.join(missing)} missing (pip install '.[spark]'; "
        "apt-get install openjdk-17-jre-headless)"
    )
    for item in used:
        item.add_marker(skip)


# The README's test command runs the suite on two pytest-xdist workers (`-n 2 --dist
# loadgroup`). The tests marked spark share one SparkSession (tests/unit/spark/conftest.py: one
# JVM, and the CLI's getOrCreate finds it), so one worker runs them all, and first: they are
# the longest group, the other worker takes the rest meanwhile. They are grouped by folder
# (a test marked spark elsewhere is refused above), not by an xdist_group mark: pytest-xdist
# 3.8 renames the node id to carry the group, which pytest 9's node ids no longer let it do
# (pytest-dev/pytest-xdist#1386), and the grouping silently stopped.
SPARK_DIR = Path(__file__).parent / "unit" / "spark"
_SPARK_PREFIX = SPARK_DIR.relative_to(REPO).as_posix() + "/"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None  # xdist's own scheduler for the mode asked for
    from xdist.scheduler import LoadGroupScheduling

    class SparkOnOneWorker(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(_SPARK_PREFIX):
                return "spark"
            return str(super()._split_scope(nodeid))

    return SparkOnOneWorker(config, log)


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
