"""Source → flows → store: the one entry for captures and flow-record files.

``ingest_paths`` picks each input's format (pcap/pcapng by magic bytes, else nfcapd,
Zeek or Hubble by content; NetFlow only when asked), then:

* a **capture** is hashed on a background thread (the manifest key: the same bytes
  twice add nothing) while its packet batches stream through the flow builder; flow
  tables spill into the store writer and commit atomically with the manifest entry.
  Memory is bounded by the reader's chunk, the live-flow table and the writer's spill
  size, never by the capture's size.
* a **record file** (NetFlow/IPFIX, nfcapd, Zeek conn.log, Hubble JSON) is hashed, its
  reader's FLOW_SCHEMA tables stream into the writer, one manifest entry per file (an
  nfcapd directory is one entry per file; files already in the store are not read).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowaudit._util.files import digest_file, file_digest
from flowaudit.choices import INPUT_FORMATS, RECORD_FORMATS
from flowaudit.errors import CaptureError, UsageError
from flowaudit.packets import open_capture
from flowaudit.packets.tunnels import VXLAN_PORTS
from flowaudit.store import CaptureRecord, FlowStore

Progress = Callable[[int, int], None]  # (bytes done, bytes total)
ServicePorts = Sequence[int | tuple[int, int]]  # Matrix.service_ports
#: the service ports, or what loads them: called when the first flows are built, so the first
#: capture's hash already runs while the matrix loads (cache it: it may be called again)
PortsArg = ServicePorts | Callable[[], ServicePorts]


def _ports(ports: PortsArg) -> ServicePorts:
    return ports() if callable(ports) else ports


@dataclass
class IngestResult:
    """What one capture's ingest did (for the CLI summary and the API)."""

    path: str
    blake3: str  # the capture id (BLAKE3-256 hex of the file)
    source_kind: str
    reader: str
    packets: int = 0
    flows: int = 0
    non_ip: int = 0
    non_ip_detail: str = ""  # the non-IP frames by ethertype ("ARP 20, LLDP 10")
    skipped: int = 0
    seconds: float = 0.0
    already_ingested: bool = False
    warnings: list[str] = field(default_factory=list)
    unit: str = "packets"  # what ``packets`` counts ("records" for flow-record inputs)

    def summary(self) -> str:
        name = Path(self.path).name
        if self.already_ingested:
            return f"{name}: already in the store (blake3 {self.blake3[:12]}…), nothing added"
        detail = f" ({self.non_ip_detail})" if self.non_ip_detail else ""
        non_ip = f"{self.non_ip:,} non-IP{detail}, " if self.unit == "packets" else ""
        how = {"tshark": " (tshark engine)", "fast": ""}.get(self.reader, f" ({self.source_kind})")
        return (
            f"{name}: {self.packets:,} {self.unit}, {self.flows:,} flows, {non_ip}"
            f"{self.skipped:,} skipped, {self.seconds:.2f} s{how}"
        )


class _Hasher:
    """The capture's BLAKE3 digest, computed in a background thread from construction on.

    The file is hashed straight from the page cache through a sliding ``mmap`` window
    (no copy into a read buffer; resident memory bounded by the window). blake3 releases
    the GIL while it hashes a window and the kernels release it while they run, so the
    hash runs on the other core while the reader and the flow builder work.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._digest: str | None = None
        self._error: OSError | None = None
        self._cancel = False
        self._thread = threading.Thread(target=self._run, name="flowaudit-blake3", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with open(self.path, "rb") as f:
                self._digest = file_digest(f, lambda: self._cancel)
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


_PIPELINE = os.environ.get("FLOWAUDIT_PIPELINE", "1") != "0"
_AHEAD = 2  # decoded batches waiting for the flow builder (memory: a few MB each)


def _decoded_ahead(batches: Iterator[Any]) -> Iterator[Any]:
    """``batches``, decoded on a reader thread up to ``_AHEAD`` batches ahead of the caller
    (same batches, same order). The reader's failure is raised here; when the caller stops
    early (a failure of its own) the reader stops at its next batch and closes the source."""
    import queue

    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=_AHEAD)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for batch in batches:
                if not put(("batch", batch)):
                    break
            put(("end", None))
        except BaseException as e:  # handed to the consumer, raised there
            put(("error", e))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=run, name="flowaudit-decode", daemon=True)
    reader.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def ingest_file(
    path: str | Path,
    store: FlowStore,
    *,
    engine: str = "auto",
    progress: Progress | None = None,
    service_ports: PortsArg = (),
    vxlan_ports: Sequence[int] | None = VXLAN_PORTS,
) -> IngestResult:
    """Ingest one pcap/pcapng capture into ``store``. Idempotent by content hash.

    ``service_ports`` (besides the well-known ones) orient flows seen without a SYN: pass
    the matrix's (``Matrix.service_ports``). ``vxlan_ports``: the UDP ports whose VXLAN
    frames are opened (Geneve and GRE always are) into inner flows; None opens none."""
    t0 = time.perf_counter()
    p = _input_path(path)
    is_file = p.is_file()
    size = p.stat().st_size if is_file else 0
    # The BLAKE3 hash runs on the other core from the start (before numpy, pyarrow and the
    # kernels are even imported); the writer stamps it into capture_id when it spills.
    hasher = _Hasher(p) if is_file else None
    try:
        return _ingest(p, size, hasher, store, engine, progress, service_ports, vxlan_ports, t0)
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
    service_ports: PortsArg,
    vxlan_ports: Sequence[int] | None,
    t0: float,
) -> IngestResult:
    from flowaudit.flows.builder import FlowBuilder, FlowConfig
    from flowaudit.flows.ports import service_port_mask
    from flowaudit.flows.tunnel import InnerFlowBuilder

    on_bytes = None if progress is None else (lambda n: progress(min(n, size), size))
    # checks the format first
    opened = open_capture(p, engine=engine, progress=on_bytes, vxlan_ports=vxlan_ports)
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
    builder = FlowBuilder(
        capture_id="",
        source_kind=opened.source_kind,
        config=FlowConfig(service_ports=service_port_mask(_ports(service_ports))),
    )
    inner: InnerFlowBuilder | None = None  # made at the first tunnelled frame
    writer = store.begin(capture_id=hasher.digest)
    try:
        stats = opened.stats
        # Build flows on this thread while the reader decodes the next batches on another
        # (both kernels release the GIL) and the hash runs beside both.
        batches = _decoded_ahead(opened.batches) if _PIPELINE else opened.batches
        try:
            for batch in batches:
                writer.add(builder.add(batch))
                if batch.inner is not None:
                    if inner is None:
                        inner = InnerFlowBuilder("", opened.source_kind, builder.config)
                    writer.add(inner.add(batch.inner))
        finally:  # a failure here stops the reader thread at once
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        if inner is None:
            writer.add(builder.finish())
        else:  # the two tables' last flows at once (their kernels and numpy release the GIL)
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(1, thread_name_prefix="flowaudit-inner") as pool:
                last_inner = pool.submit(inner.finish)
                writer.add(builder.finish())
                writer.add(last_inner.result())
        if engine == "auto" and stats.frames and stats.unsupported == stats.frames:
            from flowaudit.packets.tshark import tshark_available

            if tshark_available():
                # a link type only tshark decodes (NFLOG, PPP, IPNET ...): use the second engine
                writer.abort()
                hasher.cancel()
                return ingest_file(
                    p, store, engine="tshark", progress=progress, service_ports=service_ports,
                    vxlan_ports=vxlan_ports,
                )  # fmt: skip
        if stats.frames == 0 and stats.warnings:
            # nothing could be read at all: a bad capture, not an empty one
            raise CaptureError("; ".join(stats.warnings))
        fb = builder.stats
        unattributed = int(getattr(fb, "fragments_unattributed", 0))
        no_ports = int(fb.ip_without_ports)
        result.packets = stats.frames
        result.non_ip = stats.non_ip
        result.non_ip_detail = stats.non_ip_text()
        # every frame is in a flow, non-IP, or skipped (and each skip is named below)
        result.skipped = (
            stats.truncated + stats.unsupported + stats.malformed + unattributed + no_ports
        )
        result.warnings = list(stats.warnings)
        if unattributed:
            result.warnings.append(
                f"{p}: {unattributed} IP fragment(s) whose first fragment was not captured "
                "were counted but form no flow"
            )
        if no_ports:
            result.warnings.append(
                f"{p}: {no_ports} TCP/UDP/SCTP/ICMP packet(s) without a readable transport "
                "header (cut by the snap length) form no flow"
            )
        for what, n in (
            ("truncated (shorter than the headers they announce)", stats.truncated),
            ("of a link type or encapsulation not decoded", stats.unsupported),
            ("malformed (inconsistent IP headers)", stats.malformed),
        ):
            if n:
                result.warnings.append(f"{p}: {n} frame(s) {what} skipped")
        digest = result.blake3 = hasher.digest()
        record = CaptureRecord(
            blake3=digest,
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
                **{f"non_ip_0x{k:04x}": v for k, v in sorted(stats.non_ip_ethertypes.items())},
                "truncated": stats.truncated,
                "unsupported": stats.unsupported,
                "malformed": stats.malformed,
                "fragments_unattributed": unattributed,
                "ip_without_ports": no_ports,
            },
        )
        result.flows = writer.rows
        result.already_ingested = not writer.commit(record)
        result.warnings.extend(writer.warnings)
    except BaseException:
        writer.abort()
        raise
    result.seconds = time.perf_counter() - t0
    return result


def _reader(fmt: str) -> Callable[..., Iterator[Any]]:
    if fmt == "netflow":
        from flowaudit.records.netflow.reader import iter_netflow_tables

        return iter_netflow_tables
    if fmt == "nfcapd":
        from flowaudit.records.nfcapd import iter_nfcapd_tables

        return iter_nfcapd_tables
    if fmt == "zeek":
        from flowaudit.records.zeek import iter_zeek_tables

        return iter_zeek_tables
    if fmt == "hubble":
        from flowaudit.records.hubble import iter_hubble_tables

        return iter_hubble_tables
    raise CaptureError(f"unknown format {fmt!r}; choose one of {', '.join(RECORD_FORMATS)}")


def ingest_records(
    path: str | Path, store: FlowStore, fmt: str, service_ports: PortsArg = ()
) -> list[IngestResult]:
    """Ingest one record file (or, for nfcapd, a directory of them) into ``store``."""
    p = _input_path(path)
    if fmt == "nfcapd" and p.is_dir():
        from flowaudit.records.nfcapd import nfcapd_files

        if not nfcapd_files(p, hash_files=False):
            raise CaptureError(f"{p}: no nfcapd.* file in this directory: nothing to ingest")
        seen = {rec.blake3 for rec in store.captures()}
        return [
            _ingest_one(f, store, fmt, digest, service_ports) for f, digest in nfcapd_files(p, seen)
        ]
    if p.is_dir():
        raise CaptureError(f"{p}: is a directory (only --format nfcapd reads directories)")
    return [_ingest_one(p, store, fmt, digest_file(p), service_ports)]


def _input_path(path: str | os.PathLike[str]) -> Path:
    """``path`` when it can be ingested: a regular file or a directory (never a device, a
    pipe or a socket: an endless stream would be hashed forever, and a pipe cannot be
    read twice, once for the digest and once for the flows)."""
    p = Path(path)
    if not p.exists():
        raise CaptureError(f"{p}: no such file or directory")
    if not (p.is_file() or p.is_dir()):
        raise CaptureError(
            f"{p}: not a regular file (a device, pipe or socket)",
            hint="save the capture or log to a file first",
        )
    return p


def _ingest_one(
    p: Path, store: FlowStore, fmt: str, digest: str, service_ports: PortsArg
) -> IngestResult:
    from flowaudit.records.common import RecordStats

    t0 = time.perf_counter()
    result = IngestResult(str(p), digest, fmt, fmt, unit="records")
    if store.get(digest) is not None:
        result.already_ingested = True
        return result
    stats = RecordStats()
    kinds: set[str] = set()
    writer = store.begin(capture_id=lambda: digest)
    try:
        # the pairing readers orient a pair that started at once by its service port
        extra = {"service_ports": _ports(service_ports)} if fmt in ("netflow", "nfcapd") else {}
        for table in _reader(fmt)(p, stats=stats, **extra):
            if table.num_rows:
                kinds.update(table.column("source_kind").unique().to_pylist())
            writer.add(table)
        warnings = list(stats.warnings)
        if stats.records == 0:
            warnings.append(f"{p}: contains no flow records ({fmt}); nothing to audit from it")
        bad_times = stats.counters.get("records_time_out_of_range", 0)
        if bad_times:
            warnings.append(
                f"{p}: {bad_times} record(s) with a time outside 1970-01-01..2261-12-31 skipped"
            )
        if stats.suppressed_warnings:
            warnings.append(f"{p}: {stats.suppressed_warnings} more warnings not shown")
        record = CaptureRecord(
            blake3=digest,
            path=str(p.resolve()),
            size=p.stat().st_size,
            source_kind="+".join(sorted(kinds)) or fmt,
            reader=fmt,
            packets=stats.records,
            flows=writer.rows,
            skipped=stats.skipped,
            warnings=warnings,
            stats={"records": stats.records, "skipped": stats.skipped, **stats.counters},
        )
        result.source_kind = record.source_kind
        result.already_ingested = not writer.commit(record)
    except BaseException:
        writer.abort()
        raise
    result.packets = stats.records
    result.flows = writer.rows
    result.skipped = stats.skipped
    result.warnings = [*warnings, *writer.warnings]
    result.seconds = time.perf_counter() - t0
    return result


def ingest_paths(
    paths: Iterable[str | os.PathLike[str]],
    store: FlowStore,
    *,
    engine: str = "auto",
    format: str = "auto",
    progress: Progress | None = None,
    service_ports: PortsArg = (),
    jobs: int = 1,
    vxlan_ports: Sequence[int] | None = VXLAN_PORTS,
) -> list[IngestResult]:
    """Ingest captures or flow-record files into ``store``, each in its own format.

    ``jobs`` > 1 ingests up to that many inputs at once, each in a worker process (each
    capture's commit protocol is the same: visible only when complete; two copies of one
    capture race for its lock and one adds nothing). Results come in input order; the
    first failure stops the inputs not yet started and is raised once the running ones end
    (what finished is committed, as in a serial run). ``progress`` is serial-only."""
    todo = [Path(p) for p in paths]
    if jobs > 1 and len(todo) > 1:
        todo = [_input_path(p) for p in todo]  # refused before any worker starts
        return _ingest_parallel(todo, store, engine, format, service_ports, jobs, vxlan_ports)
    out: list[IngestResult] = []
    for p in todo:
        out.extend(_ingest_input(p, store, engine, format, progress, service_ports, vxlan_ports))
    _ports(service_ports)  # a bad matrix is an error even when every input was known
    return out


def _ingest_input(
    p: Path,
    store: FlowStore,
    engine: str,
    format: str,
    progress: Progress | None,
    service_ports: PortsArg,
    vxlan_ports: Sequence[int] | None = VXLAN_PORTS,
) -> list[IngestResult]:
    p = _input_path(p)
    fmt = input_format(p, format)
    if fmt == "pcap":
        ports = service_ports
        return [
            ingest_file(p, store, engine=engine, progress=progress, service_ports=ports,
                        vxlan_ports=vxlan_ports)
        ]  # fmt: skip
    return ingest_records(p, store, fmt, service_ports)


def _worker(
    p: Path,
    root: Path,
    engine: str,
    format: str,
    service_ports: ServicePorts,
    vxlan_ports: Sequence[int] | None = VXLAN_PORTS,
) -> tuple[list[IngestResult], list[str]]:
    """One input, in a worker process: its results and what the store's readers warned."""
    store = FlowStore(root)
    results = _ingest_input(p, store, engine, format, None, service_ports, vxlan_ports)
    return results, store.warnings


def _ingest_parallel(
    todo: list[Path],
    store: FlowStore,
    engine: str,
    format: str,
    service_ports: PortsArg,
    jobs: int,
    vxlan_ports: Sequence[int] | None = VXLAN_PORTS,
) -> list[IngestResult]:
    import multiprocessing
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    # spawn: a fresh interpreter per worker (forking the caller, which may hold threads, is
    # unsafe); a worker imports the ingest stack once and keeps it for every input it takes
    ctx = multiprocessing.get_context("spawn")
    from flowaudit.kernels.build import kernels

    kernels()  # a first run builds them here, once (and the caller's notice says so)
    ports = list(_ports(service_ports))
    with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx) as pool:
        futures = [
            pool.submit(_worker, p, store.root, engine, format, ports, vxlan_ports) for p in todo
        ]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        if pending:  # a failure: start nothing more, let the running ones finish
            for f in pending:
                f.cancel()
            wait(pending)
        out: list[IngestResult] = []
        for f in futures:
            if f.cancelled():
                continue
            results, warnings = f.result()  # the first failure, in input order, is raised
            out.extend(results)
            store.warnings.extend(w for w in warnings if w not in store.warnings)
    return out


def input_format(path: Path, fmt: str) -> str:
    """The format to read ``path`` with: ``fmt`` itself, or (``auto``) judged by content."""
    if fmt not in INPUT_FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(INPUT_FORMATS)}")
    if fmt != "auto":
        return fmt
    if path.is_dir():
        return "nfcapd"
    from flowaudit.packets.detect import detect_record_format, sniff_format

    if sniff_format(path) in ("pcap", "pcapng"):
        return "pcap"
    detected = detect_record_format(path)
    if detected is None:
        raise CaptureError(
            f"{path}: not a pcap/pcapng capture, nfcapd file, Zeek conn.log or Hubble export "
            "(recognised by content at offset 0)",
            hint="for NetFlow/IPFIX export datagrams pass --format netflow",
        )
    return detected


__all__ = [
    "IngestResult",
    "Progress",
    "ingest_file",
    "ingest_paths",
    "ingest_records",
    "input_format",
]
