"""The Parquet flow store and its manifest: atomic writes, idempotent ingest.

Layout under the store directory (default ``./flowaudit-data``)::

    flows/date=YYYY-MM-DD/<blake3[:16]>-<run>-<n>.parquet   flow schema v1, Hive-partitioned
    manifest/<blake3>.json                                   one per ingested capture
    .tmp/<run>/                                              an ingest in progress
    .locks/<blake3>.lock                                     held while a capture is committed

Manifests are checked when read (``store_check``): a wrong type, a missing or unknown key
is a StoreError naming the manifest; a file listed twice, outside ``flows/`` or not a
regular file is read at most once and named in ``FlowStore.warnings``.

A capture is *in* the store when its manifest file exists; the manifest lists the
flow files it owns, and readers read exactly those files, so a crashed or
concurrent ingest can never make half a capture visible. Every file is written
to a temporary name and renamed into place. Two ingests of different captures
share no file; two ingests of the same capture race for its lock and the loser
discards its work ("already ingested").
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from flowaudit._util.time import TIME_MAX_US, TIME_MIN_US, iso_us
from flowaudit._util.version import __version__
from flowaudit.errors import StoreError, WriteError
from flowaudit.store_check import (
    CHECK_HINT,
    OWNER_FILE,
    Lock,
    legacy_error,
    owner_identity,
    parquet_problem,
    parse_manifest,
    read_manifests,
)

DEFAULT_STORE = "flowaudit-data"
FLOW_ROWS_PER_FILE = 250_000  # one row group; a file per chunk keeps writes overlapped
# dictionary-encode only the columns with few distinct values (flow_id, ports and
# counters are nearly unique per row: a dictionary there costs time and bytes)
_DICT = ["source_kind", "capture_id", "src_ip", "dst_ip", "src_addr", "dst_addr", "state",
         "direction", "exporter", "verdict", "drop_reason", "tunnel", "outer_src_ip",
         "outer_dst_ip"]  # fmt: skip


@dataclass
class CaptureRecord:
    """One manifest entry: what was ingested, from where, with what result."""

    blake3: str  # BLAKE3-256 (hex) of the file's content: the capture id
    path: str
    size: int
    source_kind: str
    reader: str
    packets: int
    flows: int
    skipped: int
    first_seen: str | None = None  # stamped by the writer at commit
    last_seen: str | None = None
    flowaudit_version: str = __version__
    ingested_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    )
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


class FlowStore:
    """A directory of Parquet flows plus a manifest of captures."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        if not os.fspath(root):  # Path("") is the current directory: never write there
            raise StoreError("the flow store path is empty", hint="pass --store DIR")
        self.root = Path(root)
        self.warnings: list[str] = []  # what the readers found wrong (each once)

    # ---------------------------------------------------------------- reading
    @property
    def manifest_dir(self) -> Path:
        return self.root / "manifest"

    def exists(self) -> bool:
        return self.manifest_dir.is_dir()

    def check_readable(self) -> None:
        """Raise StoreError unless ``root`` looks like a flow store."""
        if not self.root.exists():
            raise StoreError(
                f"{self.root}: no flow store here", hint="run `flowaudit ingest CAPTURE` first"
            )
        if not self.root.is_dir():
            raise StoreError(f"{self.root}: not a directory")
        if not self.manifest_dir.is_dir():
            raise StoreError(
                f"{self.root}: not a flow store (no manifest/ directory)",
                hint="pass --store pointing at a directory made by `flowaudit ingest`",
            )
        if not os.access(self.manifest_dir, os.R_OK | os.X_OK):
            raise StoreError(f"{self.manifest_dir}: permission denied")

    def captures(self) -> list[CaptureRecord]:
        """All committed captures, oldest ingest first; each flow file in one capture only.

        StoreError when a manifest cannot be read honestly; what readers skip is added to
        ``warnings``."""
        found = read_manifests(self.root)
        if found.legacy:
            raise legacy_error(self.root, found.legacy)
        if found.errors:
            raise found.errors[0]
        self.warnings.extend(w for w in found.warnings if w not in self.warnings)
        return [CaptureRecord(**data) for _, data in found.entries]

    def get(self, digest: str) -> CaptureRecord | None:
        p = self.manifest_dir / f"{digest}.json"
        if not p.exists():
            return None
        return CaptureRecord(**parse_manifest(p))

    def flow_files(self, capture_ids: Iterable[str] | None = None) -> list[Path]:
        """The Parquet files of the given captures (default: all), as absolute paths;
        StoreError when one is missing or not of the flow schema."""
        wanted = set(capture_ids) if capture_ids is not None else None
        files: list[tuple[Path, str]] = []  # (file, its manifest's name)
        for rec in self.captures():
            if wanted is None or rec.blake3 in wanted:
                files.extend((self.root / f, f"{rec.blake3}.json") for f in rec.files)
        missing = [f for f, _ in files if not f.exists()]
        if missing:
            raise StoreError(
                f"{self.root}: {len(missing)} flow file(s) listed in the manifest are missing, "
                f"e.g. {missing[0]}",
                hint=CHECK_HINT,
            )
        for f, manifest in files:
            why, _ = parquet_problem(f)
            if why is not None:
                raise StoreError(f"{f}: {why} (named by manifest/{manifest})", hint=CHECK_HINT)
        return [f for f, _ in files]

    # ---------------------------------------------------------------- writing
    def begin(self, capture_id: Callable[[], str] | None = None) -> StoreWriter:
        """Start writing one capture's flows (to a private temp directory).

        ``capture_id``, when given, is called at the first spill and its value is stamped
        into the ``capture_id`` column (the digest may still be computing when flows start).
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "flows").mkdir(exist_ok=True)
            self.manifest_dir.mkdir(exist_ok=True)
        except OSError as e:
            raise StoreError(f"{self.root}: cannot create flow store: {e.strerror}") from e
        legacy = read_manifests(self.root).legacy
        if legacy:  # never a BLAKE3 capture beside SHA-256 ones
            raise legacy_error(self.root, legacy)
        return StoreWriter(self, capture_id)


class StoreWriter:
    """Buffers flow tables, writes Parquet into a temp dir, commits atomically."""

    def __init__(self, store: FlowStore, capture_id: Callable[[], str] | None = None) -> None:
        self.store = store
        self._capture_id = capture_id
        self.run = uuid.uuid4().hex[:12]
        self.tmp = store.root / ".tmp" / self.run
        self.tmp.mkdir(parents=True)
        # who owns this run: `flowaudit store check` removes the run once its owner is dead
        (self.tmp / OWNER_FILE).write_text(json.dumps(owner_identity()), encoding="utf-8")
        self.warnings: list[str] = []  # a stale lock taken over at commit
        self._pending: list[Any] = []  # pa.Table
        self._pending_rows = 0
        self._written: list[tuple[Path, str]] = []  # (temp file, date partition)
        # Parquet encoding releases the GIL: one background writer overlaps it with parsing
        # (ordered, single worker; at most one spill waits while the next one is built)
        self._pool: ThreadPoolExecutor | None = None
        self._jobs: list[Future[None]] = []
        self.rows = 0
        self.first_us: int | None = None
        self.last_us: int | None = None

    def add(self, table: Any) -> None:
        """Append a FLOW_SCHEMA table; spills to Parquet every FLOW_ROWS_PER_FILE rows."""
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        if self._pending_rows >= FLOW_ROWS_PER_FILE:
            self._spill()

    def _spill(self) -> None:
        """Hand the pending tables to the background writer."""
        import pyarrow as pa

        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flowaudit-spill")
        while len(self._jobs) >= 2:  # bound memory: wait for the oldest write
            self._jobs.pop(0).result()
        self._jobs.append(self._pool.submit(self._write, table))

    def _drain(self) -> None:
        """Wait for every background write; re-raise the first failure."""
        jobs, self._jobs = self._jobs, []
        for job in jobs:
            job.result()

    def _write(self, table: Any) -> None:
        # No pyarrow.compute here (nor pa.array): importing it costs ~0.3 s and pandas
        # with it, a fifth of a 2M-packet ingest. Timestamps are read through numpy.
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        from flowaudit._util.arrow import constant, fixed

        if self._capture_id is not None:
            i = table.schema.get_field_index("capture_id")
            stamp = constant(self._capture_id(), table.num_rows)
            table = table.set_column(i, table.schema.field(i), stamp)
        first, last = (_int64(table.column(name)) for name in ("first_seen", "last_seen"))
        lo, hi = int(first.min()), int(last.max())
        if lo < TIME_MIN_US or hi >= TIME_MAX_US:  # a reader let one through: refuse it all
            raise StoreError(
                f"flow times outside 1970-01-01..2261-12-31 (µs {lo}..{hi}): not stored",
                hint="a reader must skip such records; please report the input",
            )
        self.first_us = lo if self.first_us is None else min(self.first_us, lo)
        self.last_us = hi if self.last_us is None else max(self.last_us, hi)
        days = first // 86_400_000_000  # the date partition of each flow: its first_seen's
        uniq = np.unique(days).tolist()
        for day in uniq:
            part = table
            if len(uniq) > 1:
                rows = np.flatnonzero(days == day).astype(np.int64)
                part = table.take(fixed(pa.int64(), rows))
            n = len(self._written)
            tmp = self.tmp / f"{n:05d}.parquet"
            try:
                pq.write_table(
                    part, tmp, compression="zstd", row_group_size=256_000, use_dictionary=_DICT
                )
            except OSError as e:  # disk full, file too large: name the file, exit 3
                raise WriteError(f"{tmp}: cannot write flows: {e}") from e
            self._written.append((tmp, str(np.datetime64(day, "D"))))

    def commit(self, record: CaptureRecord) -> bool:
        """Make the capture visible. False when it was already in the store (work dropped)."""
        self._spill()
        self._drain()
        store = self.store
        lock = Lock(store.root / ".locks" / f"{record.blake3}.lock")
        try:
            with lock:
                self.warnings.extend(lock.warnings)
                if (store.manifest_dir / f"{record.blake3}.json").exists():
                    return False
                # everything that can fail on the data is done before a file moves
                moves = [
                    (tmp, f"flows/date={day}/{record.blake3[:16]}-{self.run}-{tmp.stem}.parquet")
                    for tmp, day in self._written
                ]
                record.files = [dest for _, dest in moves]
                record.flows = self.rows
                record.first_seen = iso_us(self.first_us)
                record.last_seen = iso_us(self.last_us)
                manifest = json.dumps(asdict(record), indent=2, sort_keys=True) + "\n"
                moved: list[Path] = []
                try:
                    for tmp, dest in moves:
                        (store.root / dest).parent.mkdir(parents=True, exist_ok=True)
                        os.replace(tmp, store.root / dest)
                        moved.append(store.root / dest)
                    atomic_write_text(store.manifest_dir / f"{record.blake3}.json", manifest)
                except BaseException:
                    for done in moved:  # no flow file without its manifest
                        done.unlink(missing_ok=True)
                    raise
                return True
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop whatever was not committed (after any write in flight has stopped)."""
        if self._pool is not None:
            for job in self._jobs:
                job.cancel()
            self._pool.shutdown(wait=True)
            self._pool, self._jobs = None, []
        shutil.rmtree(self.tmp, ignore_errors=True)
        try:
            self.tmp.parent.rmdir()
        except OSError:
            pass


def _int64(col: Any) -> Any:
    """The int64 values of a timestamp column (a chunked array without nulls), as numpy."""
    import numpy as np

    if col.null_count:
        raise StoreError("flow table with null first_seen/last_seen (not nullable in schema v1)")
    parts = [
        np.frombuffer(c.buffers()[1], dtype=np.int64, count=len(c), offset=8 * c.offset)
        for c in col.chunks
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically; a failure is a StoreError naming the file."""
    from flowaudit._util.files import write_text_atomic

    try:
        write_text_atomic(path, text)
    except OSError as e:
        raise StoreError(f"{path}: cannot write: {e.strerror}") from e
