"""Audit speed: `flowaudit audit` over a store of N flows against the full shipped matrix.

    python benchmarks/bench_audit.py --flows 10000000
    python benchmarks/bench_audit.py --conversations 1000000

Builds (once, cached under benchmarks/out/) a flow store of N synthetic VLAN 111 flows
(mostly approved traffic between the deployment's hosts, a few percent violations, many
ephemeral ports), then times the whole process `flowaudit audit --store DIR --format json`
three times and prints seconds, flows/s and peak RSS. The issue's bar: 10M flows in
<= 3 s whole process, under 1 GiB. No timing asserts live in the tests.

``--conversations N`` builds instead a store of N flows that are N distinct conversations over
many addresses (a day of image pulls and scans): 70 % node → a distinct internet address
:443, 20 % one of ~500 unknown site hosts → a node on a distinct high port, 10 % node → node
on a distinct unapproved port. The bar: 1M conversations in <= 10 s whole process, < 1 GiB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

OUT = Path(__file__).parent / "out"
CHUNK = 1_000_000

HOSTS = [
    "10.25.233.4",
    "10.25.233.5",
    "10.25.233.6",
    "10.25.232.155",
    "10.25.232.252",
    "10.25.100.10",
    "10.25.233.77",
    "8.8.8.8",
]
# (src index, dst index, protocol, dst port, weight)
PATTERNS = [
    (0, 1, 6, 2379, 20),
    (1, 2, 6, 2380, 20),
    (2, 0, 6, 10250, 10),
    (0, 3, 6, 443, 15),
    (1, 3, 6, 30003, 5),
    (3, 2, 6, 6443, 10),
    (0, 2, 6, 9001, 5),
    (1, 0, 17, 9002, 5),
    (2, 1, 17, 8472, 5),
    (0, 1, 6, 4240, 3),
    (5, 3, 6, 5080, 1),
    (5, 4, 6, 22, 1),
    # violations
    (0, 1, 6, 2381, 1),
    (6, 0, 6, 10250, 1),
    (0, 7, 17, 53, 1),
    (0, 3, 6, 6443, 1),
]


def _addr16(ip: str) -> bytes:
    a = ipaddress.ip_address(ip)
    n = (0xFFFF << 32 | int(a)) if a.version == 4 else int(a)
    return n.to_bytes(16, "big")


def _session_columns(rng: np.random.Generator, m: int, first: np.ndarray) -> dict[str, pa.Array]:
    """Times, counters, flags and state of m established TCP sessions starting at ``first``."""
    ts = pa.timestamp("us", tz="UTC")
    return {
        "first_seen": pa.array(first, ts),
        "last_seen": pa.array(first + rng.integers(0, 5_000_000, m), ts),
        "src_packets": pa.array(rng.integers(1, 50, m).astype(np.uint64)),
        "src_bytes": pa.array(rng.integers(60, 50_000, m).astype(np.uint64)),
        "dst_packets": pa.array(rng.integers(0, 50, m).astype(np.uint64)),
        "dst_bytes": pa.array(rng.integers(0, 50_000, m).astype(np.uint64)),
        "tcp_flags_src": pa.array(np.full(m, 0x1B, np.uint8)),
        "tcp_flags_dst": pa.array(np.full(m, 0x1B, np.uint8)),
        "state": pa.array(["SF"] * m),
        "direction": pa.array(["syn"] * m),
        "sampling": pa.array(np.ones(m, np.uint32)),
    }


def _table(cols: dict[str, pa.Array], m: int) -> pa.Table:
    from flowaudit.schema import FLOW_SCHEMA

    return pa.table(
        [cols.get(f.name, pa.nulls(m, f.type)) for f in FLOW_SCHEMA], schema=FLOW_SCHEMA
    )


def _commit(writer: Any, digest: str, path: str, n: int) -> None:
    """Commit a synthetic store's flows under one capture record (BLAKE3-shaped id)."""
    from flowaudit.store import CaptureRecord

    rec = CaptureRecord(
        blake3=digest,
        path=path,
        size=0,
        source_kind="pcap",
        reader="bench",
        packets=0,
        flows=n,
        skipped=0,
        first_seen=None,
        last_seen=None,
        flowaudit_version="bench",
        ingested_at="2026-11-20T00:00:00Z",
    )
    writer.commit(rec)


def build_store(store: Path, n: int, seed: int = 1) -> None:
    sys.path.insert(0, str(Path(__file__).parent.parent))
    from flowaudit.store import FlowStore

    rng = np.random.default_rng(seed)
    w = np.array([p[4] for p in PATTERNS], dtype=float)
    w /= w.sum()
    src_i = np.array([p[0] for p in PATTERNS])
    dst_i = np.array([p[1] for p in PATTERNS])
    proto = np.array([p[2] for p in PATTERNS], dtype=np.uint8)
    dport = np.array([p[3] for p in PATTERNS], dtype=np.uint16)
    ips = np.array(HOSTS, dtype=object)
    addrs = np.array([_addr16(h) for h in HOSTS], dtype=object)
    t0 = int(dt.datetime(2026, 11, 20, tzinfo=dt.UTC).timestamp() * 1e6)
    writer = FlowStore(store).begin()
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        k = rng.choice(len(PATTERNS), size=m, p=w)
        first = t0 + np.sort(rng.integers(0, 86_400_000_000, m))
        cols = {
            "flow_id": pa.array(np.char.add("1:", np.arange(start, start + m).astype(str))),
            "source_kind": pa.array(["pcap"] * m),
            "capture_id": pa.array(["b" * 64] * m),
            "vlan_id": pa.array(np.full(m, 111, np.int16)),
            "ip_version": pa.array(np.full(m, 4, np.int8)),
            "src_ip": pa.array(ips[src_i[k]].tolist()),
            "dst_ip": pa.array(ips[dst_i[k]].tolist()),
            "src_addr": pa.array(addrs[src_i[k]].tolist(), pa.binary(16)),
            "dst_addr": pa.array(addrs[dst_i[k]].tolist(), pa.binary(16)),
            "protocol": pa.array(proto[k]),
            "src_port": pa.array(rng.integers(32768, 61000, m).astype(np.uint16)),
            "dst_port": pa.array(dport[k]),
            **_session_columns(rng, m, first),
        }
        writer.add(_table(cols, m))
    _commit(writer, "b" * 64, "synthetic", n)


def conversation_columns(start: int, m: int) -> dict[str, np.ndarray]:
    """(src, dst, dport) of flows start .. start+m of the many-conversations store."""
    i = np.arange(start, start + m, dtype=np.int64)
    kind = i % 10  # 0-6 internet, 7-8 unknown site host, 9 node → node
    node = (0xFFFF << 32) | 0x0A19E904  # ::ffff:10.25.233.4
    src = np.empty(m, dtype=object)
    dst = np.empty(m, dtype=object)
    dport = np.empty(m, dtype=np.uint16)
    # internet: 35.0.0.0 + i (distinct for every flow)
    inet = kind < 7
    src[inet] = [node + int(k) % 3 for k in i[inet]]
    dst[inet] = [(0xFFFF << 32) | (0x23000000 + int(k)) for k in i[inet]]
    dport[inet] = 443
    site = (kind == 7) | (kind == 8)
    j = i[site] // 10 * 2 + (kind[site] - 7)
    src[site] = [(0xFFFF << 32) | (0x0A19E800 + 7 + int(k) % 500) for k in j]  # 10.25.232.7+
    dst[site] = [node + int(k) // 500 % 3 for k in j]
    dport[site] = (1024 + (j // 1500) % 64000).astype(np.uint16)
    nn = kind == 9
    j = i[nn] // 10
    src[nn] = [node + int(k) % 3 for k in j]
    dst[nn] = [node + (int(k) % 3 + 1 + int(k) // 3 % 2) % 3 for k in j]
    dport[nn] = (20000 + (j // 6) % 40000).astype(np.uint16)
    return {"src": src, "dst": dst, "dport": dport}


def build_conversation_store(store: Path, n: int) -> None:
    sys.path.insert(0, str(Path(__file__).parent.parent))
    from flowaudit.matrix.model import addr_text
    from flowaudit.store import FlowStore

    rng = np.random.default_rng(2)
    t0 = int(dt.datetime(2026, 11, 20, tzinfo=dt.UTC).timestamp() * 1e6)
    writer = FlowStore(store).begin()
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        c = conversation_columns(start, m)
        first = t0 + np.sort(rng.integers(0, 86_400_000_000, m))
        cols = {
            "flow_id": pa.array(np.char.add("1:c", np.arange(start, start + m).astype(str))),
            "source_kind": pa.array(["pcap"] * m),
            "capture_id": pa.array(["c" * 64] * m),
            "vlan_id": pa.array(np.full(m, 111, np.int16)),
            "ip_version": pa.array(np.full(m, 4, np.int8)),
            "src_ip": pa.array([addr_text(a) for a in c["src"]]),
            "dst_ip": pa.array([addr_text(a) for a in c["dst"]]),
            "src_addr": pa.array([a.to_bytes(16, "big") for a in c["src"]], pa.binary(16)),
            "dst_addr": pa.array([a.to_bytes(16, "big") for a in c["dst"]], pa.binary(16)),
            "protocol": pa.array(np.full(m, 6, np.uint8)),
            "src_port": pa.array(rng.integers(32768, 61000, m).astype(np.uint16)),
            "dst_port": pa.array(c["dport"]),
            **_session_columns(rng, m, first),
        }
        writer.add(_table(cols, m))
    _commit(writer, "c" * 64, "synthetic-conversations", n)


def time_audit(store: Path) -> tuple[float, float, float, int]:
    cmd = [
        sys.executable,
        "-m",
        "flowaudit",
        "audit",
        "--store",
        str(store),
        "--format",
        "json",
        "--group",
        "admin_workstations=10.25.100.0/24",
        "-o",
        os.devnull,
    ]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
    secs = time.perf_counter() - t
    rc = os.waitstatus_to_exitcode(status)
    if rc not in (0, 1):
        raise SystemExit(f"flowaudit audit failed with exit code {rc}")
    # CPU seconds (user + system, all threads): steadier than wall time on a shared machine
    return secs, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, rc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=10_000_000)
    ap.add_argument(
        "--conversations",
        type=int,
        default=0,
        help="instead: a store of N flows that are N distinct conversations (many addresses)",
    )
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if args.conversations:
        args.flows = args.conversations
        store = OUT / f"audit-conversations-{args.conversations}"
        build = build_conversation_store
    else:
        store = OUT / f"audit-store-{args.flows}"
        build = build_store
    if not (store / "manifest").exists():
        t = time.perf_counter()
        build(store, args.flows)
        print(f"built {store} ({args.flows:,} flows) in {time.perf_counter() - t:.1f} s")
    what = "distinct conversations" if args.conversations else "flows"
    print(f"flowaudit audit over {args.flows:,} {what}, {os.cpu_count()} cores")
    for i in range(args.runs):
        secs, cpu, rss_mib, rc = time_audit(store)
        print(
            f"run {i + 1}: {secs:.2f} s  {args.flows / secs:,.0f} flows/s  CPU {cpu:.2f} s  "
            f"peak RSS {rss_mib:,.0f} MiB  exit {rc}"
        )


if __name__ == "__main__":
    main()
