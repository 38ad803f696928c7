"""NetFlow ingest benchmark: ``iter_netflow_tables`` and whole ``flowaudit ingest`` processes
(``--format netflow`` and ``--format nfcapd``) against ``nfdump -r``.

Builds N NetFlow v9 records (N/2 conversations, each a request record and its reverse
record, so pairing has work to do), 30 records per datagram with the template in every
20th datagram, and writes them as a pcap of UDP datagrams (``netflow-v9.pcap``). Then:

1. times ``iter_netflow_tables`` over the pcap (decode + Community ID + pairing);
2. times the whole ``flowaudit ingest --format netflow`` process (start-up, hashing,
   decode, pairing, Parquet, commit), ``--repeat`` times, median;
3. replays the same datagrams over loopback UDP to ``nfcapd -w DIR -p PORT``, times
   ``nfdump -r <nfcapd file> -q -o csv`` on what nfcapd stored, and the whole
   ``flowaudit ingest --format nfcapd`` process on that file (median of ``--repeat``).

``--baseline DIR`` runs every whole-process measurement also with the flowaudit of another
checkout (``PYTHONPATH=DIR``), alternating the two in one run, and prints the ratio: a
paired before/after on a noisy machine. Peak RSS is each child's, through GNU time.
Usage: ``python benchmarks/bench_netflow.py [--records 1000000] [--repeat 3]
[--baseline /path/to/other/checkout] [--out benchmarks/out/netflow]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FIELDS = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (1, 4), (2, 4), (22, 4), (21, 4)]
DT = np.dtype(
    [("src", ">u4"), ("dst", ">u4"), ("sp", ">u2"), ("dp", ">u2"), ("proto", "u1"),
     ("flags", "u1"), ("bytes", ">u4"), ("pkts", ">u4"), ("first", ">u4"), ("last", ">u4")]
)  # fmt: skip
PER_DATAGRAM = 30
UPTIME0 = 1_000_000  # ms
UNIX0 = 1_700_000_000


def make_datagrams(n: int, seed: int = 1) -> list[bytes]:
    rng = np.random.default_rng(seed)
    conv = n // 2
    rec = np.zeros(2 * conv, DT)
    a = (10 << 24) | rng.integers(1, 1 << 16, conv)
    b = (10 << 24) | (25 << 16) | rng.integers(1, 255, conv)
    sp = rng.integers(1024, 65535, conv)
    dp = rng.choice([443, 6443, 2379, 53, 22], conv)
    proto = np.where(dp == 53, 17, 6)
    t0 = np.sort(rng.integers(0, 3_000_000, conv))  # ms within ~50 minutes
    dur = rng.integers(0, 5000, conv)
    fwd, rev = rec[0::2], rec[1::2]
    fwd["src"], fwd["dst"], fwd["sp"], fwd["dp"] = a, b, sp, dp
    rev["src"], rev["dst"], rev["sp"], rev["dp"] = b, a, dp, sp
    for r, extra in ((fwd, 0), (rev, 1)):
        r["proto"] = proto
        r["flags"] = np.where(proto == 6, 0x1B, 0)
        r["pkts"] = rng.integers(1, 50, conv)
        r["bytes"] = r["pkts"] * 100
        r["first"] = UPTIME0 + t0 + extra
        r["last"] = UPTIME0 + t0 + dur
    tpl_fields = b"".join(struct.pack("!HH", i, ln) for i, ln in FIELDS)
    tpl = struct.pack("!HHHH", 0, 8 + len(tpl_fields), 256, len(FIELDS)) + tpl_fields
    out = []
    raw = rec.tobytes()
    size = DT.itemsize
    for k, start in enumerate(range(0, len(rec), PER_DATAGRAM)):
        cnt = min(PER_DATAGRAM, len(rec) - start)
        body = raw[start * size : (start + cnt) * size]
        last_first = int(rec["last"][start + cnt - 1])
        uptime = max(UPTIME0 + 3_100_000, last_first)
        sets = (tpl if k % 20 == 0 else b"") + struct.pack("!HH", 256, 4 + len(body)) + body
        hdr = struct.pack("!HHIIII", 9, cnt, uptime, UNIX0 + (uptime - UPTIME0) // 1000, k, 1)
        out.append(hdr + sets)
    return out


def write_pcap(datagrams: list[bytes], path: Path) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, d in enumerate(datagrams):
            udp = struct.pack("!HHHH", 40000, 2055, 8 + len(d), 0) + d
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                             bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + udp  # fmt: skip
            fr = b"\x02" * 12 + b"\x08\x00" + ip
            f.write(struct.pack("<IIII", UNIX0 + i // 1000, i % 1000, len(fr), len(fr)) + fr)


def bench_ours(pcap: Path) -> tuple[float, int, int]:
    from flowaudit.records.common import RecordStats
    from flowaudit.records.netflow.reader import iter_netflow_tables

    st = RecordStats()
    t0 = time.perf_counter()
    flows = sum(t.num_rows for t in iter_netflow_tables(pcap, stats=st))
    return time.perf_counter() - t0, st.records, flows


def bench_nfdump(
    datagrams: list[bytes], workdir: Path, port: int = 39555
) -> tuple[float, int, Path | None]:
    """(seconds of ``nfdump -r`` CSV output, records printed, the nfcapd file)."""
    if not shutil.which("nfcapd") or not shutil.which("nfdump"):
        return float("nan"), 0, None
    capdir = workdir / "nfcapd"
    shutil.rmtree(capdir, ignore_errors=True)
    capdir.mkdir(parents=True)
    proc = subprocess.Popen(
        ["nfcapd", "-w", str(capdir), "-p", str(port), "-b", "127.0.0.1", "-B", "8388608"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i, d in enumerate(datagrams):
            s.sendto(d, ("127.0.0.1", port))
            if i % 64 == 63:
                time.sleep(0.002)  # pace: loopback drops when the receiver falls behind
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    files = sorted(p for p in capdir.rglob("nfcapd.*") if not p.name.startswith("nfcapd.current"))
    if not files:
        return float("nan"), 0, None
    t0 = time.perf_counter()
    out = subprocess.run(
        ["nfdump", "-r", str(files[-1]), "-q", "-o", "csv"], capture_output=True, check=True
    ).stdout
    el = time.perf_counter() - t0
    return el, max(out.count(b"\n") - 1, 0), files[-1]


def whole_process(fmt: str, path: Path, store: Path, tree: str | None) -> tuple[float, int]:
    """(wall seconds, peak RSS KiB or 0) of one ``flowaudit ingest`` into a fresh store;
    ``tree``: run that checkout's flowaudit (PYTHONPATH, from a neutral directory)."""
    shutil.rmtree(store, ignore_errors=True)
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = tree
    cmd = [sys.executable, "-m", "flowaudit", "ingest", "--format", fmt, "-q",
           "--store", str(store), str(path)]  # fmt: skip
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else "")
    if gnu_time:
        cmd = [gnu_time, "-f", "%M", *cmd]
    cwd = str(store.parent)  # not the checkout: ``python -m`` puts the cwd first on sys.path
    t0 = time.perf_counter()
    run = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=True)
    el = time.perf_counter() - t0
    shutil.rmtree(store, ignore_errors=True)
    rss = int(run.stderr.strip().splitlines()[-1]) if gnu_time else 0
    return el, rss


def compare(
    label: str, fmt: str, path: Path, records: int, out: Path, repeat: int, baseline: str | None
) -> float:
    """Median records/s of ``repeat`` whole processes (paired with ``baseline`` if given)."""
    trees: list[str | None] = [None] if baseline is None else [baseline, None]
    runs: dict[str | None, list[tuple[float, int]]] = {t: [] for t in trees}
    for _ in range(repeat):
        for t in trees:
            runs[t].append(whole_process(fmt, path, out / "store", t))
    med = {t: statistics.median(r[0] for r in runs[t]) for t in trees}
    for t in trees:
        name = "this checkout" if t is None else t
        walls = ", ".join(f"{r[0]:.2f}" for r in runs[t])
        rss = max(r[1] for r in runs[t]) / 1024
        rate = records / med[t]
        print(f"{label} ({name}): {records:,} records, median {med[t]:.2f} s = {rate:,.0f} "
              f"records/s (runs {walls} s; peak RSS {rss:.0f} MiB)")  # fmt: skip
    if baseline is not None:
        print(f"{label}: baseline / this checkout = {med[baseline] / med[None]:.2f}x")
    return records / med[None]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline", help="another checkout to time alternately (PYTHONPATH)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "netflow")
    args = ap.parse_args(argv)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    dgrams = make_datagrams(args.records)
    pcap = args.out / "netflow-v9.pcap"
    write_pcap(dgrams, pcap)
    print(f"generated {args.records:,} records in {len(dgrams):,} datagrams "
          f"({pcap.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    warm = args.out / "warm.pcap"  # imports (pyarrow compute, numba, pandas) off the clock
    write_pcap(make_datagrams(1000), warm)
    bench_ours(warm)
    el, recs, flows = bench_ours(pcap)
    ours = recs / el
    print(f"flowaudit iter_netflow_tables: {recs:,} records -> {flows:,} flows in {el:.2f} s "
          f"= {ours:,.0f} records/s")  # fmt: skip
    # the whole process, as a user runs it: start-up, hashing, decode, pairing, Parquet
    whole = compare("ingest --format netflow", "netflow", pcap, recs, args.out, args.repeat,
                    args.baseline)  # fmt: skip
    nel, nrecs, nfcapd_file = bench_nfdump(dgrams, args.out)
    if nrecs and nfcapd_file is not None:
        theirs = nrecs / nel
        print(f"nfdump -r (csv):              {nrecs:,} records in {nel:.2f} s "
              f"= {theirs:,.0f} records/s")  # fmt: skip
        print(f"ratio flowaudit / nfdump: {ours / theirs:.2f} "
              f"(whole process: {whole / theirs:.2f})")  # fmt: skip
        compare("ingest --format nfcapd", "nfcapd", nfcapd_file, nrecs, args.out, args.repeat,
                args.baseline)  # fmt: skip
    else:
        print("nfdump: not available or nfcapd stored nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
