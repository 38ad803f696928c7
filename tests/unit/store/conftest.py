"""A real store of both samples (ingested once per session), copied for each test to corrupt."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from testpaths import APPROVED, MIXED

from flowaudit import api
from flowaudit._util.files import sha256_file


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


def manifest(store: Path, capture: Path) -> Path:
    return store / "manifest" / f"{sha256_file(capture)}.json"


def load(store: Path, capture: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(manifest(store, capture).read_text())
    return data


def save(store: Path, capture: Path, data: dict[str, Any]) -> Path:
    p = manifest(store, capture)
    p.write_text(json.dumps(data, indent=2))
    return p
