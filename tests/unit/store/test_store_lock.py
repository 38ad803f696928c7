"""Locks record pid, boot id and process start: a dead owner's lock is taken over at once,
with a warning; a lock held too long names its holder and how to clear it. Ingests killed
before or inside the commit leave only what `flowaudit store check --repair` removes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from storetools import killed_ingest
from testpaths import APPROVED, MIXED

import flowaudit.store_check as sc
from flowaudit import api
from flowaudit._util.files import digest_file
from flowaudit.errors import StoreError
from flowaudit.store import FlowStore

COUNT = "SELECT count(*) AS n FROM flows"


def lock_of(store: Path, capture: Path) -> Path:
    return store / ".locks" / f"{digest_file(capture)}.lock"


def count(store: Path) -> int:
    return int(api.query(COUNT, store=store).column("n")[0].as_py())


def test_ingest_killed_inside_the_commit(tmp_path: Path) -> None:
    store = tmp_path / "s"
    api.ingest(MIXED, store)
    pid = killed_ingest(APPROVED, store, "inside-commit")
    lock = lock_of(store, APPROVED)
    owner = json.loads(lock.read_text())
    assert owner["pid"] == pid and set(owner) == {"pid", "boot_id", "start", "host"}
    orphans = sorted((store / "flows").rglob(f"{digest_file(APPROVED)[:16]}-*.parquet"))
    assert len(orphans) == 1 and count(store) == 125  # invisible: no manifest names it
    (run,) = (store / ".tmp").iterdir()
    assert json.loads((run / "owner.json").read_text())["pid"] == pid
    # the next ingest of that capture takes the dead owner's lock over at once, and says so
    t0 = time.monotonic()
    (res,) = api.ingest(APPROVED, store)
    assert time.monotonic() - t0 < 10 and not res.already_ingested
    assert f"{lock}: took over a stale lock (pid {pid} is gone)" in res.warnings
    assert count(store) == 210 and len(FlowStore(store).captures()) == 2
    assert orphans[0].exists() and not lock.exists()


def test_ingest_killed_before_the_commit(tmp_path: Path) -> None:
    store = tmp_path / "s"
    pid = killed_ingest(MIXED, store, "before-commit")
    (run,) = (store / ".tmp").iterdir()
    assert json.loads((run / "owner.json").read_text())["pid"] == pid
    assert any(run.glob("*.parquet")) and FlowStore(store).captures() == []
    (res,) = api.ingest(MIXED, store)
    assert res.flows == 125 and res.warnings == []


def _ingest_with_lock(tmp_path: Path, content: str, mtime: float | None = None) -> list[str]:
    store = tmp_path / "s"
    lock = lock_of(store, APPROVED)
    lock.parent.mkdir(parents=True)
    lock.write_text(content)
    if mtime is not None:
        os.utime(lock, (mtime, mtime))
    t0 = time.monotonic()
    (res,) = api.ingest(APPROVED, store)
    assert time.monotonic() - t0 < 10 and res.flows == 85 and not res.already_ingested
    assert not lock.exists() and count(store) == 85
    return [w.removeprefix(f"{lock}: ") for w in res.warnings]


needs_proc = pytest.mark.skipif(sc.boot_id() is None, reason="no /proc boot id (Linux only)")


@needs_proc
def test_lock_from_another_boot_is_taken_over(tmp_path: Path) -> None:
    me = sc.owner_identity() | {"boot_id": "00000000-0000-0000-0000-000000000000"}
    assert _ingest_with_lock(tmp_path, json.dumps(me)) == [
        f"took over a stale lock (written by pid {me['pid']} before the machine restarted "
        "(boot id 00000000-0000-0000-0000-000000000000))"
    ]


@needs_proc
def test_lock_of_a_reused_pid_is_taken_over(tmp_path: Path) -> None:
    me = sc.owner_identity()
    lock = me | {"start": me["start"] - 1}  # same pid, another process (started earlier)
    assert _ingest_with_lock(tmp_path, json.dumps(lock)) == [
        f"took over a stale lock (pid {me['pid']} now belongs to another process "
        f"(start {me['start']}, not {me['start'] - 1}))"
    ]


@needs_proc
def test_old_pid_only_lock_of_a_reused_pid_is_taken_over(tmp_path: Path) -> None:
    # flowaudit 0.1.0 wrote the pid alone; this process started long after the lock's mtime
    warnings = _ingest_with_lock(tmp_path, str(os.getpid()), mtime=time.time() - 10 * 365 * 86400)
    assert warnings == [
        f"took over a stale lock (pid {os.getpid()} now belongs to a process started after "
        "the lock was written)"
    ]


def test_empty_lock_older_than_a_minute_is_taken_over(tmp_path: Path) -> None:
    (w,) = _ingest_with_lock(tmp_path, "", mtime=time.time() - 120)
    assert w.startswith("took over a stale lock (empty, 12")


def test_dead_pid_lock_is_taken_over(tmp_path: Path) -> None:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    lock = {"pid": p.pid, "boot_id": sc.boot_id(), "start": 1}
    assert _ingest_with_lock(tmp_path, json.dumps(lock)) == [
        f"took over a stale lock (pid {p.pid} is gone)"
    ]


@pytest.mark.parametrize("content", ["live", "", "other host"])
def test_a_held_lock_names_its_holder_and_how_to_clear_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    monkeypatch.setattr(sc, "LOCK_TIMEOUT_S", 0.3)
    store = tmp_path / "s"
    lock = lock_of(store, APPROVED)
    lock.parent.mkdir(parents=True)
    me = sc.owner_identity()
    if content == "other host":  # a store shared between machines: its pids are not ours
        me |= {"host": "elsewhere", "boot_id": "another", "pid": 999_999_999}
    lock.write_text(json.dumps(me) if content else "")
    holder = {
        "live": f"pid {os.getpid()} (alive)",
        "": "a process that has not written its pid",
        "other host": "pid 999999999 on host elsewhere (not judged from this host)",
    }[content]
    with pytest.raises(StoreError) as e:
        api.ingest(APPROVED, store)
    assert str(e.value).startswith(f"{lock}: held for more than 0 s by {holder}")
    assert "delete that lock file (`flowaudit store check --repair` removes stale ones)" in str(
        e.value
    )
    assert lock.exists() and FlowStore(store).captures() == []
    # a lock of a live owner is no problem for `store check`, and --repair leaves it
    res = api.check_store(store, repair=True)
    assert res.problems == [] and lock.exists()
