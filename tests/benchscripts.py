"""The benchmark scripts' builders shared with the tests (``benchmarks/`` holds scripts, not
package modules: they are imported by path, once)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from testpaths import REPO


def load_bench(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as a module (e.g. ``bench_audit``: its synthetic stores)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
