"""External tools (nfdump, tshark) with bounded output.

A tool can loop on a damaged input: nfdump 1.7.1 prints "Error process appendix record
type: 420" without end (~45 MB/s) for an nfcapd file whose appendix is corrupt, with
``-r`` and with ``-E``. Its messages must fill neither memory (a pytest worker reached
22 GB buffering them) nor the disk, and the run must end: stderr is drained by a thread
that keeps the first ``KEEP`` bytes and stops the tool once it has printed ``LIMIT``;
a captured stdout has a limit of its own. The caller reports ``stopped`` as it would a
failure of the tool, naming the file.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO

#: messages kept for the report (the first lines say what went wrong)
KEEP = 64 << 10
#: a tool that prints more messages than this is looping: it is stopped
LIMIT = 1 << 20
_CHUNK = 64 << 10


class Messages:
    """A tool's stderr, drained by a thread while the caller reads its stdout."""

    def __init__(self, proc: subprocess.Popen[bytes], tool: str, limit: int = LIMIT) -> None:
        assert proc.stderr is not None
        self._proc, self._tool, self._limit = proc, tool, limit
        self._kept = bytearray()
        self.total = 0
        self.stopped: str | None = None  # why the tool was stopped, if it was
        self._thread = threading.Thread(target=self._drain, args=(proc.stderr,), daemon=True)
        self._thread.start()

    def _drain(self, pipe: IO[bytes]) -> None:
        with pipe:
            while chunk := os.read(pipe.fileno(), _CHUNK):
                self.total += len(chunk)
                if len(self._kept) < KEEP:
                    self._kept += chunk[: KEEP - len(self._kept)]
                if self.total > self._limit and self.stopped is None:
                    self.stopped = (
                        f"{self._tool} printed more than {self._limit >> 20} MiB of messages"
                    )
                    _kill(self._proc)

    def lines(self) -> list[str]:
        """The kept messages, one per non-blank line, or when the tool was stopped, why and
        its first message (waits for the tool's stderr to close)."""
        self._thread.join()
        text = self._kept.decode("utf-8", "replace")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if self.stopped:
            return [f"{self.stopped} and was stopped" + (f": {lines[0]}" if lines else "")]
        return lines


def start(
    cmd: Sequence[str], tool: str, env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Messages]:
    """The tool running with its stdout a pipe for the caller and its stderr drained."""
    proc = subprocess.Popen(
        list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env
    )
    return proc, Messages(proc, tool)


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: bytes
    messages: list[str]  # Messages.lines()
    stopped: bool  # the tool was stopped: its output had no end


def run(
    cmd: Sequence[str], tool: str, env: Mapping[str, str] | None = None, out_limit: int = 64 << 20
) -> Run:
    """Run the tool to the end and keep its output, unless it prints more than
    ``out_limit`` bytes or ``LIMIT`` bytes of messages: then it is stopped."""
    proc, messages = start(cmd, tool, env)
    assert proc.stdout is not None
    out = bytearray()
    with proc.stdout:
        while chunk := os.read(proc.stdout.fileno(), _CHUNK):
            out += chunk
            if len(out) > out_limit and messages.stopped is None:
                messages.stopped = f"{tool} printed more than {out_limit >> 20} MiB"
                _kill(proc)
    rc = proc.wait()
    return Run(rc, bytes(out), messages.lines(), messages.stopped is not None)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.kill()
    except OSError:  # it has just ended
        pass
