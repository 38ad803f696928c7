"""Reports written to a device or FIFO (``-o /dev/null``, ``-o >(gzip ...)``) go straight
into it: a temp file renamed onto the path would replace the device with a regular file."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from flowaudit._util.files import write_text_atomic
from flowaudit.report.output import write_atomic, write_stream_atomic


def _read_fifo(path: Path, out: list[bytes]) -> threading.Thread:
    def read() -> None:
        with open(path, "rb") as f:
            out.append(f.read())

    t = threading.Thread(target=read, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("how", ["stream", "text", "util"])
def test_a_fifo_is_written_and_stays_a_fifo(tmp_path: Path, how: str) -> None:
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    if how == "stream":
        write_stream_atomic(fifo, lambda f: f.write(b'{"a": 1}\n'))
    elif how == "text":
        write_atomic(fifo, '{"a": 1}\n')
    else:
        write_text_atomic(fifo, '{"a": 1}\n')
    reader.join(timeout=10)
    assert got == [b'{"a": 1}\n']
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]  # no temp file left


def test_a_regular_file_is_still_replaced_whole(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    out.write_text("old and longer text\n")
    write_stream_atomic(out, lambda f: f.write(b"new\n"))
    assert out.read_bytes() == b"new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
