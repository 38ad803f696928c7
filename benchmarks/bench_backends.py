"""DuckDB vs Spark (local mode): the same `flowaudit audit` over the same store, side by side.

    python benchmarks/bench_backends.py --flows 1000000 10000000 --runs 3 [--master local[2]]

For each size, builds (once, cached under benchmarks/out/) the synthetic store of
benchmarks/bench_audit.py (N VLAN 111 flows, mostly approved, four violation patterns), then
runs the whole process `flowaudit audit --store DIR --format json` with `--backend duckdb`
and with `--backend spark --spark-master MASTER`, paired (one after the other, --runs times),
and prints per size and backend the median seconds, flows/s and peak RSS of the process
tree (Spark's JVM and its Python workers included: /proc sampled every 50 ms), with the
Spark/DuckDB ratios. Each pair's JSON reports must be byte-identical (else it stops).

The last lines give Spark's marginal rate between the two largest sizes, (N2 - N1) flows /
(t2 - t1) seconds per core of the master: the JVM's start and the per-query planning are
fixed costs, so this is the rate a cluster's executors add per core (benchmarks/README.md
projects 10 B flows from it). A benchmark, not a test: no thresholds.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
GROUP = "admin_workstations=10.25.100.0/24"


def _bench_audit() -> ModuleType:
    """bench_audit.py (its store builder), imported by path: a script, not a package."""
    spec = importlib.util.spec_from_file_location("bench_audit", HERE / "bench_audit.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_audit"] = mod
    spec.loader.exec_module(mod)
    return mod


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants now (0 when it is gone)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{d}/statm", "rb") as f:
                pages = int(f.read().split()[1])
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        pid, ppid = int(d), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = pages * page
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


def run(cmd: list[str]) -> tuple[float, int, int]:
    """(seconds, peak RSS of the process tree in bytes, exit code) of one command."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            stop.wait(0.05)

    th = threading.Thread(target=sample)
    th.start()
    rc = proc.wait()
    secs = time.perf_counter() - t
    stop.set()
    th.join()
    if rc not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {rc}")
    return secs, peak, rc


def audit_cmd(store: Path, out: Path, backend: str, master: str) -> list[str]:
    cmd = [sys.executable, "-m", "flowaudit", "audit", "--store", str(store)]
    cmd += ["--format", "json", "--group", GROUP, "-o", str(out), "--backend", backend]
    return cmd + (["--spark-master", master] if backend == "spark" else [])


def cores(master: str) -> int:
    if "[" in master:
        inner = master[master.find("[") + 1 : master.find("]")].split(",")[0]
        return os.cpu_count() or 1 if inner == "*" else int(inner)
    return 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--flows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    bench = _bench_audit()
    rows: list[tuple[int, str, float, float]] = []
    spark_secs: dict[int, float] = {}
    for n in args.flows:
        store = OUT / f"audit-store-{n}"
        if not (store / "manifest").exists():
            t = time.perf_counter()
            bench.build_store(store, n)
            print(f"built {store} ({n:,} flows) in {time.perf_counter() - t:.1f} s", flush=True)
        got: dict[str, list[tuple[float, int]]] = {"duckdb": [], "spark": []}
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.runs):
                texts = {}
                for backend in ("duckdb", "spark"):
                    out = Path(tmp) / f"{backend}.json"
                    secs, peak, _ = run(audit_cmd(store, out, backend, args.master))
                    got[backend].append((secs, peak))
                    texts[backend] = out.read_bytes()
                    print(
                        f"{n:>12,} flows  run {i + 1}  {backend:6}  {secs:7.2f} s  "
                        f"peak RSS {peak / 2**20:7,.0f} MiB",
                        flush=True,
                    )
                if texts["spark"] != texts["duckdb"]:
                    raise SystemExit(f"{n:,} flows: the Spark report differs from DuckDB's")
        for backend, samples in got.items():
            secs = statistics.median(s for s, _ in samples)
            peak = statistics.median(p for _, p in samples)
            rows.append((n, backend, secs, peak))
            if backend == "spark":
                spark_secs[n] = secs
    print()
    print(f"{'flows':>12}  {'backend':7}  {'median s':>9}  {'flows/s':>12}  {'peak RSS MiB':>12}")
    by = {(n, b): (s, p) for n, b, s, p in rows}
    for n, backend, secs, peak in rows:
        print(f"{n:>12,}  {backend:7}  {secs:9.2f}  {n / secs:12,.0f}  {peak / 2**20:12,.0f}")
        if backend == "spark":
            ds, dp = by[(n, "duckdb")]
            print(f"{'':>12}  {'ratio':7}  {secs / ds:8.1f}x  {'':>12}  {peak / dp:11.1f}x")
    sizes = sorted(spark_secs)
    if len(sizes) >= 2:
        n1, n2 = sizes[-2], sizes[-1]
        dt = spark_secs[n2] - spark_secs[n1]
        if dt > 0:
            rate = (n2 - n1) / dt
            c = cores(args.master)
            print(
                f"\nSpark marginal rate {n1:,} → {n2:,} flows: {rate:,.0f} flows/s on {c} "
                f"core(s) = {rate / c:,.0f} flows/s per core"
            )


if __name__ == "__main__":
    main()
