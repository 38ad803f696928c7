"""Evidence for one finding: the packets of its flows as a pcap slice, plus a manifest.

``write_evidence(FINDING_ID, captures, OUT_DIR)`` audits the captures exactly as
``flowaudit.api.audit`` does (into a temporary store), resolves the finding id (or a
unique prefix of at least 6 hex digits), asks the engine for the finding's flows
(``sql/finding_flows.sql`` over the audit's conversation tables), selects their packets
from each capture (``packet_select``: fast reader, or tshark with ``engine="tshark"``)
and copies those records unchanged into ``OUT_DIR/<id>.pcap`` (``ingest/slicer``). The
manifest ``OUT_DIR/<id>.json`` says what the slice is: the finding (the JSON report's
violation object), the captures and the slice with sha256 and sizes, the flows, the
first/last packet time, the matrix digest, and tshark enrichment when available. Both
files are written to a temp name and renamed, pcap first, so a manifest only exists
next to a complete slice.

Captures are sliced in the order given; packets of one capture keep capture order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from flowaudit.errors import OutputError, UsageError

if TYPE_CHECKING:
    from flowaudit.audit import AuditResult
    from flowaudit.matrix import Matrix
    from flowaudit.packet_select import FlowKey, Selection

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MIN_PREFIX = 6
FLOW_KEYS = ("flow_id", "vlan_id", "src_ip", "dst_ip", "src_port", "dst_port", "protocol",
             "first_seen", "last_seen", "src_packets", "src_bytes", "dst_packets", "dst_bytes",
             "state", "capture_id")  # fmt: skip


@dataclass(frozen=True)
class EvidenceResult:
    """What ``write_evidence`` wrote."""

    finding_id: str
    pcap_path: Path
    manifest_path: Path
    packets: int
    flows: int
    enrichment: dict[str, list[str]] | None
    enrichment_note: str | None


def us(t: dt.datetime) -> int:
    """A UTC datetime → integer µs since the epoch."""
    return (t - EPOCH) // dt.timedelta(microseconds=1)


def resolve_finding(result: AuditResult, finding_id: str, where: str) -> dict[str, Any]:
    """The violation row whose id is ``finding_id`` or starts with it (≥ 6 hex digits)."""
    from flowaudit._arrow import pylist

    fid = finding_id.strip().lower()
    if not re.fullmatch(r"[0-9a-f]+", fid) or len(fid) < MIN_PREFIX:
        raise UsageError(
            f"{finding_id!r} is not a finding id: give the id or a prefix of at least "
            f"{MIN_PREFIX} hex digits (see `flowaudit audit --format json`)"
        )
    unused = [u for u in result.unused_rules.column("finding_id").to_pylist() if u.startswith(fid)]
    rows = [v for v in pylist(result.violations) if v["finding_id"].startswith(fid)]
    if not rows and unused:
        raise UsageError(
            f"{finding_id} is an unused-rule finding ({unused[0]}): it is about traffic that "
            "was NOT seen, so it has no packets to slice"
        )
    if not rows:
        n, m = result.violations.num_rows, result.unused_rules.num_rows
        raise UsageError(
            f"no finding {finding_id} in the audit of {where} "
            f"({n} violation finding(s), {m} unused-rule finding(s))",
            hint="list the ids with `flowaudit audit CAPTURE --format json`",
        )
    if len(rows) > 1:
        ids = ", ".join(sorted(r["finding_id"] for r in rows))
        raise UsageError(f"finding id prefix {finding_id} is ambiguous: {ids}")
    return rows[0]


def finding_flows(
    files: Sequence[Path],
    matrix: Matrix,
    row: dict[str, Any],
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> list[dict[str, Any]]:
    """The flows of one violation: the audit's conversation steps, then finding_flows.sql.

    The steps are ``flowaudit.audit.prepare_conversations`` (as ``run_audit`` runs them),
    on a fresh engine over the same flow files.
    """
    from flowaudit._arrow import pylist
    from flowaudit.audit import prepare_conversations
    from flowaudit.engine import Engine

    eng = Engine()
    try:
        prepare_conversations(eng, matrix, files, since, until)
        table = eng.run(
            "finding_flows",
            since=since,
            until=until,
            vlan_id=row["vlan_id"],
            src_ip=row["src_ip"],
            dst_ip=row["dst_ip"],
            protocol=row["protocol"],
            dst_port=row["dst_port"],
        )
    finally:
        eng.close()
    return pylist(table)


def flow_keys(flows: Sequence[dict[str, Any]]) -> list[FlowKey]:
    """Flow rows (with src_addr/dst_addr) → selection keys, tagged by list position."""
    from flowaudit.packet_select import FlowKey, addr_halves

    return [
        FlowKey(
            vlan=-1 if f["vlan_id"] is None else int(f["vlan_id"]),
            protocol=int(f["protocol"]),
            a=addr_halves(f["src_addr"]),
            a_port=int(f["src_port"] or 0),
            b=addr_halves(f["dst_addr"]),
            b_port=int(f["dst_port"] or 0),
            first_us=us(f["first_seen"]),
            last_us=us(f["last_seen"]),
            tag=i,
        )
        for i, f in enumerate(flows)
    ]


def select_flows(path: Path, keys: Sequence[FlowKey], engine: str) -> Selection:
    from flowaudit.packet_select import packet_batches, select_packets

    return select_packets(packet_batches(path, engine), flows=keys)


@contextmanager
def atomic_binary(dest: Path) -> Iterator[IO[bytes]]:
    """A temp file beside ``dest``, renamed onto it when the block succeeds."""
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            yield f
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _check_out_dir(out: Path) -> None:
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{out}: cannot write evidence there: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: cannot write evidence there: {probe} is not writable")


class EvidenceSource:
    """Captures audited once, ready to slice any of their findings (``write``).

    Owns a temporary flow store (removed by ``close`` / the ``with`` block).
    """

    def __init__(
        self,
        captures: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        rules: str | os.PathLike[str] | None = None,
        groups: dict[str, list[str]] | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        engine: str = "auto",
    ) -> None:
        from flowaudit import api
        from flowaudit.store import FlowStore

        if isinstance(captures, str | os.PathLike):
            captures = [captures]
        self.paths = list(dict.fromkeys(Path(c) for c in captures))
        if not self.paths:
            raise UsageError("evidence needs at least one capture (--capture FILE)")
        self.engine = engine
        self.since, self.until = api.as_utc(since), api.as_utc(until)
        self._tmp = tempfile.TemporaryDirectory(prefix="flowaudit-evidence-")
        try:
            self.tmp = Path(self._tmp.name)
            self.store = FlowStore(self.tmp / "store")
            self.result = api.audit(
                self.paths,
                store=self.store,
                rules=rules,
                groups=groups,
                since=self.since,
                until=self.until,
                engine=engine,
            )
            self.matrix = api.load_matrix(rules, groups)
            # the ingest hashed them already: its manifest has each resolved path's sha256
            known = {r.path: r.sha256 for r in self.store.captures()}
            self.digests = {p: known.get(str(p.resolve())) or sha256_of(p) for p in self.paths}
        except BaseException:
            self._tmp.cleanup()
            raise

    def __enter__(self) -> EvidenceSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._tmp.cleanup()

    def write(
        self, finding_id: str, out_dir: str | os.PathLike[str], *, enrich: bool | None = None
    ) -> EvidenceResult:
        """Write ``OUT_DIR/<id>.pcap`` and ``OUT_DIR/<id>.json`` for one violation."""
        out = Path(out_dir)
        _check_out_dir(out)
        if enrich is True:
            from flowaudit.enrich import require_tshark

            require_tshark()
        where = ", ".join(str(p) for p in self.paths)
        row = resolve_finding(self.result, finding_id, where)
        flows = finding_flows(self.store.flow_files(), self.matrix, row, self.since, self.until)
        return _write(row, self.result, flows, self.digests, out, self.engine, enrich, self.tmp)


def write_evidence(
    finding_id: str,
    captures: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    rules: str | os.PathLike[str] | None = None,
    groups: dict[str, list[str]] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    engine: str = "auto",
    enrich: bool | None = None,
) -> EvidenceResult:
    """Write ``OUT_DIR/<finding_id>.pcap`` and ``.json`` for one violation (module doc).

    ``enrich``: None = dissect the slice with tshark when it is installed; True = require
    tshark (UsageError without); False = no enrichment.
    """
    _check_out_dir(Path(out_dir))
    if enrich is True:
        from flowaudit.enrich import require_tshark

        require_tshark()
    with EvidenceSource(
        captures, rules=rules, groups=groups, since=since, until=until, engine=engine
    ) as src:
        return src.write(finding_id, out_dir, enrich=enrich)


def _write(
    row: dict[str, Any],
    result: AuditResult,
    flows: list[dict[str, Any]],
    digests: dict[Path, str],
    out: Path,
    engine: str,
    enrich: bool | None,
    tmp: Path,
) -> EvidenceResult:
    from flowaudit.ingest.slicer import SlicePart, write_slice

    fid = row["finding_id"]
    keys = flow_keys(flows)
    parts: list[SlicePart] = []
    seen: set[str] = set()
    for p, sha in digests.items():
        if sha in seen:
            continue
        seen.add(sha)
        mine = [k for k, f in zip(keys, flows, strict=True) if f["capture_id"] == sha]
        if not mine:
            continue
        sel = select_flows(p, mine, engine)
        parts.append(sel.slice_part(p))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out}: cannot create the evidence directory: {e.strerror}") from e
    pcap = out / f"{fid}.pcap"
    manifest = out / f"{fid}.json"
    try:
        with atomic_binary(pcap) as f:
            info = write_slice(f, parts)
            f.flush()
            enrichment, note = _enrich(Path(f.name), keys, fid, enrich, tmp)
    except OSError as e:
        raise OutputError(f"{pcap}: cannot write the slice: {e.strerror}") from e
    times = [t for part in parts for t in part.ts_ns]
    doc = _manifest(row, result, flows, digests, pcap, info, times, enrichment, note)
    if info.format == "pcapng":
        doc["slice"]["note"] = (
            f"packets span link types {list(info.link_types)} or times a classic pcap cannot "
            "hold: written as pcapng"
        )
    try:
        from flowaudit._files import write_text_atomic

        write_text_atomic(manifest, json.dumps(doc, indent=2) + "\n")
    except OSError as e:
        pcap.unlink(missing_ok=True)
        raise OutputError(f"{manifest}: cannot write the manifest: {e.strerror}") from e
    return EvidenceResult(fid, pcap, manifest, info.packets, len(flows), enrichment, note)


def _enrich(
    slice_path: Path, keys: Sequence[FlowKey], fid: str, enrich: bool | None, tmp: Path
) -> tuple[dict[str, list[str]] | None, str | None]:
    from flowaudit.enrich import (
        CONNS_PER_FINDING,
        PACKETS_PER_CONN,
        enrich_capped,
        tshark_available,
    )

    if enrich is False:
        return None, "enrichment disabled (--no-enrich)"
    if not tshark_available():
        return None, "tshark is not installed (apt-get install tshark): no enrichment"
    found = enrich_capped([slice_path], flows=keys, tag_names={k.tag: fid for k in keys}, tmp=tmp)
    note = (
        f"tshark dissected the first {PACKETS_PER_CONN} packets of up to "
        f"{CONNS_PER_FINDING} flows of the slice"
    )
    return found.get(fid, {}), note


def _manifest(
    row: dict[str, Any],
    result: AuditResult,
    flows: list[dict[str, Any]],
    digests: dict[Path, str],
    pcap: Path,
    info: Any,
    times: list[int],
    enrichment: dict[str, list[str]] | None,
    note: str | None,
) -> dict[str, Any]:
    import flowaudit
    from flowaudit.ingest.pcap import LINKTYPE_NAMES
    from flowaudit.report.json_ import iso, violation_dicts

    finding = next(v for v in violation_dicts(result) if v["finding_id"] == row["finding_id"])

    def ns_iso(t: int) -> str:
        sec, ns = divmod(t, 1_000_000_000)
        return dt.datetime.fromtimestamp(sec, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}Z"

    return {
        "finding": finding,
        "captures": [
            {"name": p.name, "path": str(p.resolve()), "sha256": sha, "size": p.stat().st_size}
            for p, sha in digests.items()
        ],
        "slice": {
            "file": pcap.name,
            "sha256": sha256_of(pcap),
            "size": pcap.stat().st_size,
            "packets": info.packets,
            "format": info.format,
            "link_types": [
                {"id": lt, "name": LINKTYPE_NAMES.get(lt, str(lt))} for lt in info.link_types
            ],
        },
        "flows": [
            {k: (iso(f[k]) if k in ("first_seen", "last_seen") else f[k]) for k in FLOW_KEYS}
            for f in flows
        ],
        "first_packet": ns_iso(min(times)) if times else None,
        "last_packet": ns_iso(max(times)) if times else None,
        "matrix": {"name": result.matrix_name, "sha256": result.rules_digest},
        "flowaudit_version": flowaudit.__version__,
        "enrichment": enrichment,
        "enrichment_note": note,
    }


__all__ = ["EvidenceResult", "EvidenceSource", "resolve_finding", "write_evidence"]
