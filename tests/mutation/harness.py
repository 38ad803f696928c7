"""Run tests against one mutant at a time, in a copy of the package (never the checkout).

``Sandbox`` copies ``flowaudit/`` into a temporary directory and links everything else
the tests read (tests, rules, samples, benchmarks, pyproject.toml); pytest runs there
with the copy first on ``sys.path``. A mutant is one exact text replacement in one file
of the copy; the file is restored before the next mutant. A mutant is *killed* when the
tests fail (or time out), *survived* when they pass, an *error* when pytest cannot run
them (a collection error, no test selected).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINKED = ("tests", "rules", "samples", "benchmarks", "pyproject.toml")


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository, e.g. flowaudit/audit/sql/violations.sql
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]
    why: str = ""


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    status: str  # killed | survived | timeout | error
    seconds: float
    tail: str


class Sandbox:
    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(
            REPO / "flowaudit",
            root / "flowaudit",
            ignore=shutil.ignore_patterns("__pycache__", "*.so"),
        )
        for name in LINKED:
            (root / name).symlink_to(REPO / name)
        # kernel mutants rebuild the compiled unit: keep that build out of the shared cache
        self.kcache = root / "kcache"

    def run(self, m: Mutant, timeout: float, extra: Sequence[str] = ()) -> Outcome:
        target = self.root / m.path
        original = target.read_text()
        if m.old != m.new:
            found = original.count(m.old)
            if found != 1:
                raise ValueError(f"{m.name}: {m.old!r} occurs {found} times in {m.path}")
            target.write_text(original.replace(m.old, m.new))
        env = {**os.environ, "PYTHONPATH": str(self.root)}
        if m.path.startswith("flowaudit/kernels/"):
            env["FLOWAUDIT_CACHE_DIR"] = str(self.kcache)
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "-m", "", "--no-header", *extra, *m.tests]  # fmt: skip
        t0 = time.monotonic()
        try:
            r = subprocess.run(
                cmd, cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout
            )
            status = {0: "survived", 1: "killed"}.get(r.returncode, "error")
            tail = (r.stdout + r.stderr).strip().splitlines()[-1:] or [""]
            out = Outcome(m, status, time.monotonic() - t0, tail[0])
        except subprocess.TimeoutExpired:
            out = Outcome(m, "timeout", time.monotonic() - t0, f"> {timeout:.0f} s")
        finally:
            if m.old != m.new:
                target.write_text(original)
        return out


@contextmanager
def sandbox() -> Iterator[Sandbox]:
    with tempfile.TemporaryDirectory(prefix="flowaudit-mutants-") as tmp:
        yield Sandbox(Path(tmp))


def baseline(box: Sandbox, tests: Sequence[str], timeout: float, extra: Sequence[str]) -> None:
    """The tests must pass on the unmutated copy, else every mutant would look killed."""
    m = Mutant("baseline", "flowaudit/__init__.py", "", "", tuple(tests))
    out = box.run(m, timeout, extra)
    if out.status != "survived":
        sys.exit(f"baseline: the tests do not pass unmutated ({out.status}: {out.tail})")


def report(outcomes: Sequence[Outcome], title: str) -> int:
    killed = sum(o.status in ("killed", "timeout") for o in outcomes)
    scored = sum(o.status != "error" for o in outcomes)
    print(f"\n{title}: {killed}/{scored} killed ({100 * killed / max(scored, 1):.0f}%)")
    for o in outcomes:
        if o.status not in ("killed", "timeout"):
            print(f"  {o.status.upper()} {o.mutant.name}: {o.mutant.why or o.tail}")
    return scored - killed
