"""The test command: one command in the README, `.ci/run` and `make test`, and under it the
tests marked spark run on one pytest-xdist worker, first (tests/conftest.py's scheduler).

The scheduler is run here on this session's own collection with two stand-in workers, as
pytest-xdist's controller runs it: a grouping that stopped working would only make the suite
slower (a second JVM), never fail a test, so it is pinned here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from testpaths import REPO

COMMAND = "python -m pytest -q -n 2 --dist loadgroup"


def test_readme_ci_and_make_run_the_same_command() -> None:
    assert f"pip install -e '.[dev]' && {COMMAND}\n" in (REPO / "README.md").read_text()
    assert f"\n{COMMAND}\n" in (REPO / ".ci" / "run").read_text()
    make = (REPO / "Makefile").read_text()
    (parallel,) = re.findall(r"^PYTEST_PARALLEL \?= (.*)$", make, re.M)
    assert f"python -m pytest -q {parallel}" == COMMAND
    assert "\tpython -m pytest -q $(PYTEST_PARALLEL)\n" in make
    assert '\tpython -m pytest -q -m "not slow" $(PYTEST_PARALLEL)\n' in make


class _Config:
    """What the scheduler reads of pytest's config under `-n 2 --dist loadgroup`."""

    class option:  # noqa: N801  (pytest's attribute name)
        loadscopereorder = True

    def getvalue(self, name: str) -> Any:
        return {"dist": "loadgroup", "tx": ["2*popen"]}[name]


class _Worker:
    def __init__(self, name: str) -> None:
        self.gateway = type("Gateway", (), {"id": name})()
        self.shutting_down = False
        self.sent: list[list[int]] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.append(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def test_spark_tests_run_on_one_worker_first(request: pytest.FixtureRequest) -> None:
    # this session's collection (the whole suite under the test command), and two of each
    # kind whatever was collected
    items = request.session.items
    stand_ins = ["tests/unit/spark/test_spark_audit.py::test_a[x@y]", "tests/unit/spark/t.py::b"]
    spark = [it.nodeid for it in items if "spark" in it.keywords] + stand_ins
    others = [it.nodeid for it in items if "spark" not in it.keywords]
    others += ["tests/unit/audit/test_a.py::test_a[spark]", "tests/unit/sparkle/t.py::c"]
    ids = spark[::2] + others + spark[1::2]
    conftest = request.config.pluginmanager.get_plugin(str(REPO / "tests" / "conftest.py"))
    sched = conftest.pytest_xdist_make_scheduler(config=_Config(), log=None)
    gw0, gw1 = _Worker("gw0"), _Worker("gw1")
    for w in (gw0, gw1):
        sched.add_node(w)
        sched.add_node_collection(w, ids)
    sched.schedule()
    # the first unit of the first worker is every spark test, and nothing else
    assert sorted(ids[i] for i in gw0.sent[0]) == sorted(spark)
    # the rest go one test at a time to whichever worker is free
    assert all(len(batch) == 1 for batch in gw1.sent)
    assert not {ids[i] for batch in gw1.sent for i in batch} & set(spark)
    # each other test is its own unit: handed out, or waiting
    handed = [ids[i] for batch in gw0.sent[1:] + gw1.sent for i in batch]
    assert sorted(handed + [i for unit in sched.workqueue.values() for i in unit]) == sorted(others)
    assert all(len(unit) == 1 for unit in sched.workqueue.values())
