"""Capture file → flows → store: the ingest of one capture, end to end.

Hashes the capture first (the manifest key: ingesting the same bytes twice adds
nothing), streams its packet batches through the flow builder, spills flow
tables into the store writer and commits them atomically with the manifest
entry. Memory is bounded by the reader's chunk, the live-flow table and the
writer's spill size, never by the capture's size.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flowaudit.errors import CaptureError
from flowaudit.ingest import open_capture
from flowaudit.store import CaptureRecord, FlowStore

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


@dataclass
class IngestResult:
    """What one capture's ingest did (for the CLI summary and the API)."""

    path: str
    sha256: str
    source_kind: str
    reader: str
    packets: int = 0
    flows: int = 0
    non_ip: int = 0
    skipped: int = 0
    seconds: float = 0.0
    already_ingested: bool = False
    warnings: list[str] = field(default_factory=list)
    unit: str = "packets"  # what ``packets`` counts ("records" for flow-record inputs)

    def summary(self) -> str:
        name = Path(self.path).name
        if self.already_ingested:
            return f"{name}: already in the store (sha256 {self.sha256[:12]}…), nothing added"
        non_ip = f"{self.non_ip:,} non-IP, " if self.unit == "packets" else ""
        how = {"tshark": " (tshark engine)", "fast": ""}.get(self.reader, f" ({self.source_kind})")
        return (
            f"{name}: {self.packets:,} {self.unit}, {self.flows:,} flows, {non_ip}"
            f"{self.skipped:,} skipped, {self.seconds:.2f} s{how}"
        )


HASH_WINDOW = 64 << 20  # bytes of the capture mapped at a time while hashing


class _Hasher:
    """The capture's sha256, computed in a background thread from construction on.

    The file is hashed straight from the page cache through a sliding ``mmap`` window
    (no copy into a read buffer; resident memory bounded by the window). hashlib
    releases the GIL while it hashes a window and the kernels release it while they
    run, so the hash has the other core to itself while the main thread parses.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._digest: str | None = None
        self._error: OSError | None = None
        self._cancel = False
        self._thread = threading.Thread(target=self._run, name="flowaudit-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with open(self.path, "rb") as f:
                self._digest = _sha256(f, lambda: self._cancel)
        except OSError as e:
            self._error = e

    def cancel(self) -> None:
        """Stop hashing soon (the ingest failed); ``digest`` must not be called afterwards."""
        self._cancel = True

    def digest(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise CaptureError(f"{self.path}: cannot read: {self._error.strerror}") from None
        assert self._digest is not None
        return self._digest


def _sha256(f: io.BufferedReader, cancelled: Callable[[], bool]) -> str:
    """sha256 of an open file: mapped window by window, or read (pipes, odd filesystems)."""
    st = os.fstat(f.fileno())
    if not stat.S_ISREG(st.st_mode):
        return hashlib.file_digest(f, "sha256").hexdigest()
    size = st.st_size
    h = hashlib.sha256()
    off = 0
    try:
        while off < size and not cancelled():
            n = min(HASH_WINDOW, size - off)
            with mmap.mmap(f.fileno(), n, access=mmap.ACCESS_READ, offset=off) as m:
                if hasattr(m, "madvise"):
                    m.madvise(mmap.MADV_SEQUENTIAL)
                h.update(m)
            off += n
    except (OSError, ValueError):
        f.seek(0)
        return hashlib.file_digest(f, "sha256").hexdigest()
    if cancelled():
        return ""
    if os.fstat(f.fileno()).st_size != size:  # the file changed size while it was hashed
        f.seek(0)
        return hashlib.file_digest(f, "sha256").hexdigest()
    return h.hexdigest()


def ingest_file(
    path: str | Path,
    store: FlowStore,
    *,
    engine: str = "auto",
    progress: Progress | None = None,
) -> IngestResult:
    """Ingest one pcap/pcapng capture into ``store``. Idempotent by content hash."""
    t0 = time.perf_counter()
    p = Path(path)
    is_file = p.is_file()
    size = p.stat().st_size if is_file else 0
    # The sha256 runs on the other core from the start (before numpy, pyarrow and the
    # kernels are even imported); the writer stamps it into capture_id when it spills.
    hasher = _Hasher(p) if is_file else None
    try:
        return _ingest(p, size, hasher, store, engine, progress, t0)
    except BaseException:
        if hasher is not None:
            hasher.cancel()
        raise


def _ingest(
    p: Path,
    size: int,
    hasher: _Hasher | None,
    store: FlowStore,
    engine: str,
    progress: Progress | None,
    t0: float,
) -> IngestResult:
    from flowaudit.flows import FlowBuilder, FlowConfig

    on_bytes = None if progress is None else (lambda n: progress(min(n, size), size))
    opened = open_capture(p, engine=engine, progress=on_bytes)  # checks the format first
    if hasher is None:  # not a regular file (a pipe ...): hash it the slow way
        hasher = _Hasher(p)
    # Only a capture of the same size can already be in the store: then wait for the
    # hash and skip it.
    if any(rec.size == size for rec in store.captures()):
        digest = hasher.digest()
        if store.get(digest) is not None:
            result = IngestResult(str(p), digest, opened.source_kind, opened.reader)
            result.already_ingested = True
            return result
    result = IngestResult(str(p), "", opened.source_kind, opened.reader)
    builder = FlowBuilder(capture_id="", source_kind=opened.source_kind, config=FlowConfig())
    writer = store.begin(capture_id=hasher.digest)
    try:
        stats = opened.stats
        # Parse and build flows on this thread, the sha256 on the other core: the hash is
        # the longest single task, so it gets a core to itself (a third thread for the flow
        # builder was measured slower: it takes CPU from the hash).
        for batch in opened.batches:
            writer.add(builder.add(batch))
        writer.add(builder.finish())
        if engine == "auto" and stats.frames and stats.unsupported == stats.frames:
            from flowaudit.ingest.tshark import tshark_available

            if tshark_available():
                # a link type only tshark decodes (NFLOG, PPP, IPNET ...): use the second engine
                writer.abort()
                hasher.cancel()
                return ingest_file(p, store, engine="tshark", progress=progress)
        if stats.frames == 0 and stats.warnings:
            # nothing could be read at all: a bad capture, not an empty one
            raise CaptureError("; ".join(stats.warnings))
        fb = builder.stats
        unattributed = int(getattr(fb, "fragments_unattributed", 0))
        result.packets = stats.frames
        result.non_ip = stats.non_ip
        result.skipped = stats.truncated + stats.unsupported + stats.malformed + unattributed
        result.warnings = list(stats.warnings)
        if unattributed:
            result.warnings.append(
                f"{p}: {unattributed} IP fragment(s) whose first fragment was not captured "
                "were counted but form no flow"
            )
        digest = result.sha256 = hasher.digest()
        record = CaptureRecord(
            sha256=digest,
            path=str(p.resolve()),
            size=size,
            source_kind=opened.source_kind,
            reader=opened.reader,
            packets=stats.frames,
            flows=writer.rows,
            skipped=result.skipped,
            warnings=result.warnings,
            stats={
                "frames": stats.frames,
                "ip_packets": stats.ip_packets,
                "non_ip": stats.non_ip,
                "truncated": stats.truncated,
                "unsupported": stats.unsupported,
                "malformed": stats.malformed,
                "fragments_unattributed": unattributed,
            },
        )
        result.flows = writer.rows
        result.already_ingested = not writer.commit(record)
    except BaseException:
        writer.abort()
        raise
    result.seconds = time.perf_counter() - t0
    return result
