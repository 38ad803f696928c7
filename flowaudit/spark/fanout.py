"""Ingest fanned out over Spark's executors: one task per capture or record file.

Each task runs the normal ingest of its one input (``flowaudit.ingest``: reader, flow
builder, store writer) into the store and commits with the same protocol as a serial
ingest (flow files renamed into place under the capture's lock, then its manifest), so
the store ends as a serial ingest leaves it: the same flow rows per capture, the same
manifests apart from the ingest times and the flow files' run-unique names. A large file
is never split (one capture is one task: a flow can span the whole capture).

The store's root must be the same path on the driver and on every executor (local mode;
on a cluster a shared filesystem mounted at one path). Executors need flowaudit installed;
each builds (or loads from ``FLOWAUDIT_CACHE_DIR``) the compiled kernels once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flowaudit.errors import FlowAuditError
from flowaudit.ingest import IngestResult, _input_path, _worker
from flowaudit.packets.tunnels import VXLAN_PORTS
from flowaudit.store import FlowStore

ServicePorts = list[tuple[int, int]]


def _task(
    item: tuple[str, str, str, str, ServicePorts, tuple[int, ...]],
) -> tuple[list[IngestResult], list[str], FlowAuditError | None]:
    """One input on an executor: its results, the store readers' warnings, and the
    FlowAuditError it raised (returned, not raised: Spark would wrap it in a Java stack)."""
    path, root, engine, fmt, ports, vxlan = item
    try:
        results, warnings = _worker(Path(path), Path(root), engine, fmt, ports, vxlan)
    except FlowAuditError as e:
        return [], [], e
    return results, warnings, None


def ingest_paths(
    spark: Any,
    paths: Iterable[str | os.PathLike[str]],
    store: FlowStore,
    *,
    engine: str = "auto",
    format: str = "auto",
    service_ports: Iterable[tuple[int, int]] = (),
    vxlan_ports: Iterable[int] = VXLAN_PORTS,
) -> list[IngestResult]:
    """Ingest ``paths`` into ``store``, one Spark task each; results in input order.

    Every input is checked before a task starts; the first failure (in input order) is
    raised once all tasks have ended, and what the others committed stays, as in a serial
    run. ``store.warnings`` gets what the executors' store readers warned."""
    todo = [str(_input_path(p).resolve()) for p in paths]
    if not todo:
        return []
    from flowaudit.kernels.build import kernels

    kernels()  # built once here; local executors load it from the same cache
    root = str(store.root.resolve())
    ports = [(int(lo), int(hi)) for lo, hi in service_ports]
    vxlan = tuple(int(p) for p in vxlan_ports)
    items = [(p, root, engine, format, ports, vxlan) for p in todo]
    sc = spark.sparkContext
    try:
        done = sc.parallelize(items, len(items)).map(_task).collect()
    except Exception as e:  # an executor died, or flowaudit is missing there
        from flowaudit.errors import WriteError

        text = str(e).strip()
        first = next(
            (ln.strip() for ln in text.splitlines() if "Error" in ln or "error" in ln),
            text.splitlines()[0] if text else type(e).__name__,
        )
        raise WriteError(f"the Spark ingest failed: {first}") from None
    out: list[IngestResult] = []
    error: FlowAuditError | None = None
    for results, warnings, err in done:
        out.extend(results)
        store.warnings.extend(w for w in warnings if w not in store.warnings)
        if err is not None and error is None:
            error = err
    if error is not None:
        raise error
    return out
