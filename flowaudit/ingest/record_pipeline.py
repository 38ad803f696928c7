"""Flow-record files → store: NetFlow/IPFIX exports, nfcapd, Zeek conn.log, Hubble JSON.

The record readers (``netflow``, ``nfcapd``, ``zeek``, ``hubble``) already yield flow
tables in FLOW_SCHEMA; this module hashes each input file (the manifest key),
streams the reader's tables into the store writer (which stamps ``capture_id``) and
commits one manifest entry per file. An nfcapd directory is one entry per file, and
files already in the store are not read again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from flowaudit.errors import CaptureError
from flowaudit.ingest.pipeline import IngestResult
from flowaudit.store import CaptureRecord, FlowStore

RECORD_FORMATS = ("netflow", "nfcapd", "zeek", "hubble")


def _reader(fmt: str) -> Callable[..., Iterator[Any]]:
    if fmt == "netflow":
        from flowaudit.ingest.netflow import iter_netflow_tables

        return iter_netflow_tables
    if fmt == "nfcapd":
        from flowaudit.ingest.nfcapd import iter_nfcapd_tables

        return iter_nfcapd_tables
    if fmt == "zeek":
        from flowaudit.ingest.zeek import iter_zeek_tables

        return iter_zeek_tables
    if fmt == "hubble":
        from flowaudit.ingest.hubble import iter_hubble_tables

        return iter_hubble_tables
    raise CaptureError(f"unknown format {fmt!r}; choose one of {', '.join(RECORD_FORMATS)}")


def sha256_file(path: Path) -> str:
    """The file's sha256 (hex): the manifest key of a record input."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as e:
        raise CaptureError(f"{path}: cannot read: {e.strerror}") from e


def ingest_records(path: str | Path, store: FlowStore, fmt: str) -> list[IngestResult]:
    """Ingest one record file (or, for nfcapd, a directory of them) into ``store``."""
    p = Path(path)
    if not p.exists():
        raise CaptureError(f"{p}: no such file or directory")
    if fmt == "nfcapd" and p.is_dir():
        from flowaudit.ingest.nfcapd import nfcapd_files

        seen = {rec.sha256 for rec in store.captures()}
        return [_ingest_one(f, store, fmt, digest) for f, digest in nfcapd_files(p, seen)]
    if p.is_dir():
        raise CaptureError(f"{p}: is a directory (only --format nfcapd reads directories)")
    return [_ingest_one(p, store, fmt, sha256_file(p))]


def _ingest_one(p: Path, store: FlowStore, fmt: str, digest: str) -> IngestResult:
    from flowaudit.ingest.records import RecordStats

    t0 = time.perf_counter()
    result = IngestResult(str(p), digest, fmt, fmt, unit="records")
    if store.get(digest) is not None:
        result.already_ingested = True
        return result
    stats = RecordStats()
    kinds: set[str] = set()
    writer = store.begin(capture_id=lambda: digest)
    try:
        for table in _reader(fmt)(p, stats=stats):
            if table.num_rows:
                kinds.update(table.column("source_kind").unique().to_pylist())
            writer.add(table)
        warnings = list(stats.warnings)
        if stats.records == 0:
            warnings.append(f"{p}: contains no flow records ({fmt}); nothing to audit from it")
        if stats.suppressed_warnings:
            warnings.append(f"{p}: {stats.suppressed_warnings} more warnings not shown")
        record = CaptureRecord(
            sha256=digest,
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
    result.warnings = warnings
    result.seconds = time.perf_counter() - t0
    return result
