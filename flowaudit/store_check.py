"""What a flow store must be: manifest schema, lock owners, and `flowaudit store check`.

Beneath ``store.py``: ``FlowStore`` reads manifests through ``read_manifests`` (so a
reader never counts a file twice and never reads a file outside ``flows/``) and its
writer commits under ``Lock``. ``check_store`` is the full check: manifests, the files
they name (present, inside the store, listed once, Parquet schema = FLOW_SCHEMA, optionally
the captures' digests), orphan flow files, dead ``.tmp/<run>`` folders and stale locks;
``repair`` removes only the last three (never a file a manifest names).

A lock or ``.tmp/<run>/owner.json`` records its owner: pid, boot id and the process start
time (``/proc/<pid>/stat`` field 22). The owner is dead when the pid is gone, the machine
has rebooted since, or the pid now belongs to a process that started at another time.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowaudit._util.version import __version__
from flowaudit.errors import StoreError

CHECK_HINT = "`flowaudit store check` explains it"
STALE_UNOWNED_S = 60.0  # an empty/unreadable lock (or an ownerless .tmp run) this old is dead
LOCK_TIMEOUT_S = 30.0
OWNER_FILE = "owner.json"

# ------------------------------------------------------------------ manifest schema
# every key CaptureRecord writes, with its type; the first eight are required
MANIFEST_FIELDS: dict[str, str] = {
    "blake3": "hex64",
    "path": "str",
    "size": "count",
    "source_kind": "str",
    "reader": "str",
    "packets": "count",
    "flows": "count",
    "skipped": "count",
    "first_seen": "str?",
    "last_seen": "str?",
    "flowaudit_version": "str",
    "ingested_at": "str",
    "files": "list[str]",
    "warnings": "list[str]",
    "stats": "dict[str,int]",
}
REQUIRED = tuple(MANIFEST_FIELDS)[:8]
_EXPECTED = {
    "hex64": "64 lowercase hex digits",
    "str": "a string",
    "str?": "a string or null",
    "count": "an integer >= 0",
    "list[str]": "a list of strings",
    "dict[str,int]": "an object of integers",
}
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _valid(kind: str, v: Any) -> bool:
    if kind == "hex64":
        return isinstance(v, str) and _HEX64.fullmatch(v) is not None
    if kind == "str":
        return isinstance(v, str)
    if kind == "str?":
        return v is None or isinstance(v, str)
    if kind == "count":
        return _is_int(v) and v >= 0
    if kind == "list[str]":
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    return isinstance(v, dict) and all(_is_int(x) for x in v.values())


def _json_kind(v: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names |= {list: "a list", dict: "an object", type(None): "null"}
    return f"{names.get(type(v), type(v).__name__)} ({json.dumps(v)[:40]})"


def parse_manifest(path: Path) -> dict[str, Any]:
    """The manifest entry at ``path``, checked against MANIFEST_FIELDS; else StoreError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise StoreError(f"{path}: unreadable manifest: {e.strerror}", hint=CHECK_HINT) from e
    except ValueError as e:
        raise StoreError(f"{path}: manifest is not valid JSON: {e}", hint=CHECK_HINT) from e
    if not isinstance(data, dict):
        raise StoreError(f"{path}: manifest is {_json_kind(data)}, not an object", CHECK_HINT)
    if "blake3" not in data and "sha256" in data:
        raise LegacyManifest(
            f"{path}: written by flowaudit {data.get('flowaudit_version', '?')} with SHA-256 "
            "capture ids (this version keys captures by BLAKE3)",
            hint=CHECK_HINT,
            data=data,
        )
    unknown = sorted(k for k in data if k not in MANIFEST_FIELDS)
    if unknown:
        ver = data.get("flowaudit_version")
        raise StoreError(
            f"{path}: written by flowaudit {ver if isinstance(ver, str) else '?'} "
            f"(manifest key {unknown[0]} unknown to {__version__})",
            hint="read this store with that flowaudit version or newer; " + CHECK_HINT,
        )
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise StoreError(f"{path}: manifest lacks {', '.join(missing)}", hint=CHECK_HINT)
    for key, kind in MANIFEST_FIELDS.items():
        if key in data and not _valid(kind, data[key]):
            raise StoreError(
                f"{path}: manifest field {key} is {_json_kind(data[key])}, "
                f"expected {_EXPECTED[kind]}",
                hint=CHECK_HINT,
            )
    if data["blake3"] != path.stem:
        raise StoreError(
            f"{path}: manifest of blake3 {data['blake3']}, named for another", CHECK_HINT
        )
    return data


class LegacyManifest(StoreError):
    """A manifest of flowaudit <= 0.1.0, keyed by the capture's SHA-256: its store must be
    rebuilt (``rebuild_command``), never mixed with BLAKE3 ids."""

    def __init__(self, message: str, hint: str | None, data: dict[str, Any]) -> None:
        super().__init__(message, hint)
        self.data = data


def rebuild_command(root: Path, legacy: list[dict[str, Any]]) -> str:
    """The one shell command that rebuilds a store of SHA-256 manifests from its captures
    (the old store is kept aside as ``<root>.sha256``)."""
    q = shlex.quote(str(root))
    by_format: dict[str, list[str]] = {}
    for data in sorted(legacy, key=lambda d: str(d.get("ingested_at", ""))):
        fmt = "netflow" if data.get("reader") == "netflow" else "auto"
        path = data.get("path")
        if isinstance(path, str) and path not in by_format.setdefault(fmt, []):
            by_format[fmt].append(path)
    parts = [f"mv {q} {shlex.quote(str(root) + '.sha256')}"]
    for fmt, paths in by_format.items():
        flag = "" if fmt == "auto" else f" --format {fmt}"
        parts.append(f"flowaudit ingest --store {q}{flag} " + " ".join(map(shlex.quote, paths)))
    return " && ".join(parts)


def legacy_error(root: Path, legacy: list[tuple[Path, dict[str, Any]]]) -> StoreError:
    """The StoreError (exit 2) refusing a store written with SHA-256 capture ids."""
    return StoreError(
        f"{root}: written by flowaudit <= 0.1.0 with SHA-256 capture ids ({len(legacy)} "
        f"manifest(s), e.g. {legacy[0][0].name}); this version keys captures by their BLAKE3 "
        "digest and never mixes the two",
        hint="rebuild it from its captures: " + rebuild_command(root, [d for _, d in legacy]),
    )


@dataclass
class Manifests:
    """Every manifest of a store: the valid ones (``files`` reduced to what readers read,
    each file once), what is wrong with them, and what cannot be read at all."""

    entries: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[StoreError] = field(default_factory=list)
    named: set[Path] = field(default_factory=set)  # every file any manifest names (resolved)
    unreadable: list[Path] = field(default_factory=list)
    legacy: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)  # SHA-256 ids


def read_manifests(root: Path) -> Manifests:
    """Read and check every ``manifest/*.json`` of ``root``; never raises."""
    out = Manifests()
    mdir = root / "manifest"
    if not mdir.is_dir():
        return out
    for p in sorted(mdir.glob("*.json")):
        try:
            out.entries.append((p, parse_manifest(p)))
        except LegacyManifest as e:
            out.legacy.append((p, e.data))
            out.named.update(_named_anyway(root, p))
        except StoreError as e:
            out.errors.append(e)
            out.unreadable.append(p)
            out.named.update(_named_anyway(root, p))
    out.entries.sort(key=lambda e: (e[1].get("ingested_at", ""), e[1]["blake3"]))
    flows = (root / "flows").resolve()
    owners: dict[Path, list[tuple[Path, str]]] = {}  # file → [(manifest, entry as written)]
    for p, data in out.entries:
        seen: set[Path] = set()
        for f in data.get("files", []):
            real = _real(root, f)
            out.named.add(real)
            if real in seen:
                out.warnings.append(f"{p}: lists {f} twice (read once); {CHECK_HINT}")
                continue
            seen.add(real)
            if not real.is_relative_to(flows) or real == flows:
                out.warnings.append(f"{p}: names {f}, outside the store's flows/ (not read); "
                                    + CHECK_HINT)  # fmt: skip
            elif real.exists() and not real.is_file():
                out.warnings.append(f"{p}: names {f}, not a flow file (not read); {CHECK_HINT}")
            else:
                owners.setdefault(real, []).append((p, f))
    keep: dict[Path, set[Path]] = {p: set() for p, _ in out.entries}
    for real, listed in owners.items():
        # a file belongs to the capture its name starts with, else to the first listing
        mine = [m for m, _ in listed if real.name.startswith(m.stem[:16])]
        owner = mine[0] if mine else listed[0][0]
        keep[owner].add(real)
        for m, f in listed:
            if m != owner:
                out.warnings.append(
                    f"{m}: names {f}, a file of {owner.name} (read once, for that capture); "
                    + CHECK_HINT
                )
    for p, data in out.entries:
        files: list[str] = []
        pending = keep[p]
        for f in data.get("files", []):
            real = _real(root, f)
            if real in pending:  # each kept file once, in the manifest's order
                files.append(f)
                pending.discard(real)
        data["files"] = files
    return out


def _real(root: Path, name: str) -> Path:
    """Where a manifest entry points (a path that cannot be resolved points nowhere)."""
    try:
        return (root / name).resolve()
    except (OSError, ValueError, RuntimeError):  # NUL byte, symlink loop
        return Path("/(unresolvable)") / name.replace("\0", "\\0").lstrip("/")


def _named_anyway(root: Path, p: Path) -> Iterable[Path]:
    """The files an invalid manifest seems to name (so a repair never removes them)."""
    try:
        files = json.loads(p.read_text(encoding="utf-8")).get("files", [])
        if not isinstance(files, list):
            return []
        return [_real(root, f) for f in files if isinstance(f, str)]
    except (OSError, ValueError, AttributeError, TypeError):
        return []


def schema_problem(got: Any) -> str | None:
    """Why the Arrow schema ``got`` is not flow schema v1 (None: it is)."""
    import pyarrow as pa

    from flowaudit.schema import ADDED_COLUMNS, FLOW_SCHEMA

    if got.equals(FLOW_SCHEMA):
        return None
    older = [n for n in ADDED_COLUMNS if got.get_field_index(n) < 0]
    want = FLOW_SCHEMA
    if older:  # written before these columns existed: they read as null
        want = pa.schema([f for f in FLOW_SCHEMA if f.name not in older])
        if got.equals(want):
            return None
    missing = [f.name for f in want if got.get_field_index(f.name) < 0]
    extra = [n for n in got.names if FLOW_SCHEMA.get_field_index(n) < 0]
    if missing or extra:
        return f"columns differ from flow schema v1 (missing {missing}, extra {extra})"
    for f in want:
        g = got.field(f.name)
        if not g.equals(f):
            return f"column {f.name} is {g.type}{'' if g.nullable else ' not null'}, schema v1 " \
                   f"has {f.type}{'' if f.nullable else ' not null'}"  # fmt: skip
    return "column order differs from flow schema v1"


# ------------------------------------------------------------------ lock owners
def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def boot_id() -> str | None:
    text = _read("/proc/sys/kernel/random/boot_id")
    return text.strip() if text else None


def start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: the process start, in clock ticks since boot."""
    text = _read(f"/proc/{pid}/stat")
    if not text:
        return None
    try:
        return int(text[text.rindex(")") + 2 :].split()[19])
    except (ValueError, IndexError):
        return None


def owner_identity() -> dict[str, Any]:
    """What a lock or a ``.tmp`` run records about this process."""
    pid = os.getpid()
    return {"pid": pid, "boot_id": boot_id(), "start": start_ticks(pid), "host": os.uname()[1]}


def _start_wall(ticks: int) -> float | None:
    stat = _read("/proc/stat") or ""
    m = re.search(r"^btime (\d+)", stat, re.M)
    return int(m.group(1)) + ticks / os.sysconf("SC_CLK_TCK") if m else None


def dead_owner(path: Path, now: float | None = None) -> str | None:
    """Why the owner recorded in ``path`` is dead (None: alive, or too young to judge)."""
    return judge_owner(path, now)[0]


def judge_owner(path: Path, now: float | None = None) -> tuple[str | None, tuple[int, int]]:
    """(why the owner recorded in ``path`` is dead or None, (inode, mtime) of the file judged:
    ``take_stale`` removes exactly that file, never a fresh one that replaced it)."""
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, (0, 0)  # released meanwhile, or not ours to judge
    return _verdict(text, st.st_mtime, now), (st.st_ino, st.st_mtime_ns)


def _verdict(text: str, mtime: float, now: float | None) -> str | None:
    info: Any = None
    try:
        info = json.loads(text)
    except ValueError:
        pass
    if _is_int(info):
        info = {"pid": info}  # a lock of flowaudit <= 0.1.0: the pid alone
    pid = info.get("pid") if isinstance(info, dict) else None
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        age = (time.time() if now is None else now) - mtime
        what = "empty" if not text.strip() else "unreadable"
        return f"{what}, {age:.0f} s old" if age > STALE_UNOWNED_S else None
    assert isinstance(info, dict)
    if isinstance(info.get("host"), str) and info["host"] != os.uname()[1]:
        return None  # a store shared between machines: another host's pids are not ours to judge
    here = boot_id()
    if isinstance(info.get("boot_id"), str) and here and info["boot_id"] != here:
        return f"written by pid {pid} before the machine restarted (boot id {info['boot_id']})"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"pid {pid} is gone"
    except PermissionError:
        pass  # alive, another user's
    ticks = start_ticks(pid)
    if ticks is None:
        return None
    recorded = info.get("start")
    if _is_int(recorded):
        if recorded != ticks:
            return f"pid {pid} now belongs to another process (start {ticks}, not {recorded})"
        return None
    started = _start_wall(ticks)  # an old lock: did the process start after it was written?
    if started is not None and started > mtime + 1:
        return f"pid {pid} now belongs to a process started after the lock was written"
    return None


def take_stale(path: Path, judged: tuple[int, int]) -> bool:
    """Remove the dead owner's file at ``path``, the very file judged (inode, mtime); False
    when another process got there first (the file is renamed aside and compared, and a
    fresh one that had replaced it is put back)."""
    aside = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.stale")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    after = aside.stat()
    if (after.st_ino, after.st_mtime_ns) != judged:
        try:  # not the file judged dead: a fresh owner's; give it back
            os.link(aside, path)
        except OSError:
            pass
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    return True


class Lock:
    """An O_EXCL lock file recording its owner; a dead owner's lock is taken over."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings: list[str] = []
        self._ino = -1

    def __enter__(self) -> Lock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                reason, judged = judge_owner(self.path)
                if reason is not None:
                    if take_stale(self.path, judged):
                        self.warnings.append(f"{self.path}: took over a stale lock ({reason})")
                    continue
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"{self.path}: held for more than {LOCK_TIMEOUT_S:.0f} s by "
                        f"{_holder(self.path)}",
                        hint="if no flowaudit ingest is running on this store, delete that "
                        "lock file (`flowaudit store check --repair` removes stale ones)",
                    ) from None
                time.sleep(0.05)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(owner_identity()))
                f.flush()
                self._ino = os.fstat(f.fileno()).st_ino
            return self

    def __exit__(self, *exc: object) -> None:
        try:  # ours still (never another process's lock that replaced it)
            if self.path.stat().st_ino == self._ino:
                self.path.unlink()
        except FileNotFoundError:
            pass


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "a process that has not written its pid yet"
    if not isinstance(info, dict):
        return f"pid {info} (alive)"
    host = info.get("host")
    if isinstance(host, str) and host != os.uname()[1]:
        return f"pid {info.get('pid')} on host {host} (not judged from this host)"
    return f"pid {info.get('pid')} (alive)"


# ------------------------------------------------------------------ the full check
@dataclass
class Problem:
    """One thing wrong with a store; ``fix`` (for --repair) removes what is dead."""

    text: str
    fix: Any = None  # Callable[[], object] | None
    repaired: bool = False


@dataclass
class StoreCheck:
    """What `flowaudit store check` found (and, with ``repair``, removed)."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    captures: int = 0
    files: int = 0
    flows: int = 0

    @property
    def remaining(self) -> list[Problem]:
        return [p for p in self.problems if not p.repaired]

    @property
    def repaired(self) -> list[Problem]:
        return [p for p in self.problems if p.repaired]


def check_store(root: Path, *, repair: bool = False, verify_digests: bool = False) -> StoreCheck:
    """Check everything a reader relies on; with ``repair`` remove orphan flow files, dead
    ``.tmp`` runs and stale locks (never a file a manifest names)."""
    res = StoreCheck(root)
    prefix = f"{root}{os.sep}"

    def rel(text: str) -> str:
        return text.replace(prefix, "").replace(f"; {CHECK_HINT}", "")

    # the flow files on disk first: a commit finishing meanwhile shows as named, or its
    # lock as held (files are renamed into flows/ under the lock, before the manifest)
    on_disk = sorted(Path(d) / n for d, _, names in os.walk(root / "flows") for n in names)
    live: set[str] = set()
    locks = root / ".locks"
    for lock in sorted(locks.glob("*.lock")) if locks.is_dir() else []:
        reason, judged = judge_owner(lock)
        if reason is None:
            live.add(lock.stem[:16])
            res.notes.append(f"{rel(str(lock))}: held by a running ingest")
        else:
            res.problems.append(
                Problem(f"{rel(str(lock))}: stale lock ({reason})", _unlink_stale(lock, judged))
            )
    tmp = root / ".tmp"
    for run in sorted(tmp.iterdir()) if tmp.is_dir() else []:
        reason = _dead_run(run)
        if reason is not None:
            res.problems.append(
                Problem(
                    f"{rel(str(run))}: unfinished ingest, its owner is dead ({reason})",
                    _remover(run),
                )
            )
    for junk in sorted((root / "manifest").glob(".*.tmp")):
        if time.time() - junk.stat().st_mtime > STALE_UNOWNED_S:
            res.problems.append(
                Problem(f"{rel(str(junk))}: unfinished manifest write", _remover(junk))
            )
    m = read_manifests(root)
    if m.legacy:
        res.problems.append(Problem(str(legacy_error(root, m.legacy)).replace("\n  hint: ", "; ")))
    res.problems += [Problem(rel(e.message)) for e in m.errors]
    res.problems += [Problem(rel(w)) for w in m.warnings]
    res.captures = len(m.entries)
    for p, data in m.entries:
        rows = 0
        for f in data["files"]:
            path = root / f
            res.files += 1
            if not path.exists():
                res.problems.append(Problem(f"{rel(str(p))}: names {f}, which is missing"))
                continue
            why, n = parquet_problem(path)
            rows += n
            if why is not None:
                res.problems.append(Problem(f"{f}: {why} (named by {p.name})"))
        res.flows += data["flows"]
        if rows != data["flows"] and all((root / f).exists() for f in data["files"]):
            res.problems.append(
                Problem(f"{rel(str(p))}: says {data['flows']} flows, its files hold {rows}")
            )
        if verify_digests:
            res.problems += _digest_problems(p, data, res.notes, rel)
    unreadable = {u.stem[:16]: u for u in m.unreadable}
    for f in on_disk:
        if f.resolve() in m.named:
            continue
        where = rel(str(f))
        if f.name[:16] in live:
            res.notes.append(f"{where}: being committed by a running ingest")
        elif f.name[:16] in unreadable:
            bad = unreadable[f.name[:16]].name
            res.problems.append(
                Problem(f"{where}: no readable manifest names it (kept: {bad} cannot be read)")
            )
        elif f.suffix != ".parquet":
            res.problems.append(Problem(f"{where}: not a flow file (no manifest names it)"))
        else:
            res.problems.append(
                Problem(
                    f"{where}: orphan flow file, no manifest names it "
                    "(left by an ingest killed while committing)",
                    _remover(f, prune=root / "flows"),
                )
            )
    if repair:
        for prob in res.problems:
            if prob.fix is not None:
                try:
                    prob.fix()
                    prob.repaired = True
                except OSError as e:
                    res.notes.append(f"could not remove ({e.strerror}): {prob.text}")
    return res


def parquet_problem(path: Path) -> tuple[str | None, int]:
    """(why ``path`` is not a flow file of schema v1 or None, its rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        return schema_problem(pf.schema_arrow), pf.metadata.num_rows
    except (OSError, pa.ArrowException) as e:
        return f"unreadable Parquet: {e}", 0


def _digest_problems(p: Path, data: dict[str, Any], notes: list[str], rel: Any) -> list[Problem]:
    from flowaudit._util.files import digest_file
    from flowaudit.errors import FlowAuditError

    capture = Path(data["path"])
    if not capture.is_file():
        notes.append(f"{rel(str(p))}: capture {capture} is gone; digest not verified")
        return []
    try:
        digest = digest_file(capture)
    except FlowAuditError as e:
        return [Problem(f"{rel(str(p))}: {e.message}")]
    if digest != data["blake3"]:
        return [Problem(f"{rel(str(p))}: capture {capture} changed since ingest (blake3 {digest})")]
    return []


def _dead_run(run: Path) -> str | None:
    owner = run / OWNER_FILE
    if owner.is_file():
        return dead_owner(owner)
    try:
        paths = [run, *run.iterdir()] if run.is_dir() else [run]
        newest = max(q.stat().st_mtime for q in paths)
    except OSError:
        return None  # removed meanwhile
    age = time.time() - newest
    return f"no owner recorded, untouched for {age:.0f} s" if age > STALE_UNOWNED_S else None


def _unlink_stale(lock: Path, judged: tuple[int, int]) -> Any:
    return lambda: take_stale(lock, judged)


def _remover(path: Path, prune: Path | None = None) -> Any:
    def remove() -> None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        parent = path.parent
        while prune is not None and parent != prune and parent.is_relative_to(prune):
            try:
                parent.rmdir()  # an emptied date= partition
            except OSError:
                break
            parent = parent.parent

    return remove
