"""The compiled kernels: one ahead-of-time extension module, numba JIT as the fallback.

Responsible for handing ``packets/pcap.py`` and ``flows/builder.py`` the hot kernels
(record walks, header decode, flow-table walk, sweep, rehashes, conn states, Community
IDs, address text) as fast to *start* as to run. The kernels are written once, in
numba-flavoured Python (the modules of ``flowaudit/kernels/``). Loading them through
numba's JIT cache costs ~0.3 s to import numba plus ~1 s to load and link the cached
machine code in every process, which is most of a 2M-packet ingest. So the first time
they are needed, the same functions are compiled ahead of time (``numba.pycc``, in a
child process, generic x86-64/aarch64 code, GIL released while a kernel runs) into one
extension module in a cache
directory; later processes import it in about a millisecond and never import numba.

The module's file name carries a key: the sha256 of the kernel sources, the Python
ABI, the machine and the numpy version, so an edited kernel is rebuilt, never run
stale. Concurrent processes build it once (a lock file); a build that fails (no C
compiler, old numba) is remembered per key and the JIT kernels are used instead.

``FLOWAUDIT_NATIVE=jit`` forces the JIT kernels, ``aot`` makes a failed build an
error; ``FLOWAUDIT_CACHE_DIR`` overrides where the module is kept (default the
package's ``__pycache__``, else ``~/.cache/flowaudit``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODULE = "_flowaudit_native"
HERE = Path(__file__).resolve().parent  # flowaudit/kernels
PKG = HERE.parent  # flowaudit

# name -> (module defining the numba function, explicit signature)
_A1 = "[::1]"
_A2 = "[:, ::1]"
_REC = f"i8{_A1}, i8{_A1}, u4{_A1}, i8{_A1}, i4{_A1}"  # rec_off, rec_cap, rec_len, ts, link
_PKT = ", ".join(  # the PacketBatch columns, in flows._WALK_FIELDS order
    f"{t}{_A1}"
    for t in (
        "i8",
        "u4",
        "i4",
        "u1",
        "u1",
        "u8",
        "u8",
        "u8",
        "u8",
        "u1",
        "u2",
        "u2",
        "u1",
        "u4",
        "u1",
        "u4",
    )  # fmt: skip
)
_OUT = ", ".join(  # decode's output columns (pcap._OUT_FIELDS order)
    f"{t}{_A1}"
    for t in ("i4", "u1", "u1", "u8", "u8", "u8", "u8", "u1", "u2", "u2", "u1", "u4", "u1", "u4")
)
KERNELS: dict[str, tuple[str, str]] = {
    "walk_pcap": (
        "flowaudit.kernels.walk",
        f"UniTuple(i8, 3)(u1{_A1}, i8, i8, b1, b1, i8, {_REC}, i8, i8{_A1}, {_OUT})",
    ),
    "walk_pcapng": (
        "flowaudit.kernels.walk",
        f"UniTuple(i8, 3)(u1{_A1}, i8, i8, b1, i4{_A1}, i8{_A1}, i8{_A1}, i8{_A1}, i8{_A1}, i8, "
        f"{_REC}, i8, i8{_A1})",
    ),
    "decode": (
        "flowaudit.kernels.decode",
        f"void(u1{_A1}, i8{_A1}, i8{_A1}, i4{_A1}, i8, i8, {_OUT})",
    ),
    "walk": (
        "flowaudit.kernels.flowtable",
        f"UniTuple(i8, 2)({_PKT}, u4{_A1}, b1, i8, i8{_A1}, i8{_A1}, i8{_A1}, i8{_A2}, "
        f"i8{_A2}, u8{_A2}, i4{_A2}, i4{_A1}, i4{_A1}, i8{_A2}, u8{_A2}, u1{_A1}, i8{_A1})",
    ),
    "find_inner": (
        "flowaudit.kernels.tunnel",
        f"UniTuple(i8, 2)(u1{_A1}, i8{_A1}, i8{_A1}, i4{_A1}, i8, i8, u1{_A1}, u1{_A1}, "
        f"u2{_A1}, u1{_A1}, u1{_A1}, i8{_A1}, i8{_A1}, i8{_A1}, i8{_A1}, i4{_A1}, u1{_A1}, "
        f"i8{_A1}, i8)",
    ),
    "sweep": (
        "flowaudit.kernels.flowtable",
        f"void(i8{_A2}, i4{_A2}, i8{_A1}, i8{_A1}, i8{_A2}, i4{_A1}, i8{_A2}, i8{_A1}, i8, b1)",
    ),
    "rehash": ("flowaudit.kernels.flowtable", f"void(i4{_A2}, i8{_A2}, i8{_A2})"),
    "frag_rehash": ("flowaudit.kernels.fragtable", f"i8(i8{_A2}, u8{_A2}, i8{_A2}, u8{_A2})"),
    "conn_states": ("flowaudit.kernels.tcpstate", f"i1{_A1}(i4{_A2}, u8{_A2}, i4{_A1})"),
    "community_ids": (
        "flowaudit.kernels.cid",
        f"void(b1{_A1}, u8{_A1}, u8{_A1}, u8{_A1}, u8{_A1}, u1{_A1}, i8{_A1}, i8{_A1}, b1{_A1}, "
        f"b1{_A1}, i8, u1{_A2})",
    ),
    "address_text": (
        "flowaudit.kernels.text",
        f"i8(b1{_A1}, u8{_A1}, i8{_A1}, u1{_A2}, i8{_A1}, u1{_A1}, i8{_A1})",
    ),
}
#: the files whose text decides what the compiled module contains
#: the build's sources: every module of this folder (the key changes when any changes)
SOURCES = tuple(sorted(p.name for p in HERE.glob("*.py")))
BUILD_TIMEOUT_S = 900
KEEP_BUILDS = 4


class Kernels:
    """The kernels, as plain callables (``origin`` says which build they come from)."""

    walk_pcap: Callable[..., Any]
    walk_pcapng: Callable[..., Any]
    decode: Callable[..., Any]
    find_inner: Callable[..., Any]
    walk: Callable[..., Any]
    sweep: Callable[..., Any]
    rehash: Callable[..., Any]
    frag_rehash: Callable[..., Any]
    conn_states: Callable[..., Any]
    community_ids: Callable[..., Any]
    address_text: Callable[..., Any]

    def __init__(self, funcs: dict[str, Callable[..., Any]], origin: str) -> None:
        for name, fn in funcs.items():
            setattr(self, name, fn)
        self.origin = origin


_loaded: Kernels | None = None
_notice: Callable[[str], None] | None = None

#: what the build notice says (the CLI prints it; library code never prints)
BUILDING = "compiling the packet kernels once (~30 s)…"
WAITING = "another process is compiling the packet kernels; waiting for it…"


def on_build(callback: Callable[[str], None] | None) -> None:
    """Have ``callback(message)`` told when this process starts the (slow, first-run) AOT
    build of the kernels, or waits for another process's (``BUILDING``, ``WAITING``)."""
    global _notice
    _notice = callback


def _tell(message: str) -> None:
    if _notice is not None:
        _notice(message)


def kernels() -> Kernels:
    """The kernels for this process: the AOT module (built on first use), else numba JIT."""
    global _loaded
    if _loaded is None:
        mode = os.environ.get("FLOWAUDIT_NATIVE", "auto")
        mod = None if mode == "jit" else _aot_module(required=mode == "aot")
        if mod is not None:
            _loaded = Kernels({n: getattr(mod, n) for n in KERNELS}, f"aot:{mod.__file__}")
        else:
            _loaded = jit_kernels()
    return _loaded


def jit_kernels() -> Kernels:
    """The numba JIT dispatchers (compiled on first call, cached in ``__pycache__``)."""
    funcs = {n: getattr(importlib.import_module(m), n) for n, (m, _) in KERNELS.items()}
    return Kernels(funcs, "jit")


def key() -> str:
    """What the compiled module depends on: kernel sources, Python ABI, machine, numpy."""
    import numpy

    h = hashlib.sha256()
    for rel in SOURCES:
        h.update(rel.encode() + b"\0" + (HERE / rel).read_bytes() + b"\0")
    h.update(f"{sys.implementation.cache_tag}|{platform.machine()}|{numpy.__version__}".encode())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    env = os.environ.get("FLOWAUDIT_CACHE_DIR")
    if env:
        return Path(env)
    local = PKG / "__pycache__"
    try:
        local.mkdir(exist_ok=True)
        if os.access(local, os.W_OK):
            return local
    except OSError:
        pass
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "flowaudit"


def module_path(directory: Path | None = None) -> Path:
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return (directory or cache_dir()) / f"{MODULE}-{key()}{suffix}"


def _import(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(MODULE, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _aot_module(required: bool) -> Any:
    path = module_path()
    failed = path.with_suffix(".failed")
    if not path.exists():
        if failed.exists() and not required:
            return None
        _build_locked(path)
    if path.exists():
        try:
            return _import(path)
        except ImportError as e:
            if required:
                raise
            _note_failure(failed, f"import failed: {e}")
            return None
    if required:
        detail = failed.read_text() if failed.exists() else "no module was written"
        raise RuntimeError(f"ahead-of-time kernel build failed: {detail}")
    return None


def _note_failure(failed: Path, text: str) -> None:
    try:
        failed.write_text(text[-4000:])
    except OSError:
        pass


def _build_locked(path: Path) -> None:
    """Build the module into ``path`` unless another process is doing it (then wait)."""
    lock = path.with_suffix(".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    deadline = time.monotonic() + BUILD_TIMEOUT_S
    told = False
    while time.monotonic() < deadline:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _stale(lock):
                lock.unlink(missing_ok=True)
            else:
                if not told:
                    _tell(WAITING)
                    told = True
                time.sleep(0.2)
            if path.exists():
                return
            continue
        except OSError:
            return  # read-only cache directory: use the JIT kernels
        try:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            if not path.exists():
                _tell(BUILDING)
                _build_in_child(path)
        finally:
            lock.unlink(missing_ok=True)
        return


def _stale(lock: Path) -> bool:
    try:
        pid = int(lock.read_text() or "0")
    except (OSError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _build_in_child(path: Path) -> None:
    """Run ``build`` in a child Python (numba, setuptools and the C compiler stay out of ours)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PKG.parent), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    cmd = [sys.executable, "-m", "flowaudit.kernels.build", "build", str(path)]
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        _note_failure(path.with_suffix(".failed"), f"{cmd}: {e}")
        return
    if proc.returncode != 0 or not path.exists():
        _note_failure(path.with_suffix(".failed"), proc.stdout + proc.stderr)


def build(path: Path) -> None:
    """Compile every kernel ahead of time into the extension module ``path`` (atomically)."""
    import shutil
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pycc is "pending deprecation" (numba ≥ 0.57)
        pycc: Any = importlib.import_module("numba.pycc")
        pycc_compiler: Any = importlib.import_module("numba.pycc.compiler")
    base: Any = pycc_compiler.Flags

    class _ReleaseGil(base):  # type: ignore[misc]
        """pycc has no nogil option: release the GIL in every exported wrapper."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.release_gil = True

    pycc_compiler.Flags = _ReleaseGil
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=path.parent))
    try:
        cc = pycc.CC(MODULE)
        cc.output_dir = str(work)
        cc.verbose = False
        for name, (modname, sig) in KERNELS.items():
            fn = getattr(importlib.import_module(modname), name)
            cc.export(name, sig)(fn.py_func)
        cc.compile()
        (built,) = work.glob(f"{MODULE}*")
        os.replace(built, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # keep the few newest builds (other checkouts may still use them), drop older ones
    builds = sorted(path.parent.glob(f"{MODULE}-*{path.suffix}"), key=_mtime, reverse=True)
    for old in builds[KEEP_BUILDS:]:
        old.unlink(missing_ok=True)


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def _main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "build":
        build(Path(argv[1]))
        return 0
    if argv == ["path"]:
        sys.stdout.write(f"{module_path()}\n")
        return 0
    sys.stderr.write("usage: python -m flowaudit.kernels.build build PATH | path\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))


__all__ = ["KERNELS", "Kernels", "build", "jit_kernels", "kernels", "key", "on_build"]
