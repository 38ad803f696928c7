"""A real store of both samples (ingested once per session), copied for each test to corrupt."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from testpaths import APPROVED, MIXED

from flowaudit import api


@pytest.fixture(scope="session")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pristine") / "s"
    api.ingest([MIXED, APPROVED], root)
    return root


@pytest.fixture
def store(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of the two-sample store (125 + 85 = 210 flows)."""
    dst = tmp_path / "s"
    shutil.copytree(pristine, dst)
    return dst
