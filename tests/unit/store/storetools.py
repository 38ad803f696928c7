"""Helpers of the store tests: read and corrupt manifests, kill an ingest midway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from testpaths import REPO

from flowaudit._util.files import digest_file


def manifest(store: Path, capture: Path) -> Path:
    return store / "manifest" / f"{digest_file(capture)}.json"


def load(store: Path, capture: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(manifest(store, capture).read_text())
    return data


def save(store: Path, capture: Path, data: dict[str, Any]) -> Path:
    p = manifest(store, capture)
    p.write_text(json.dumps(data, indent=2))
    return p


KILLED = """
import os, signal, sys
import flowaudit.store as store
from flowaudit import api

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

class Die:  # the writer's lock: reached once every flow file is written under .tmp/<run>
    def __init__(self, path):
        pass

    __enter__ = __exit__ = die


if sys.argv[3] == "before-commit":
    store.Lock = Die
else:  # inside the commit: flow files renamed into flows/, manifest not yet written
    store.atomic_write_text = die
api.ingest(sys.argv[1], sys.argv[2])
"""


def killed_ingest(capture: Path, store: Path, where: str) -> int:
    """Ingest in a child process that is SIGKILLed at ``where``; returns its pid."""
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    p = subprocess.Popen([sys.executable, "-c", KILLED, str(capture), str(store), where], env=env)
    assert p.wait(timeout=120) == -signal.SIGKILL
    return p.pid
