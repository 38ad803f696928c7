"""Concurrent `flowaudit ingest` processes on one store: one manifest per capture, no
orphan flow file, exactly one run per capture says "already in the store".

Two ingests of each of two captures are made to meet at the commit: the test holds both
captures' lock files (with its own, live pid) until all four have written their flow
files to ``.tmp/`` and wait, then lets them go at once. Only the idempotency check under
the lock can then tell each capture's loser it lost.
Flow counts come from the generator's ground truth (samples/pcaps/*.truth.summary.json).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import blake3
import pyarrow.parquet as pq
import pytest
from testpaths import APPROVED, MIXED

import flowaudit

pytestmark = pytest.mark.slow
#: the package under test (a mutant's copy in tests/mutation runs), for the child processes
PACKAGE_ROOT = Path(flowaudit.__file__).resolve().parents[1]


def truth_flows(capture: Path) -> int:
    summary = capture.with_name(capture.name.replace(".pcap", ".truth.summary.json"))
    return int(json.loads(summary.read_text())["flows"])


def start_ingest(capture: Path, store: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "flowaudit", "ingest", str(capture), "--store", str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=PACKAGE_ROOT,
    )


def waiting_runs(store: Path) -> int:
    """Ingests that have written their flow files and not committed yet."""
    tmp = store / ".tmp"
    return sum(1 for d in tmp.glob("*") if any(d.glob("*.parquet"))) if tmp.is_dir() else 0


def test_concurrent_ingests_commit_once_and_leave_no_orphan(tmp_path: Path) -> None:
    store = tmp_path / "store"
    sha = {c: blake3.blake3(c.read_bytes()).hexdigest() for c in (MIXED, APPROVED)}
    locks = [store / ".locks" / f"{digest}.lock" for digest in sha.values()]
    locks[0].parent.mkdir(parents=True)
    for lock in locks:  # held by a live process: every ingest waits at its commit
        lock.write_text(str(os.getpid()))

    procs = {c: [start_ingest(c, store) for _ in range(2)] for c in (MIXED, APPROVED)}
    deadline = time.monotonic() + 25  # the ingests give up on a lock after 30 s
    while waiting_runs(store) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert waiting_runs(store) == 4, "all four ingests should wait for their capture's lock"
    for lock in locks:
        lock.unlink()
    outs: dict[Path, list[tuple[int, str]]] = {}
    for capture, ps in procs.items():
        outs[capture] = []
        for p in ps:
            _, err = p.communicate(timeout=120)
            outs[capture].append((p.returncode, err))

    manifests = {p.stem: json.loads(p.read_text()) for p in (store / "manifest").glob("*.json")}
    assert set(manifests) == set(sha.values())
    for capture, runs in outs.items():
        assert [rc for rc, _ in runs] == [0, 0], runs
        already = [err for _, err in runs if "already in the store" in err]
        assert len(already) == 1, runs
        (added,) = [err for _, err in runs if "already in the store" not in err]
        n = truth_flows(capture)
        assert f"{n:,} flows" in added
        m = manifests[sha[capture]]
        assert m["flows"] == n
        assert sum(pq.read_metadata(store / f).num_rows for f in m["files"]) == n
    # every flow file on disk belongs to exactly one manifest, and every listed file exists
    on_disk = sorted(p.relative_to(store).as_posix() for p in (store / "flows").rglob("*.parquet"))
    listed = sorted(f for m in manifests.values() for f in m["files"])
    assert on_disk == listed
    assert not (store / ".tmp").exists() or not any((store / ".tmp").iterdir())
    assert not list((store / ".locks").glob("*"))
