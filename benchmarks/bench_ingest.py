"""Ingest benchmark: ``flowaudit ingest`` against C flow tools and Python peers, one run.

Generates (or reuses, cached under ``benchmarks/out/``) a VLAN 111 capture with
``gen_vlan111.py``, then runs each tool on the same file as a child process and measures
end to end (process start to output on disk) wall time and peak RSS (``os.wait4`` rusage of
each child, i.e. its largest process including the children it waited for):

- ``flowaudit ingest FILE --store DIR``
- ``argus -r FILE -w X.argus`` then ``racluster -r X.argus -w Y.argus``
- ``nfcapd`` on 127.0.0.1, ``softflowd -r FILE -n 127.0.0.1:PORT``, then ``nfdump -R``
- ``tshark -q -z conv,tcp -z conv,udp -r FILE``
- nfstream: ``NFStreamer(source=FILE).to_pandas()`` written to Parquet, in a child python

Prints a table (seconds, packets/s, peak RSS, how many times slower than flowaudit, flows)
and the issue's speed acceptance, and writes the same as JSON to ``benchmarks/out/``.
A tool that is not installed is skipped with the reason. Usage::

    python benchmarks/bench_ingest.py --packets 2000000 [--also-5x]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
TOOLS = ("flowaudit", "argus", "softflowd", "tshark", "nfstream")
LABELS = {
    "flowaudit": "flowaudit ingest",
    "argus": "argus + racluster",
    "softflowd": "softflowd > nfcapd + nfdump",
    "tshark": "tshark conv,tcp+udp",
    "nfstream": "nfstream to_pandas",
}
NFSTREAM_CHILD = (
    "import sys\n"
    "from nfstream import NFStreamer\n"
    "df = NFStreamer(source=sys.argv[1]).to_pandas()\n"
    "df.to_parquet(sys.argv[2])\n"
    "print(len(df))\n"
)


@dataclass
class Step:
    cmd: list[str]
    seconds: float
    max_rss_kib: int
    returncode: int


@dataclass
class Result:
    tool: str
    status: str  # "ok", "skipped", "failed", "not available"
    reason: str = ""
    seconds: float = 0.0
    peak_rss_mib: float = 0.0
    flows: int | None = None
    flows_note: str = ""
    steps: list[Step] = field(default_factory=list)


class Failed(Exception):
    """A step exited non-zero."""


TIME = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)


def _start(cmd: list[str], out: Path, log: Path) -> subprocess.Popen[bytes]:
    # GNU time reports the tool's own peak RSS: a child forked straight from this python
    # process would inherit this process's high-water mark in its rusage (Linux exec keeps it)
    wrap = [TIME, "-f", "%M", "-o", str(log.with_suffix(".rss"))] if TIME else []
    with open(out, "wb") as so, open(log, "ab") as se:
        return subprocess.Popen([*wrap, *cmd], stdout=so, stderr=se)


def _reap(p: subprocess.Popen[bytes], t0: float, cmd: list[str], log: Path) -> Step:
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    rss_file = log.with_suffix(".rss")
    rss = int(rss_file.read_text().split()[-1]) if TIME and rss_file.exists() else ru.ru_maxrss
    return Step(cmd, seconds, rss, p.returncode)


def _run(cmd: list[str], work: Path, name: str) -> Step:
    """Run one child to completion; stdout to ``work/name.out``, stderr to ``work/name.err``."""
    t0 = time.perf_counter()
    err = work / f"{name}.err"
    err.unlink(missing_ok=True)
    step = _reap(_start(cmd, work / f"{name}.out", err), t0, cmd, err)
    if step.returncode != 0:
        tail = (work / f"{name}.err").read_text(errors="replace").strip().splitlines()[-3:]
        raise Failed(f"{cmd[0]} exited {step.returncode}: {' | '.join(tail)}")
    return step


# ------------------------------------------------------------------------- tools ---------
def _flowaudit(cap: Path, work: Path) -> tuple[list[Step], int | None, str]:
    # what the console script runs, without a version manager's shell shim in front of it
    base = [sys.executable, "-m", "flowaudit"]
    probe = subprocess.run([*base, "ingest", "--help"], capture_output=True, check=False)
    if probe.returncode != 0:
        raise LookupError("`flowaudit ingest` not available")
    store = work / "flowaudit-store"
    shutil.rmtree(store, ignore_errors=True)
    steps = [_run([*base, "ingest", str(cap), "--store", str(store), "-q"], work, "flowaudit")]
    import pyarrow.parquet as pq

    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in (store / "flows").rglob("*.parquet"))
    return steps, rows, "bidirectional flows in the store"


def _argus(cap: Path, work: Path) -> tuple[list[Step], int | None, str]:
    for exe in ("argus", "racluster", "ra"):
        if not shutil.which(exe):
            raise LookupError(f"{exe} not installed (apt-get install argus-server argus-client)")
    raw, merged = work / "x.argus", work / "y.argus"
    raw.unlink(missing_ok=True)
    merged.unlink(missing_ok=True)
    steps = [
        _run(["argus", "-r", str(cap), "-w", str(raw)], work, "argus"),
        _run(["racluster", "-r", str(raw), "-w", str(merged)], work, "racluster"),
    ]
    _run(["ra", "-r", str(merged), "-n", "-L", "-1", "-s", "proto"], work, "ra")
    protos = (work / "ra.out").read_text().split()
    return steps, sum(p != "man" for p in protos), "bidirectional records (ARP included)"


def _listening(port: int) -> bool:
    want = f"0100007F:{port:04X}"
    return any(
        line.split()[1] == want for line in Path("/proc/net/udp").read_text().splitlines()[1:]
    )


def _stop(collector: subprocess.Popen[bytes], pidfile: Path) -> None:
    """SIGTERM to nfcapd itself (the child we started may be the GNU time wrapper)."""
    if collector.returncode is not None:
        return
    try:
        os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
    except (OSError, ValueError, IndexError):
        collector.terminate()


def _softflowd(cap: Path, work: Path) -> tuple[list[Step], int | None, str]:
    for exe in ("softflowd", "nfcapd", "nfdump"):
        if not shutil.which(exe):
            raise LookupError(f"{exe} not installed (apt-get install softflowd nfdump)")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    flowdir = work / "nfcapd"
    shutil.rmtree(flowdir, ignore_errors=True)
    flowdir.mkdir()
    pidfile = work / "nfcapd.pid"
    pidfile.unlink(missing_ok=True)
    (work / "nfcapd.err").unlink(missing_ok=True)
    t0 = time.perf_counter()
    ncmd = ["nfcapd", "-b", "127.0.0.1", "-p", str(port), "-w", str(flowdir), "-B", "16000000"]
    ncmd += ["-P", str(pidfile)]
    collector = _start(ncmd, work / "nfcapd.out", work / "nfcapd.err")
    try:
        deadline = time.monotonic() + 10
        while not (_listening(port) and pidfile.exists()):
            if collector.poll() is not None or time.monotonic() > deadline:
                raise Failed("nfcapd did not start listening")
            time.sleep(0.005)
        # -c none: with a control socket softflowd 1.1.0 blocks in accept() after reading
        scmd = ["softflowd", "-r", str(cap), "-n", f"127.0.0.1:{port}", "-v", "9", "-T", "vlan"]
        scmd += ["-6", "-d", "-c", "none", "-p", str(work / "softflowd.pid")]
        sf = _run(scmd, work, "softflowd")
    except BaseException:
        _stop(collector, pidfile)
        collector.wait(timeout=30)
        raise
    _stop(collector, pidfile)  # SIGTERM: nfcapd flushes and closes its file, then exits
    nf = _reap(collector, t0, ncmd, work / "nfcapd.err")
    nd = _run(["nfdump", "-R", str(flowdir), "-q", "-o", "csv"], work, "nfdump")
    flows = sum(1 for line in (work / "nfdump.out").read_text().splitlines() if line.strip())
    # the pipeline runs nfcapd → nfdump; report nfdump's end as the end of the whole run
    total = Step(["softflowd pipeline"], nf.seconds + nd.seconds, 0, 0)
    sent = next(
        (x for x in (work / "softflowd.out").read_text().splitlines() if "exported" in x), ""
    )
    return [sf, nf, nd, total], flows, f"unidirectional NetFlow v9 records; {sent.strip()}"


def _tshark(cap: Path, work: Path) -> tuple[list[Step], int | None, str]:
    if not shutil.which("tshark"):
        raise LookupError("tshark not installed (apt-get install tshark)")
    step = _run(
        ["tshark", "-n", "-q", "-z", "conv,tcp", "-z", "conv,udp", "-r", str(cap)], work, "tshark"
    )
    conv = sum("<->" in line for line in (work / "tshark.out").read_text().splitlines())
    return [step], conv, "TCP+UDP conversations"


def _nfstream(cap: Path, work: Path) -> tuple[list[Step], int | None, str]:
    if importlib.util.find_spec("nfstream") is None:
        raise LookupError("nfstream not installed (pip install nfstream)")
    out = work / "nfstream.parquet"
    step = _run([sys.executable, "-c", NFSTREAM_CHILD, str(cap), str(out)], work, "nfstream")
    return [step], int((work / "nfstream.out").read_text().split()[-1]), "bidirectional flows"


RUNNERS: dict[str, Callable[[Path, Path], tuple[list[Step], int | None, str]]] = {
    "flowaudit": _flowaudit,
    "argus": _argus,
    "softflowd": _softflowd,
    "tshark": _tshark,
    "nfstream": _nfstream,
}


def run_tool(tool: str, cap: Path, work: Path) -> Result:
    work.mkdir(parents=True, exist_ok=True)
    try:
        steps, flows, note = RUNNERS[tool](cap, work)
    except LookupError as e:
        status = "not available" if tool == "flowaudit" else "skipped"
        return Result(tool, status, str(e))
    except Failed as e:
        return Result(tool, "failed", str(e))
    timed = steps[-1:] if steps[-1].cmd == ["softflowd pipeline"] else steps
    seconds = sum(s.seconds for s in timed)
    rss = max(s.max_rss_kib for s in steps) / 1024
    return Result(tool, "ok", "", seconds, rss, flows, note, steps)


# ----------------------------------------------------------------------- capture ---------
def generator_tag() -> str:
    """Hash of the generator's sources (``gen_vlan111.py`` and ``vlan111/*.py``)."""
    h = hashlib.sha256()
    for f in [HERE / "gen_vlan111.py", *sorted((HERE / "vlan111").glob("*.py"))]:
        h.update(f"{f.relative_to(HERE)}\0".encode() + f.read_bytes())
    return h.hexdigest()[:10]


def capture(packets: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """The cached capture for (packets, seed, generator sources); generated when missing."""
    tag = generator_tag()
    OUT.mkdir(exist_ok=True)
    pcap = OUT / f"vlan111-{packets}-s{seed}-{tag}.pcap"
    truth = pcap.with_suffix(".truth.jsonl")
    summary = pcap.with_suffix(".truth.summary.json")
    if not (pcap.exists() and summary.exists()):
        sys.path.insert(0, str(HERE))
        import gen_vlan111

        print(f"generating {pcap.name} ...", file=sys.stderr)
        t0 = time.perf_counter()
        tmp = pcap.with_suffix(".tmp")
        gen_vlan111.generate(tmp, packets=packets, seed=seed, truth_path=truth)
        tmp.rename(pcap)
        print(f"generated in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return pcap, json.loads(summary.read_text())


def _versions() -> dict[str, str]:
    probes = {
        "flowaudit": ["flowaudit", "--version"],
        "argus": ["argus", "-h"],
        "softflowd": ["softflowd", "-h"],
        "nfdump": ["nfdump", "-V"],
        "tshark": ["tshark", "--version"],
    }
    out = {}
    for name, cmd in probes.items():
        if shutil.which(cmd[0]):
            p = subprocess.run(cmd, capture_output=True, text=True, check=False)
            text = (p.stdout + p.stderr).strip().splitlines()
            hit = [x for x in text if "ersion" in x] if name in ("argus", "softflowd") else []
            out[name] = (hit or text or ["?"])[0]
    if importlib.util.find_spec("nfstream"):
        from importlib.metadata import version

        out["nfstream"] = version("nfstream")
    return out


# ------------------------------------------------------------------------ report ---------
def table(results: list[Result], packets: int) -> str:
    base = next((r.seconds for r in results if r.tool == "flowaudit" and r.status == "ok"), None)
    head = (
        f"{'tool':30} {'seconds':>9} {'packets/s':>12} {'peak RSS MiB':>13} "
        f"{'vs flowaudit':>13} {'flows':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        if r.status != "ok":
            lines.append(f"{LABELS[r.tool]:30} {r.status}: {r.reason}")
            continue
        ratio = f"{r.seconds / base:.2f}x" if base else "n/a"
        lines.append(
            f"{LABELS[r.tool]:30} {r.seconds:9.2f} {packets / r.seconds:12,.0f} "
            f"{r.peak_rss_mib:13.1f} {ratio:>13} {r.flows if r.flows is not None else '-':>9}"
        )
    return "\n".join(lines)


def acceptance(results: list[Result], big: Result | None) -> dict[str, Any]:
    """The issue's speed targets: ≥1.5× argus+racluster, ≥30× nfstream, peak RSS ≤ 1 GiB."""
    by = {r.tool: r for r in results if r.status == "ok"}
    fa = by.get("flowaudit")
    if not fa:
        return {"flowaudit": "not available"}
    acc: dict[str, Any] = {"peak_rss_mib": fa.peak_rss_mib, "rss_ok": fa.peak_rss_mib <= 1024}
    for tool, need in (("argus", 1.5), ("nfstream", 30.0)):
        if tool in by:
            x = by[tool].seconds / fa.seconds
            acc[f"speedup_vs_{tool}"] = round(x, 2)
            acc[f"speedup_vs_{tool}_ok"] = x >= need
    if big and big.status == "ok":
        acc["peak_rss_mib_5x"] = big.peak_rss_mib
        acc["rss_5x_ok"] = big.peak_rss_mib <= 1024
    return acc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Time flowaudit ingest against peer flow tools.")
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--also-5x", action="store_true", help="also ingest a 5x larger capture")
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset")
    ap.add_argument("--tools-5x", default="flowaudit", help="tools run on the 5x capture")
    a = ap.parse_args(argv)
    tools = [t for t in a.tools.split(",") if t]
    bad = [t for t in tools + a.tools_5x.split(",") if t and t not in TOOLS]
    if bad:
        ap.error(f"unknown tools {bad}; choose from {TOOLS}")
    cap, summ = capture(a.packets, a.seed)
    print(
        f"capture: {cap} ({cap.stat().st_size / 2**20:,.0f} MiB, {summ['packets']:,} frames, "
        f"{summ['flows']:,} flows in the ground truth, {summ['non_ip_frames']} ARP frames)"
    )
    results = []
    for tool in tools:
        print(f"running {LABELS[tool]} ...", file=sys.stderr)
        results.append(run_tool(tool, cap, OUT / "work"))
    print(table(results, summ["packets"]))
    big_results: list[Result] = []
    big_summ: dict[str, Any] = {}
    if a.also_5x:
        big_cap, big_summ = capture(a.packets * 5, a.seed)
        print(
            f"\n5x capture: {big_cap} ({big_summ['packets']:,} frames, {big_summ['flows']:,} flows)"
        )
        for tool in [t for t in a.tools_5x.split(",") if t]:
            print(f"running {LABELS[tool]} on the 5x capture ...", file=sys.stderr)
            big_results.append(run_tool(tool, big_cap, OUT / "work-5x"))
        print(table(big_results, big_summ["packets"]))
    big_fa = next((r for r in big_results if r.tool == "flowaudit"), None)
    acc = acceptance(results, big_fa)
    print("\nacceptance (issue 3):", json.dumps(acc))
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "versions": _versions(),
        "capture": {"path": str(cap), "bytes": cap.stat().st_size, **summ},
        "results": [asdict(r) for r in results],
        "results_5x": [asdict(r) for r in big_results],
        "capture_5x": big_summ,
        "acceptance": acc,
    }
    dest = OUT / f"bench_ingest-{a.packets}.json"
    dest.write_text(json.dumps(report, indent=1) + "\n")
    print(f"results: {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
