"""Arguments and inputs at the edges (issue 12): each is a clear error, never a hang, a
traceback or a silent success."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from testpaths import APPROVED, MIXED

from flowaudit.cli import cli


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output
    return r.exit_code, r.output


def test_an_empty_directory_is_nothing_to_ingest(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    code, out = run("ingest", str(tmp_path / "in"), "--store", str(tmp_path / "s"))
    assert code == 2
    assert "no nfcapd.* file in this directory: nothing to ingest" in out
    assert not (tmp_path / "s" / "manifest").exists()


def test_an_endless_device_is_refused_at_once(tmp_path: Path) -> None:
    for fmt in ("zeek", "hubble", "netflow", "auto", "pcap"):
        proc = subprocess.run(
            [sys.executable, "-m", "flowaudit", "ingest", "/dev/zero", "--format", fmt,
             "--store", str(tmp_path / "s")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 2, (fmt, proc.stderr)
        assert "/dev/zero: not a regular file (a device, pipe or socket)" in proc.stderr


def test_a_pipe_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "capture.pcap"
    os.mkfifo(fifo)
    code, out = run("ingest", str(fifo), "--store", str(tmp_path / "s"))
    assert code == 2 and "not a regular file" in out


def test_a_time_with_no_utc_equivalent_is_a_usage_error(tmp_path: Path) -> None:
    for opt in ("--since", "--until"):
        code, out = run("audit", str(APPROVED), opt, "0001-01-01T00:00:00+14:00")
        assert code == 2
        assert "0001-01-01T00:00:00+14:00 is outside the years 1..9999 in UTC" in out


def _fsize_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_a_full_disk_names_the_file_and_leaves_nothing(tmp_path: Path) -> None:
    store = tmp_path / "s"
    proc = subprocess.run(
        [sys.executable, "-m", "flowaudit", "ingest", str(MIXED), "--store", str(store)],
        capture_output=True, text=True, timeout=300, preexec_fn=_fsize_limit,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert f"flowaudit: error: {store}/.tmp/" in proc.stderr
    assert ".parquet: cannot write flows:" in proc.stderr and "File too large" in proc.stderr
    assert "internal error" not in proc.stderr
    left = [p for p in store.rglob("*") if p.is_file() and ".locks" not in p.parts]
    assert left == []  # no flow file, no manifest, no temp file
