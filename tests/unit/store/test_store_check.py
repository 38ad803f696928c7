"""`flowaudit store check [--repair] [--verify-digests]`: finds every problem of a real store
(exit 1), repairs exactly the removable ones (orphans, dead .tmp runs, stale locks), and a
second check is clean (exit 0)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from storetools import killed_ingest, load, manifest, save
from testpaths import APPROVED, MIXED

from flowaudit import api
from flowaudit._util.files import digest_file
from flowaudit.cli import cli

SUMMARY = "2 capture(s), 2 flow file(s), 210 flows"


def check(store: Path, *flags: str) -> Any:
    return CliRunner().invoke(cli, ["store", "check", "--store", str(store), *flags])


def problems(out: str) -> list[str]:
    lines = out.splitlines()
    return [line.removeprefix("problem: ") for line in lines if line.startswith("problem: ")]


def files(store: Path) -> list[str]:
    return sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file())


def test_a_clean_store(store: Path) -> None:
    r = check(store, "--verify-digests")
    assert r.exit_code == 0, r.output
    assert r.stdout == f"{store}: {SUMMARY}; store OK\n"


def test_no_store_is_bad_usage(tmp_path: Path) -> None:
    r = check(tmp_path / "nope")
    assert r.exit_code == 2 and "no flow store here" in r.stderr


def _corrupt(store: Path, kind: str) -> str:
    """Corrupt the approved sample's manifest or file; the problem check must report."""
    data = load(store, APPROVED)
    (own,) = data["files"]
    (other,) = load(store, MIXED)["files"]
    name = manifest(store, APPROVED).name
    m = f"manifest/{name}"
    if kind == "wrong type":
        data["flows"] = "85"
        want = f'{m}: manifest field flows is a string ("85"), expected an integer >= 0'
    elif kind == "unknown key":
        data |= {"provenance": "tap-3", "flowaudit_version": "0.3.0"}
        want = f"{m}: written by flowaudit 0.3.0 (manifest key provenance unknown to 0.1.0)"
    elif kind == "listed twice":
        data["files"] = [own, own]
        want = f"{m}: lists {own} twice (read once)"
    elif kind == "directory":
        data["files"].append("flows/date=2026-11-20")
        want = f"{m}: names flows/date=2026-11-20, not a flow file (not read)"
    elif kind == "listed by two manifests":
        data["files"].append(other)
        mixed = manifest(store, MIXED).name
        want = f"{m}: names {other}, a file of {mixed} (read once, for that capture)"
    elif kind == "outside":
        data["files"].append("../x.parquet")
        (store.parent / "x.parquet").write_bytes((store / own).read_bytes())
        want = f"{m}: names ../x.parquet, outside the store's flows/ (not read)"
    elif kind == "missing":
        (store / own).unlink()
        want = f"{m}: names {own}, which is missing"
    elif kind == "other schema":
        t = pq.read_table(store / own)
        pq.write_table(t.append_column("note", pa.array(["x"] * t.num_rows)), store / own)
        want = f"{own}: columns differ from flow schema v1 (missing [], extra ['note'])"
        want += f" (named by {name})"
    elif kind == "wrong count":
        data["flows"] = 86
        want = f"{m}: says 86 flows, its files hold 85"
    save(store, APPROVED, data)
    return want


KINDS = ["wrong type", "unknown key", "listed twice", "directory", "listed by two manifests",
         "outside", "missing", "other schema", "wrong count"]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_each_manifest_problem_is_found_and_never_repaired(store: Path, kind: str) -> None:
    want = _corrupt(store, kind)
    before = files(store)
    r = check(store)
    assert r.exit_code == 1, r.output
    assert problems(r.stdout) == [want]
    assert r.stdout.splitlines()[-1].endswith("; 1 problem(s)")
    r = check(store, "--repair")
    assert r.exit_code == 1 and problems(r.stdout) == [want] and "removed" not in r.stdout
    assert files(store) == before  # a file a manifest names is never removed


def _owner(run: Path) -> int:
    pid: int = json.loads((run / "owner.json").read_text())["pid"]
    return pid


def test_killed_ingests_leave_only_what_repair_removes(store: Path, tmp_path: Path) -> None:
    capture = tmp_path / "again.pcap"  # another capture (other bytes): a third manifest
    capture.write_bytes(MIXED.read_bytes() + b"\0" * 16)
    pid1 = killed_ingest(capture, store, "before-commit")
    pid2 = killed_ingest(capture, store, "inside-commit")
    digest = digest_file(capture)
    (orphan,) = (store / "flows").rglob(f"{digest[:16]}-*.parquet")
    runs = sorted((store / ".tmp").iterdir(), key=lambda p: _owner(p) != pid1)
    junk = store / "manifest" / f".{digest}.json.0123abcd.tmp"  # a manifest write cut short
    junk.write_text("{")
    os.utime(junk, (time.time() - 120, time.time() - 120))
    rel = orphan.relative_to(store)
    want = sorted(
        [
            f".locks/{digest}.lock: stale lock (pid {pid2} is gone)",
            f".tmp/{runs[0].name}: unfinished ingest, its owner is dead (pid {pid1} is gone)",
            f".tmp/{runs[1].name}: unfinished ingest, its owner is dead (pid {pid2} is gone)",
            f"manifest/{junk.name}: unfinished manifest write",
            f"{rel}: orphan flow file, no manifest names it (left by an ingest killed while "
            "committing)",
        ]
    )
    r = check(store)
    assert r.exit_code == 1, r.output
    assert sorted(problems(r.stdout)) == [f"{w}  [--repair removes it]" for w in want]
    last = f"{store}: {SUMMARY}; 5 problem(s) (5 removable with --repair)"
    assert r.stdout.splitlines()[-1] == last
    r = check(store, "--repair")
    assert r.exit_code == 0, r.output
    removed = sorted(line.removeprefix("removed: ") for line in r.stdout.splitlines()[:-1])
    assert removed == want
    assert r.stdout.splitlines()[-1] == f"{store}: {SUMMARY}; 5 problem(s) repaired, store OK"
    assert not orphan.exists() and not junk.exists() and not any((store / ".tmp").iterdir())
    r = check(store)
    assert r.exit_code == 0 and r.stdout == f"{store}: {SUMMARY}; store OK\n"
    assert api.query("SELECT count(*) AS n FROM flows", store=store).to_pylist() == [{"n": 210}]
    # and the capture ingests normally afterwards
    (res,) = api.ingest(capture, store)
    # the 16 zero bytes appended are a record header of an empty frame: skipped, and said
    assert res.flows == 125 and res.skipped == 1
    assert res.warnings == [f"{capture}: 1 frame(s) truncated (shorter than the headers they "
                            "announce) skipped"]  # fmt: skip
    assert check(store).exit_code == 0


def test_work_of_a_running_ingest_is_left_alone(store: Path) -> None:
    from flowaudit.store_check import owner_identity

    me = json.dumps(owner_identity())
    digest = "ab" * 32
    (store / ".locks" / f"{digest}.lock").write_text(me)  # committing right now
    committing = store / "flows" / "date=2026-11-20" / f"{digest[:16]}-0123456789ab-00000.parquet"
    shutil.copy(next((store / "flows").rglob("*.parquet")), committing)
    run = store / ".tmp" / "0123456789ab"
    run.mkdir(parents=True)
    (run / "owner.json").write_text(me)
    fresh = store / ".tmp" / "ba9876543210"  # just created, owner not written yet
    fresh.mkdir()
    r = check(store, "--repair")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[:2] == [
        f"note: .locks/{digest}.lock: held by a running ingest",
        f"note: {committing.relative_to(store)}: being committed by a running ingest",
    ]
    assert committing.exists() and run.exists() and fresh.exists()


def test_verify_digests(store: Path, tmp_path: Path) -> None:
    capture = tmp_path / "copy.pcap"  # other bytes than the sample's: a manifest of its own
    capture.write_bytes(APPROVED.read_bytes() + b"\0" * 16)
    (res,) = api.ingest(capture, store)
    assert not res.already_ingested
    digest = digest_file(capture)
    assert check(store, "--verify-digests").exit_code == 0
    with capture.open("ab") as f:
        f.write(b"\0")
    r = check(store)
    assert r.exit_code == 0  # digests are re-verified only when asked
    r = check(store, "--verify-digests")
    assert r.exit_code == 1
    assert problems(r.stdout) == [
        f"manifest/{digest}.json: capture {capture} changed since ingest "
        f"(blake3 {digest_file(capture)})"
    ]
    capture.unlink()
    r = check(store, "--verify-digests")
    assert r.exit_code == 0
    note = f"note: manifest/{digest}.json: capture {capture} is gone; digest not verified"
    assert note in r.stdout


def test_a_stray_file_is_reported_not_removed(store: Path) -> None:
    stray = store / "flows" / "date=2026-11-20" / "notes.txt"
    stray.write_text("mine")
    r = check(store, "--repair")
    assert r.exit_code == 1 and stray.exists()
    assert problems(r.stdout) == [
        "flows/date=2026-11-20/notes.txt: not a flow file (no manifest names it)"
    ]


def test_an_unreadable_manifest_protects_its_files(store: Path) -> None:
    p = manifest(store, APPROVED)
    (own,) = load(store, APPROVED)["files"]
    p.write_text("{not json")
    r = check(store, "--repair")
    assert r.exit_code == 1
    assert problems(r.stdout) == [
        f"manifest/{p.name}: manifest is not valid JSON: Expecting property name enclosed in "
        "double quotes: line 1 column 2 (char 1)",
        f"{own}: no readable manifest names it (kept: {p.name} cannot be read)",
    ]
    assert (store / own).exists()
