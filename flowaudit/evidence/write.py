"""Evidence for findings: the packets of each one's flows as a pcap slice, plus a manifest.

``write_evidence(FINDING_ID, captures, OUT_DIR)`` audits the captures exactly as
``flowaudit.audit`` does (``audit.run.audit_source``, into a temporary store), resolves
the finding id (or a unique prefix of at least 6 hex digits), asks the engine for the
finding's flows (``audit/sql/finding_flows.sql`` over the audit's conversation tables),
selects their packets from each capture (``evidence.select``: fast reader, or tshark with
``engine="tshark"``) and copies those records unchanged into ``OUT_DIR/<id>.pcap``
(``evidence.slicer``). The
manifest ``OUT_DIR/<id>.json`` says what the slice is: the finding (the JSON report's
violation object), the captures (their BLAKE3 capture id and SHA-256) and the slice
(SHA-256) with sizes, the flows, the first/last packet time, the matrix digest, and tshark
enrichment when available. Both files are written to a temp name and renamed, pcap first,
so a manifest only exists next to a complete slice.

Captures are sliced in the order given; packets of one capture keep capture order.
``EvidenceSource`` audits once and writes any number of findings (``write_many``: one
engine, one walk of each capture and one tshark pass for all of them; ``evidence --all``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowaudit._util.files import digest_file
from flowaudit._util.time import as_utc, to_us
from flowaudit.errors import OutputError, UsageError

if TYPE_CHECKING:
    from flowaudit.audit.result import AuditResult
    from flowaudit.evidence.select import FlowKey, Selection
    from flowaudit.evidence.slicer import SlicePart
    from flowaudit.matrix import Matrix

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


def resolve_finding(result: AuditResult, finding_id: str, where: str) -> dict[str, Any]:
    """The violation row whose id is ``finding_id`` or starts with it (≥ 6 hex digits)."""
    from flowaudit._util.arrow import pylist

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
    rows: Sequence[dict[str, Any]],
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> list[list[dict[str, Any]]]:
    """The flows of each violation: the audit's conversation steps once
    (``flowaudit.audit.prepare_conversations``, as ``run_audit`` runs them, on a fresh
    engine over the same flow files), then ``finding_flows.sql`` per finding."""
    from flowaudit._util.arrow import pylist
    from flowaudit.audit.engine import Engine
    from flowaudit.audit.run import prepare_conversations, service_port_bits

    eng = Engine()
    out = []
    try:
        prepare_conversations(eng, matrix, files, since, until)
        for row in rows:
            table = eng.run(
                "finding_flows",
                since=since,
                until=until,
                vlan_id=row["vlan_id"],
                src_ip=row["src_ip"],
                dst_ip=row["dst_ip"],
                protocol=row["protocol"],
                dst_port=row["dst_port"],
                service_ports=service_port_bits(matrix),
            )
            out.append(pylist(table))
    finally:
        eng.close()
    return out


def flow_keys(flows: Sequence[dict[str, Any]], first_tag: int = 0) -> list[FlowKey]:
    """Flow rows (with src_addr/dst_addr) → selection keys, tagged ``first_tag`` + position."""
    from flowaudit.evidence.select import FlowKey, addr_halves

    return [
        FlowKey(
            vlan=-1 if f["vlan_id"] is None else int(f["vlan_id"]),
            protocol=int(f["protocol"]),
            a=addr_halves(f["src_addr"]),
            a_port=int(f["src_port"] or 0),
            b=addr_halves(f["dst_addr"]),
            b_port=int(f["dst_port"] or 0),
            first_us=to_us(f["first_seen"]),
            last_us=to_us(f["last_seen"]),
            tag=first_tag + i,
        )
        for i, f in enumerate(flows)
    ]


def select_flows(path: Path, keys: Sequence[FlowKey], engine: str) -> Selection:
    from flowaudit.evidence.select import packet_batches, select_packets

    return select_packets(packet_batches(path, engine), flows=keys)


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
        from flowaudit.audit.run import audit_source
        from flowaudit.matrix import load_matrix
        from flowaudit.store import FlowStore

        if isinstance(captures, str | os.PathLike):
            captures = [captures]
        self.paths = list(dict.fromkeys(Path(c) for c in captures))
        if not self.paths:
            raise UsageError("evidence needs at least one capture (--capture FILE)")
        self.engine = engine
        self.since, self.until = as_utc(since), as_utc(until)
        self._tmp = tempfile.TemporaryDirectory(prefix="flowaudit-evidence-")
        try:
            self.tmp = Path(self._tmp.name)
            self.store = FlowStore(self.tmp / "store")
            self.matrix = load_matrix(Path(rules) if rules is not None else None, groups)
            self.result, _ = audit_source(
                self.matrix,
                self.paths,
                store=self.store,
                since=self.since,
                until=self.until,
                engine=engine,
            )
            # the ingest hashed them already: its manifest has each resolved path's capture
            # id (BLAKE3); the SHA-256 a manifest also records is taken when one is written
            known = {r.path: r.blake3 for r in self.store.captures()}
            self.digests = {p: known.get(str(p.resolve())) or digest_file(p) for p in self.paths}
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
        return self.write_many([finding_id], out_dir, enrich=enrich)[0]

    def write_many(
        self,
        finding_ids: Sequence[str],
        out_dir: str | os.PathLike[str],
        *,
        enrich: bool | None = None,
    ) -> list[EvidenceResult]:
        """Evidence for several violations: one engine, one walk of each capture, one
        tshark pass. Every id is resolved before anything is written."""
        out = Path(out_dir)
        _check_out_dir(out)
        if enrich is True:
            from flowaudit.evidence.enrich import require_tshark

            require_tshark()
        where = ", ".join(str(p) for p in self.paths)
        rows = list({r["finding_id"]: r for f in finding_ids
                     for r in [resolve_finding(self.result, f, where)]}.values())  # fmt: skip
        flows = finding_flows(self.store.flow_files(), self.matrix, rows, self.since, self.until)
        keys: list[FlowKey] = []
        owner: list[int] = []  # global tag → position in rows
        capture_of: list[str] = []  # global tag → capture id (BLAKE3)
        for k, fl in enumerate(flows):
            keys += flow_keys(fl, first_tag=len(keys))
            owner += [k] * len(fl)
            capture_of += [f["capture_id"] for f in fl]
        parts = _select(keys, owner, capture_of, len(rows), self.digests, self.engine)
        return _write_all(rows, self.result, flows, keys, owner, parts, self.digests, out,
                          enrich, self.tmp)  # fmt: skip


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
        from flowaudit.evidence.enrich import require_tshark

        require_tshark()
    with EvidenceSource(
        captures, rules=rules, groups=groups, since=since, until=until, engine=engine
    ) as src:
        return src.write(finding_id, out_dir, enrich=enrich)


def _select(
    keys: Sequence[FlowKey],
    owner: Sequence[int],
    capture_of: Sequence[str],
    n_findings: int,
    digests: dict[Path, str],
    engine: str,
) -> list[list[SlicePart]]:
    """Each finding's frames from each capture (one walk per capture for all findings)."""
    parts: list[list[SlicePart]] = [[] for _ in range(n_findings)]
    seen: set[str] = set()
    for p, sha in digests.items():
        if sha in seen:
            continue
        seen.add(sha)
        mine = [k for k in keys if capture_of[k.tag] == sha]
        if not mine:
            continue
        sel = select_flows(p, mine, engine)
        for k, sub in sel.split(lambda tag: owner[tag]).items():
            parts[k].append(sub.slice_part(p))
    return parts


def _write_all(
    rows: Sequence[dict[str, Any]],
    result: AuditResult,
    flows: Sequence[list[dict[str, Any]]],
    keys: Sequence[FlowKey],
    owner: Sequence[int],
    parts: Sequence[list[SlicePart]],
    digests: dict[Path, str],
    out: Path,
    enrich: bool | None,
    tmp: Path,
) -> list[EvidenceResult]:
    """Slices to temp files, one enrichment pass over them, then rename each slice and
    write its manifest (a manifest only ever sits beside a complete slice)."""
    from flowaudit.evidence.slicer import write_slice

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out}: cannot create the evidence directory: {e.strerror}") from e
    temps = [out / f".{r['finding_id']}.pcap.{uuid.uuid4().hex[:8]}.tmp" for r in rows]
    try:
        # the source captures' SHA-256 (beside their BLAKE3 ids): taken here only, once
        sha256s = {p: sha256_of(p) for p in digests}
        infos = []
        for t, part in zip(temps, parts, strict=True):
            with open(t, "wb") as f:
                infos.append(write_slice(f, part))
        names = {k.tag: rows[owner[k.tag]]["finding_id"] for k in keys}
        enrichment, note = _enrich(temps, keys, names, enrich, tmp)
        done = []
        for row, fl, part, info, t in zip(rows, flows, parts, infos, temps, strict=True):
            fid = row["finding_id"]
            pcap, manifest = out / f"{fid}.pcap", out / f"{fid}.json"
            os.replace(t, pcap)
            found = None if enrichment is None else enrichment.get(fid, {})
            times = [x for p in part for x in p.ts_ns]
            doc = _manifest(row, result, fl, digests, sha256s, pcap, info, times, found, note)
            if info.format == "pcapng":
                doc["slice"]["note"] = (
                    f"packets span link types {list(info.link_types)} or times a classic pcap "
                    "cannot hold: written as pcapng"
                )
            try:
                from flowaudit._util.files import write_text_atomic

                write_text_atomic(manifest, json.dumps(doc, indent=2) + "\n")
            except OSError:
                pcap.unlink(missing_ok=True)
                raise
            done.append(EvidenceResult(fid, pcap, manifest, info.packets, len(fl), found, note))
        return done
    except OSError as e:
        raise OutputError(f"{e.filename or out}: cannot write evidence: {e.strerror}") from e
    finally:
        for t in temps:
            t.unlink(missing_ok=True)


def _enrich(
    slices: Sequence[Path],
    keys: Sequence[FlowKey],
    names: dict[int, str],
    enrich: bool | None,
    tmp: Path,
) -> tuple[dict[str, dict[str, list[str]]] | None, str | None]:
    from flowaudit.evidence.enrich import (
        CONNS_PER_FINDING,
        PACKETS_PER_CONN,
        enrich_capped,
        tshark_available,
    )

    if enrich is False:
        return None, "enrichment disabled (--no-enrich)"
    if not tshark_available():
        return None, "tshark is not installed (apt-get install tshark): no enrichment"
    found = enrich_capped(list(slices), flows=keys, tag_names=names, tmp=tmp)
    note = (
        f"tshark dissected the first {PACKETS_PER_CONN} packets of up to "
        f"{CONNS_PER_FINDING} flows of the slice"
    )
    return found, note


def _manifest(
    row: dict[str, Any],
    result: AuditResult,
    flows: list[dict[str, Any]],
    digests: dict[Path, str],
    sha256s: dict[Path, str],
    pcap: Path,
    info: Any,
    times: list[int],
    enrichment: dict[str, list[str]] | None,
    note: str | None,
) -> dict[str, Any]:
    from flowaudit._util.time import iso
    from flowaudit._util.version import __version__
    from flowaudit.packets.pcap import LINKTYPE_NAMES
    from flowaudit.report.json_ import violation_dicts

    finding = next(v for v in violation_dicts(result) if v["finding_id"] == row["finding_id"])

    def ns_iso(t: int) -> str:
        sec, ns = divmod(t, 1_000_000_000)
        return dt.datetime.fromtimestamp(sec, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}Z"

    return {
        "finding": finding,
        "captures": [
            {
                "name": p.name,
                "path": str(p.resolve()),
                "blake3": b3,
                "sha256": sha256s[p],
                "size": p.stat().st_size,
            }
            for p, b3 in digests.items()
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
        "flowaudit_version": __version__,
        "enrichment": enrichment,
        "enrichment_note": note,
    }


__all__ = ["EvidenceResult", "EvidenceSource", "resolve_finding", "write_evidence"]
