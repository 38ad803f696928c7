"""The public façade for the CLI and notebooks: ingest, load the matrix, audit.

Everything the CLI can do is reachable from here; nothing here prints.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowaudit._util.time import as_utc
from flowaudit.errors import UsageError
from flowaudit.evidence.write import write_evidence as evidence
from flowaudit.ingest import IngestResult, Progress
from flowaudit.store import DEFAULT_STORE, FlowStore
from flowaudit.store_check import StoreCheck

if TYPE_CHECKING:
    import pyarrow as pa

    from flowaudit.audit.proposal import Proposal
    from flowaudit.audit.result import AuditResult
    from flowaudit.matrix import Matrix
    from flowaudit.matrix.diff import RulesDiff
    from flowaudit.matrix.merge import MergeResult
    from flowaudit.report.result import AuditReport


def open_store(path: str | os.PathLike[str] = DEFAULT_STORE) -> FlowStore:
    """The flow store at ``path`` (created on first ingest)."""
    return FlowStore(path)


def ingest(
    captures: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    store: str | os.PathLike[str] | FlowStore = DEFAULT_STORE,
    *,
    engine: str = "auto",
    format: str = "auto",
    progress: Progress | None = None,
    rules: str | os.PathLike[str] | None = None,
    groups: dict[str, list[str]] | None = None,
    jobs: int = 1,
    vxlan_ports: Iterable[int] = (),
    backend: str = "duckdb",
    spark: Any = None,
    spark_master: str | None = None,
) -> list[IngestResult]:
    """Ingest captures or flow-record files into the store; known inputs add nothing.

    ``format``: ``pcap`` (pcap/pcapng packets), ``netflow`` (NetFlow/IPFIX export
    datagrams in a pcap or a raw datagram file), ``nfcapd`` (a file or a directory),
    ``zeek`` (conn.log), ``hubble`` (``hubble observe -o json``), or ``auto``: pcap by
    magic bytes, else nfcapd/Zeek/Hubble by content. NetFlow inside a pcap is never
    guessed: a capture of VLAN 111 may legitimately contain export traffic to audit.
    ``rules``: the matrix whose service ports orient flows seen without a SYN (default:
    the shipped one). ``jobs``: how many inputs to ingest at once (worker processes; each
    capture still commits atomically); ``progress`` is reported only when ``jobs`` is 1.
    ``vxlan_ports``: UDP ports whose VXLAN frames are opened besides 4789 and 8472 (inner
    flows are stored marked by ``tunnel``; Geneve and GRE are always opened).
    ``backend="spark"`` (or a ``spark`` session): one Spark task per input instead of
    worker processes (``flowaudit.spark.ingest``; ``jobs`` and ``progress`` unused).
    """
    from flowaudit.ingest import ingest_paths
    from flowaudit.packets.tunnels import vxlan_ports as all_vxlan_ports

    st = _as_store(store)
    paths = [captures] if isinstance(captures, str | os.PathLike) else list(captures)
    # loaded when the first flows are built: the first capture's hash runs meanwhile
    ports = functools.cache(lambda: load_matrix(rules, groups).service_ports)
    if _use_spark(backend, spark, spark_master):
        from flowaudit.spark import session
        from flowaudit.spark.fanout import ingest_paths as spark_ingest

        s = spark if spark is not None else session(spark_master)
        return spark_ingest(
            s, paths, st, engine=engine, format=format, service_ports=ports(),
            vxlan_ports=all_vxlan_ports(tuple(vxlan_ports)),
        )  # fmt: skip
    return ingest_paths(
        paths, st, engine=engine, format=format, progress=progress, service_ports=ports,
        jobs=jobs, vxlan_ports=all_vxlan_ports(tuple(vxlan_ports)),
    )  # fmt: skip


def load_matrix(
    path: str | os.PathLike[str] | None = None, groups: dict[str, list[str]] | None = None
) -> Matrix:
    """The approved matrix (default: the shipped one), with site group addresses."""
    from flowaudit.matrix import load_matrix as _load

    return _load(Path(path) if path is not None else None, groups)


def audit(
    captures: Iterable[str | os.PathLike[str]] = (),
    *,
    store: str | os.PathLike[str] | FlowStore | None = None,
    rules: str | os.PathLike[str] | None = None,
    groups: dict[str, list[str]] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    engine: str = "auto",
    progress: Progress | None = None,
    baseline: str | os.PathLike[str] | dict[str, Any] | None = None,
    enrich: bool = False,
    control_plane: str | os.PathLike[str] | None = None,
    strict: bool = False,
    vxlan_ports: Iterable[int] = (),
    backend: str = "duckdb",
    spark: Any = None,
    spark_master: str | None = None,
) -> AuditReport:
    """Audit traffic against the matrix.

    With ``captures``, the audit covers exactly those captures (ingested into
    ``store`` when given, else into a temporary store). Without, it audits the
    whole ``store`` (default ``./flowaudit-data``).

    ``baseline``: a previous JSON report (path or its parsed dict); the result then
    has ``changes`` (new / persisting / resolved finding ids), new findings first.
    ``enrich``: name what each violation's traffic is (TLS SNI and certificate names,
    HTTP host, SSH banner, DNS names) by dissecting only its packets with tshark.
    ``control_plane``: a LAN control-plane list (YAML, the format of the shipped
    ``flowaudit/audit/control_plane.yaml``) instead of the shipped one; ``strict``: report
    control-plane traffic as violations (reason ``control-plane``) instead of apart.
    """
    from flowaudit.audit.control_plane import load_control_plane
    from flowaudit.audit.run import audit_source

    since, until = as_utc(since), as_utc(until)
    previous = None
    if baseline is not None:
        from flowaudit.audit.baseline import load_baseline

        previous = baseline if isinstance(baseline, dict) else load_baseline(baseline)
    matrix = load_matrix(rules, groups)
    cplane = load_control_plane(control_plane)
    paths = [Path(p) for p in captures]
    sql_engine = _sql_engine(backend, spark, spark_master)
    result, records = audit_source(
        matrix,
        paths,
        store=_as_store(store) if store is not None else None,
        since=since,
        until=until,
        engine=engine,
        progress=progress,
        control_plane=cplane,
        strict=strict,
        vxlan_ports=tuple(vxlan_ports),
        sql_engine=sql_engine,
    )
    if enrich:
        from flowaudit.evidence.enrich import enrich_result

        sources = paths or [Path(r.path) for r in records if Path(r.path).is_file()]
        gone = [] if paths else [r.path for r in records if not Path(r.path).is_file()]
        if gone and not sources:
            raise UsageError(
                "--enrich needs the packets: no capture of the store is at its recorded path "
                f"any more ({', '.join(gone[:3])}{' ...' if len(gone) > 3 else ''})",
                hint="pass the captures: flowaudit audit CAPTURE... --enrich",
            )
        result = enrich_result(result, sources)
        if gone:
            note = "capture no longer at this path; its findings are not enriched"
            warnings = [*result.stats.get("warnings", []), *(f"{g}: {note}" for g in gone)]
            result = dataclasses.replace(result, stats={**result.stats, "warnings": warnings})
    if previous is not None:
        from flowaudit.audit.baseline import compare

        result = compare(result, previous)
    from flowaudit.report.result import AuditReport

    return AuditReport.of(result)


def query(
    sql: str,
    *,
    store: str | os.PathLike[str] | FlowStore = DEFAULT_STORE,
    rules: str | os.PathLike[str] | None = None,
    groups: dict[str, list[str]] | None = None,
    backend: str = "duckdb",
    spark: Any = None,
    spark_master: str | None = None,
) -> pa.Table:
    """Run one read-only SELECT over the store's ``flows`` and the matrix's ``rules``,
    ``hosts`` and ``scope`` relations. ``backend``, ``spark``, ``spark_master``: as for
    ``audit`` (on Spark the SELECT, written as for DuckDB, is transpiled)."""
    from flowaudit.audit.engine import Engine, SqlEngine

    st = _as_store(store)
    st.check_readable()
    matrix = load_matrix(rules, groups)
    spark_engine = _sql_engine(backend, spark, spark_master)
    eng: SqlEngine = spark_engine if spark_engine is not None else Engine(spill_dir=st.root)
    try:
        eng.register_flows(st.flow_files(), inner=True)
        eng.register_matrix(matrix)
        return eng.read_only_query(sql)
    finally:
        eng.close()


def describe(
    *,
    rules: str | os.PathLike[str] | None = None,
    groups: dict[str, list[str]] | None = None,
) -> pa.Table:
    """The views ``query`` sees (``flows``, ``rules``, ``hosts``, ``scope``): one row per
    column with its DuckDB type and one line of meaning (view, column, type, meaning)."""
    from flowaudit.audit.engine import Engine

    matrix = load_matrix(rules, groups)
    eng = Engine()
    try:
        return eng.describe_views(matrix)
    finally:
        eng.close()


def check_store(
    store: str | os.PathLike[str] | FlowStore = DEFAULT_STORE,
    *,
    repair: bool = False,
    verify_digests: bool = False,
) -> StoreCheck:
    """Check the store: manifests valid, the files they name present, inside the store,
    listed once and of the flow schema (``verify_digests``: the captures still at their
    recorded paths hash to their manifest keys); orphan flow files, dead ``.tmp`` runs
    and stale locks. ``repair`` removes those three (never a file a manifest names)."""
    from flowaudit.store_check import check_store as _check

    st = _as_store(store)
    st.check_readable()
    return _check(st.root, repair=repair, verify_digests=verify_digests)


def propose_rules(
    captures: Iterable[str | os.PathLike[str]] = (),
    *,
    store: str | os.PathLike[str] | FlowStore | None = None,
    rules: str | os.PathLike[str] | None = None,
    groups: dict[str, list[str]] | None = None,
    no_rules: bool = False,
    findings: Iterable[str] | None = None,
    group_ids: Iterable[str] | None = None,
    aggregate: int | None = None,
    port_gap: int = 0,
    name: str = "observed",
    engine: str = "auto",
) -> Proposal:
    """Rules, in the matrix format, that would approve the selected findings.

    Audits like ``audit`` (``captures``, else the whole ``store``), then proposes rules
    for ``findings`` (finding ids) and the findings of ``group_ids`` (finding-group ids,
    or unique prefixes of at least 6 characters); neither: every finding a rule can
    approve. With
    ``no_rules`` the audit runs against an empty matrix and the proposal is a whole
    matrix named ``name`` that approves all observed traffic (a bootstrap).
    ``groups``: addresses for the matrix's ``needs_configuration`` groups, and, under
    any other name, a group the reviewer names (``NAME=CIDR``): observed addresses
    inside it are proposed as that group. ``aggregate``: widen IPv4 addresses to their
    /N; ``port_gap``: join ports with at most N unobserved ports between them.
    ``Proposal.to_yaml()`` is the file ``rules merge`` takes.
    """
    from flowaudit.audit.propose import propose
    from flowaudit.audit.run import audit_source
    from flowaudit.matrix.loader import empty_matrix

    groups = dict(groups or {})
    if no_rules:
        if rules is not None:
            raise UsageError("--no-rules and --rules exclude each other")
        matrix, naming = empty_matrix(name), groups
    else:
        matrix, naming = _configured(rules, groups)
    result, _ = audit_source(
        matrix,
        [Path(p) for p in captures],
        store=_as_store(store) if store is not None else None,
        engine=engine,
    )
    wanted = list(findings) if findings is not None else None
    if group_ids is not None:
        wanted = [*(wanted or []), *_group_findings(result, list(group_ids))]
    return propose(
        matrix,
        result,
        wanted,
        naming=naming,
        aggregate=aggregate,
        port_gap=port_gap,
        bootstrap=no_rules,
    )


def _group_findings(result: AuditResult, group_ids: list[str]) -> list[str]:
    """The finding ids of the named finding groups (ids or unique prefixes ≥ 6 chars)."""
    table = result.finding_groups
    groups = table.select(["group_id", "findings"]).to_pylist() if table is not None else []
    out: list[str] = []
    for gid in group_ids:
        hits = [g for g in groups if g["group_id"].startswith(gid.lower())] if len(gid) >= 6 else []
        if len(hits) != 1:
            why = "matches no finding group" if not hits else "matches several finding groups"
            raise UsageError(
                f"group id {gid!r} {why} of this audit",
                hint="use an id (or a prefix of 6+ characters) from the report's finding groups",
            )
        out += [f for f in hits[0]["findings"] if f not in out]
    return out


def merge_rules(
    base: str | os.PathLike[str],
    proposal: str | os.PathLike[str],
    output: str | os.PathLike[str],
) -> MergeResult:
    """Write ``base`` with ``proposal`` (from ``propose_rules``) merged to ``output``:
    the base's comments and order kept, the result checked before it is written
    (atomically). A proposal for another matrix, a group name the base uses for other
    addresses, or a rule id it already has is a RulesError."""
    from flowaudit.matrix.merge import merge

    return merge(Path(base), Path(proposal), Path(output))


def diff_rules(
    old: str | os.PathLike[str],
    new: str | os.PathLike[str],
    *,
    store: str | os.PathLike[str] | FlowStore | None = None,
    groups: dict[str, list[str]] | None = None,
) -> RulesDiff:
    """What changing the matrix from ``old`` to ``new`` allows and revokes, which groups'
    addresses and which rules (or their provenance) change, and, with ``store``, which
    observed findings become approved or violations. ``groups`` configure the
    ``needs_configuration`` groups of both."""
    from flowaudit.matrix.diff import diff_matrices

    m_old, _ = _configured(old, groups or {})
    m_new, _ = _configured(new, groups or {})
    out = diff_matrices(m_old, m_new)
    if store is not None:
        from flowaudit.audit.run import audit_source
        from flowaudit.audit.verdicts import verdict_changes

        st = _as_store(store)
        before, _ = audit_source(m_old, store=st)
        after, _ = audit_source(m_new, store=st)
        out = out.with_verdicts(verdict_changes(before, after))
    return out


def _configured(
    path: str | os.PathLike[str] | None, groups: dict[str, list[str]]
) -> tuple[Matrix, dict[str, list[str]]]:
    """The matrix with the ``groups`` it leaves to configuration; the other groups."""
    plain = load_matrix(path)
    configure = {
        n: a for n, a in groups.items() if n in plain.groups and plain.groups[n].needs_configuration
    }
    rest = {n: a for n, a in groups.items() if n not in configure}
    return (load_matrix(path, configure) if configure else plain), rest


SAMPLE = "vlan111-mixed.pcap"  # the shipped sample selftest ingests and audits
SAMPLE_ADMIN = {"admin_workstations": ["10.25.100.10", "10.25.100.11"]}


def shipped_sample() -> tuple[Path, dict[str, Any]]:
    """The sample capture shipped with flowaudit and its ground truth (``…truth.summary``):
    ``flowaudit/_samples`` in a wheel, else ``<repo>/samples/pcaps``."""
    import json

    packaged = Path(__file__).resolve().parent / "_samples"
    repo = Path(__file__).resolve().parent.parent / "samples" / "pcaps"
    folder = packaged if packaged.is_dir() else repo
    pcap = folder / SAMPLE
    truth = folder / SAMPLE.replace(".pcap", ".truth.summary.json")
    if not pcap.is_file() or not truth.is_file():
        raise UsageError(f"{folder}: the shipped sample {SAMPLE} (and its truth) is missing")
    return pcap, json.loads(truth.read_text(encoding="utf-8"))


@dataclasses.dataclass
class SelfTest:
    """What ``selftest`` checked: one line per step, and what went wrong (none: all well)."""

    lines: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)


def selftest() -> SelfTest:
    """Build (or load) the compiled kernels, then ingest and audit the shipped sample in a
    temporary store and compare with its ground truth: packets, flows, and the flows of
    each violation reason. Installs and CI run it so the first real ingest starts warm."""
    import tempfile
    import time

    from flowaudit._util.arrow import pylist
    from flowaudit.kernels.build import kernels

    out = SelfTest()
    t = time.perf_counter()
    k = kernels()
    how = "ahead-of-time module" if k.origin.startswith("aot:") else "numba JIT (no AOT build)"
    out.lines.append(f"kernels: {how}, ready in {time.perf_counter() - t:.2f} s")
    pcap, truth = shipped_sample()
    with tempfile.TemporaryDirectory(prefix="flowaudit-selftest-") as tmp:
        t = time.perf_counter()
        (res,) = ingest(pcap, Path(tmp) / "store")
        out.lines.append(f"ingest: {res.summary()} (blake3 {res.blake3[:16]}…)")
        for what, got, want in (("packets", res.packets, truth["packets"]),
                                ("flows", res.flows, truth["flows"])):  # fmt: skip
            if got != want:
                out.problems.append(f"ingest of {pcap.name}: {got} {what}, expected {want}")
        report = audit(store=Path(tmp) / "store", groups=SAMPLE_ADMIN)
        by_reason: dict[str, int] = {}
        for v in pylist(report.violations):
            by_reason[v["reason"]] = by_reason.get(v["reason"], 0) + int(v["flows"])
        # the LAN control plane is apart from the violations
        want_reasons = {
            k: n for k, n in truth["labels"].items() if k not in ("approved", "control-plane")
        }
        out.lines.append(
            f"audit: {report.flows} flows, {report.violations.num_rows} violations "
            f"({', '.join(f'{r} {n}' for r, n in sorted(by_reason.items()))})"
        )
        if by_reason != want_reasons:
            out.problems.append(f"audit of {pcap.name}: violation flows {by_reason}, "
                                f"expected {want_reasons}")  # fmt: skip
    return out


def _use_spark(backend: str, spark: Any, spark_master: str | None) -> bool:
    """Whether the Spark backend is asked for (``backend="spark"`` or a session given)."""
    from flowaudit.choices import BACKENDS

    if backend not in BACKENDS:
        raise UsageError(f"backend {backend!r}: not one of {', '.join(BACKENDS)}")
    if backend == "duckdb" and spark is None:
        if spark_master is not None:
            raise UsageError("--spark-master needs --backend spark")
        return False
    return True


def _sql_engine(backend: str, spark: Any, spark_master: str | None) -> Any:
    """None for DuckDB (the audit makes its own engine); a SparkEngine on ``spark`` (or a
    session started for ``spark_master``) for the Spark backend."""
    if not _use_spark(backend, spark, spark_master):
        return None
    from flowaudit.spark import SparkEngine, session
    from flowaudit.spark.engine import STORE_URI_ENV

    store_uri = os.environ.get(STORE_URI_ENV) or None
    return SparkEngine(spark if spark is not None else session(spark_master), store_uri=store_uri)


def _as_store(store: str | os.PathLike[str] | FlowStore) -> FlowStore:
    return store if isinstance(store, FlowStore) else FlowStore(store)


__all__ = [
    "IngestResult",
    "StoreCheck",
    "audit",
    "check_store",
    "describe",
    "diff_rules",
    "merge_rules",
    "evidence",
    "query",
    "ingest",
    "load_matrix",
    "open_store",
    "propose_rules",
    "selftest",
    "shipped_sample",
]
