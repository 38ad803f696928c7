"""Synthetic VLAN 111 capture generator with known ground truth (benchmarks, samples, audit truth).

Writes a classic pcap (µs, Ethernet, 802.1Q) of the deployment in the seed port matrix
(seeds/000_01dbefc070aa5d11.txt): approved traffic for every row of the matrix, one or more
flows of every violation kind, TCP outcomes SF/RSTO/RSTR/REJ/S0/OTH, UDP request/response and
one-way, ICMP echo, IPv6 link-local noise (MLDv2, ND, mDNS) and ARP; ``day-on-the-lan`` adds
a day's traffic outside the matrix and pods' flows carried in VXLAN between the nodes. With
``truth_path`` it writes one JSON line per flow it intends (the initiator as ``src``; counters
are on-wire frame lengths; a pod flow's are its inner frames', with the tunnel columns) and a
``*.summary.json`` beside it (frame counts, non-IP frames, labels, states, inner flows apart).

Flows are planned in Python (one tuple per packet), frames are built by one numba kernel into
a chunk buffer and written window by window, so memory stays flat for any ``packets``. No
5-tuple+VLAN is reused within its idle timeout (TCP 300 s, UDP/ICMP 60 s). The exact frame
count equals ``packets``: the tail is padded with unanswered ARP requests.

The code lives in the ``vlan111`` package beside this file (``_frames``: hosts, numba kernel,
payload pool; ``_families``: the seed matrix; ``_flows``: packets per protocol; ``_planner``:
the traffic mix; ``_output``: matrix, truth, pcap chunks). This file is the command line and
``generate()``; import it by path (tests, ``bench_ingest.py``): it puts its own directory on
``sys.path`` to find the package.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import numpy as np

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # imported by path (tests, bench_ingest.py): find ``vlan111``
    sys.path.insert(0, _HERE)

from vlan111._families import APPROVED, ETCD_PEER_ROW, GOSSIP_ROW, REASONS, VIOLATIONS  # noqa: E402
from vlan111._flows import Flow, ri  # noqa: E402
from vlan111._frames import (  # noqa: E402
    ARP,
    ICMP4,
    ICMP6,
    MAX_INTERNET,
    MLD6,
    NCOL,
    TCP4,
    TS,
    UDP4,
    UDP6,
    VRRP4,
    frame_lengths,
)
from vlan111._output import (  # noqa: E402
    ACC_KEYS,
    accumulate,
    assemble,
    count_flows,
    truth_rows,
    write_chunk,
)
from vlan111._output import iso as _iso  # noqa: E402, F401  (tests call gen._iso)
from vlan111._planner import Planner, Stream, plan_streams, stream_rows  # noqa: E402

__all__ = [
    "APPROVED",
    "ETCD_PEER_ROW",
    "GOSSIP_ROW",
    "REASONS",
    "SCENARIOS",
    "VIOLATIONS",
    "frame_lengths",
    "generate",
    "main",
    "summary_path",
]

RATE_PPS, MIN_DURATION_S, CHUNK_PACKETS = 4000, 60.0, 50_000
SCENARIOS = ("mixed", "approved-only", "violations", "day-on-the-lan")


def _parse_start(start: str) -> int:
    t = datetime.fromisoformat(start.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def generate(
    path: str | Path,
    packets: int = 2_000_000,
    seed: int = 1,
    scenario: str = "mixed",
    truth_path: str | Path | None = None,
    start: str = "2026-11-20T08:00:00Z",
    port_seed: int | None = None,
    internet: int = 300,
) -> dict[str, Any]:
    """Write the capture (exactly ``packets`` frames) and its truth; return the summary.

    ``start`` shifts every timestamp and ``port_seed`` draws other ephemeral ports: with the
    same ``seed`` both leave the behaviour (hosts, ports served, sizes, states) unchanged.
    ``internet``: how many internet addresses the nodes pull images from (``day-on-the-lan``).
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS}, not {scenario!r}")
    if not 1 <= internet <= MAX_INTERNET:
        raise ValueError(f"internet must be 1..{MAX_INTERNET}, not {internet}")
    t_start, pl = _parse_start(start), Planner(seed, scenario, port_seed, internet)
    dur = int(max(MIN_DURATION_S, packets / RATE_PPS) * 1_000_000)
    sched = sorted(pl.scheduled(dur, packets), key=lambda f: f.rows[0][0])
    streams = plan_streams(pl, dur, packets)
    fixed = sum(len(f.rows) for f in sched) + sum(s.cycles * Stream.SIZE[s.kind] for s in streams)
    budget = packets - fixed
    if budget < 0:
        raise ValueError(
            f"packets={packets} is below the {fixed} frames the {scenario!r} scenario needs"
        )
    summ: dict[str, Any] = {
        "packets": 0,
        "bytes": 0,
        "frames": {},
        "vlans": {},
        "labels": {},
        "states": {},
        "flows": 0,
        "arp_padding": 0,
    }
    if scenario == "day-on-the-lan":  # pod flows carried in VXLAN, counted apart
        summ.update(inner_flows=0, inner_states={})
    names = {
        ARP: "arp",
        TCP4: "ipv4_tcp",
        UDP4: "ipv4_udp",
        ICMP4: "ipv4_icmp",
        UDP6: "ipv6_udp",
        ICMP6: "ipv6_icmpv6",
        MLD6: "ipv6_icmpv6",
        VRRP4: "ipv4_vrrp",
    }
    nwin = max(1, -(-packets // CHUNK_PACKETS))
    carry, si, produced = np.empty((0, NCOL), np.int64), 0, 0
    tf: IO[str] | None = open(truth_path, "w", encoding="utf-8") if truth_path else None  # noqa: SIM115
    try:
        with open(path, "wb") as out:
            out.write(np.array([0xA1B2C3D4, 0x00040002, 0, 0, 65535, 1], "<u4").tobytes())
            for w in range(nwin):
                last = w == nwin - 1
                t0, t1 = dur * w // nwin, dur * (w + 1) // nwin
                flows: list[Flow] = []
                while si < len(sched) and (last or sched[si].rows[0][0] < t1):
                    flows.append(sched[si])
                    si += 1
                target, misses = budget if last else budget * (w + 1) // nwin, 0
                while produced < target and misses < 200:
                    f = pl.bulk(t0 + ri(pl.r, t1 - t0))
                    if f is None or (last and produced + len(f.rows) > budget):
                        misses += 1
                        continue
                    flows.append(f)
                    produced += len(f.rows)
                if last:
                    flows += pl.pad(budget - produced, t0, t1)
                    summ["arp_padding"] = budget - produced
                done = len(flows)
                for st in streams:
                    st.flow.rows = stream_rows(pl, st, dur * 2 if last else t1)
                    if st.flow.rows:
                        flows.append(st.flow)
                m, cnt = assemble(flows, t_start, summ["packets"] + len(carry))
                vals = np.stack([cnt[k] for k in ACC_KEYS], axis=1).tolist()
                for f, v in zip(flows, vals, strict=True):
                    accumulate(f, v)
                if tf:
                    ready = sorted(
                        (f for f in flows[:done] if f.lay != ARP), key=lambda f: f.acc[8]
                    )
                    for f in ready:
                        for row in truth_rows(f, t_start):
                            tf.write(json.dumps(row) + "\n")
                count_flows(summ, flows[:done], names)
                m = np.concatenate([carry, m])
                m = m[np.argsort(m[:, TS], kind="stable")]
                cut = len(m) if last else int(np.searchsorted(m[:, TS], t_start + t1))
                write_chunk(out, m[:cut], summ, names)
                carry = m[cut:]
                pl.prune(t0 - 700_000_000)
        streamed = [st.flow for st in streams]
        if tf:
            for f in sorted(streamed, key=lambda f: f.acc[8]):
                for row in truth_rows(f, t_start):
                    tf.write(json.dumps(row) + "\n")
        count_flows(summ, streamed, names)
    finally:
        if tf:
            tf.close()
    summ.update(
        packets_requested=packets,
        seed=seed,
        port_seed=seed if port_seed is None else port_seed,
        scenario=scenario,
        start=start,
        **({"internet": internet} if scenario == "day-on-the-lan" else {}),
        duration_s=dur / 1e6,
        non_ip_frames=summ["frames"].get("arp", 0),
    )
    if truth_path:
        Path(summary_path(truth_path)).write_text(json.dumps(summ, indent=1, sort_keys=True) + "\n")
    return summ


def summary_path(truth_path: str | Path) -> Path:
    p = Path(truth_path)
    return p.with_name(p.name.removesuffix(".jsonl") + ".summary.json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("out", help="pcap file to write")
    ap.add_argument("--packets", type=int, default=2_000_000, help="exact number of frames")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scenario", choices=SCENARIOS, default="mixed")
    ap.add_argument("--truth", help="write one JSON line per flow here (+ .summary.json)")
    ap.add_argument("--start", default="2026-11-20T08:00:00Z", help="capture start (ISO 8601)")
    ap.add_argument("--port-seed", type=int, help="other ephemeral ports, same behaviour")
    ap.add_argument(
        "--internet", type=int, default=300, help="day-on-the-lan: internet addresses pulled from"
    )
    a = ap.parse_args(argv)
    try:
        s = generate(
            a.out, a.packets, a.seed, a.scenario, a.truth, a.start, a.port_seed, a.internet
        )
    except ValueError as e:
        ap.error(str(e))
    print(
        f"{a.out}: {s['packets']} frames, {s['flows']} flows, {s['bytes']} bytes, "
        f"{s['duration_s']:.0f} s of traffic",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
