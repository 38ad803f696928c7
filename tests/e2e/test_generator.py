"""Tests for benchmarks/gen_vlan111.py: the pcap it writes is what its ground truth says.

Each generated file is read back twice, independently of the generator: by a small
struct-based pcap walker below and (marked ``tshark``) by tshark's dissectors and
conversation tables. Files are small (a few thousand frames) so the suite stays fast.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pcaptools import GEN_PATH, load_generator

gen = load_generator()
MIXED_PACKETS = 4000


@pytest.fixture(scope="module")
def mixed(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, list[dict[str, Any]], dict[str, Any]]:
    d = tmp_path_factory.mktemp("gen")
    pcap, truth = d / "mixed.pcap", d / "mixed.truth.jsonl"
    summ = gen.generate(pcap, packets=MIXED_PACKETS, seed=7, truth_path=truth)
    rows = [json.loads(x) for x in truth.read_text().splitlines()]
    assert json.loads(gen.summary_path(truth).read_text()) == json.loads(json.dumps(summ))
    return pcap, rows, summ


# --------------------------------------------------------------- independent reader -------
def _records(path: Path) -> list[tuple[int, int, bytes]]:
    data = path.read_bytes()
    magic, vmaj, vmin, _, _, snap, link = struct.unpack_from("<IHHiIII", data, 0)
    assert (magic, vmaj, vmin, snap, link) == (0xA1B2C3D4, 2, 4, 65535, 1)
    out, o = [], 24
    while o < len(data):
        sec, usec, caplen, wire = struct.unpack_from("<IIII", data, o)
        assert caplen == wire and o + 16 + caplen <= len(data)
        out.append((sec * 1_000_000 + usec, wire, data[o + 16 : o + 16 + caplen]))
        o += 16 + caplen
    return out


def _dissect(frame: bytes) -> tuple[Any, ...] | None:
    """(vlan, proto, (src, sport), (dst, dport), ip_len, tcp_flags); None for ARP."""
    et, p, vlan = struct.unpack_from("!H", frame, 12)[0], 14, None
    if et == 0x8100:
        vlan = struct.unpack_from("!H", frame, 14)[0] & 0xFFF
        et, p = struct.unpack_from("!H", frame, 16)[0], 18
    if et == 0x0806:
        return None
    if et == 0x0800:
        ihl, iplen, proto = (
            (frame[p] & 15) * 4,
            struct.unpack_from("!H", frame, p + 2)[0],
            frame[p + 9],
        )
        src, dst = (
            str(ipaddress.IPv4Address(frame[p + 12 : p + 16])),
            str(ipaddress.IPv4Address(frame[p + 16 : p + 20])),
        )
        l4 = p + ihl
    else:
        assert et == 0x86DD
        iplen, proto = 40 + struct.unpack_from("!H", frame, p + 4)[0], frame[p + 6]
        src, dst = (
            str(ipaddress.IPv6Address(frame[p + 8 : p + 24])),
            str(ipaddress.IPv6Address(frame[p + 24 : p + 40])),
        )
        l4 = p + 40
        if proto == 0:  # hop-by-hop
            proto, l4 = frame[l4], l4 + 8 * (frame[l4 + 1] + 1)
    flags = 0
    if proto in (6, 17):
        sp, dp = struct.unpack_from("!HH", frame, l4)
        flags = frame[l4 + 13] if proto == 6 else 0
    else:  # ICMP: key on the addresses only (request and reply are one flow)
        sp = dp = None
    return vlan, proto, (src, sp), (dst, dp), iplen, flags


def _aggregate(path: Path) -> tuple[dict[tuple[Any, ...], dict[str, Any]], int]:
    flows: dict[tuple[Any, ...], dict[str, Any]] = {}
    arp = 0
    for ts, wire, frame in _records(path):
        d = _dissect(frame)
        if d is None:
            arp += 1
            continue
        vlan, proto, a, b, iplen, flags = d
        key = (vlan, proto, frozenset((a, b)))
        f = flows.setdefault(key, {"first": ts, "by": Counter()})
        f["last"] = ts
        f["by"][(a, "packets")] += 1
        f["by"][(a, "bytes")] += wire
        f["by"][(a, "ip_bytes")] += iplen
        f["by"][(a, "flags")] |= flags
    return flows, arp


def _truth_key(t: dict[str, Any]) -> tuple[Any, ...]:
    icmp = t["protocol"] in (1, 58)
    a = (t["src_ip"], None if icmp else t["src_port"])
    b = (t["dst_ip"], None if icmp else t["dst_port"])
    return (t["vlan"], t["protocol"], frozenset((a, b))), a, b


# --------------------------------------------------------------------------- tests --------
def test_exact_frame_count_and_time_order(mixed: Any) -> None:
    pcap, rows, summ = mixed
    recs = _records(pcap)
    assert len(recs) == MIXED_PACKETS == summ["packets"] == sum(summ["frames"].values())
    ts = [r[0] for r in recs]
    assert ts == sorted(ts)
    assert min(r[1] for r in recs) == 60  # short frames are padded like on the wire
    assert summ["bytes"] == sum(r[1] for r in recs)
    assert summ["first_seen"] == gen._iso(ts[0]) and summ["last_seen"] == gen._iso(ts[-1])


def test_every_truth_counter_matches_the_frames(mixed: Any) -> None:
    pcap, rows, summ = mixed
    flows, arp = _aggregate(pcap)
    assert arp == summ["non_ip_frames"] == summ["frames"]["arp"] > 0
    assert len(rows) == summ["flows"] == len(flows)  # no flow missing, none merged or extra
    for t in rows:
        key, a, b = _truth_key(t)
        f = flows[key]
        got = {
            "src_packets": f["by"][(a, "packets")],
            "src_bytes": f["by"][(a, "bytes")],
            "src_ip_bytes": f["by"][(a, "ip_bytes")],
            "tcp_flags_src": f["by"][(a, "flags")],
            "dst_packets": f["by"][(b, "packets")],
            "dst_bytes": f["by"][(b, "bytes")],
            "dst_ip_bytes": f["by"][(b, "ip_bytes")],
            "tcp_flags_dst": f["by"][(b, "flags")],
            "first_seen": gen._iso(f["first"]),
            "last_seen": gen._iso(f["last"]),
        }
        assert got == {k: t[k] for k in got}, t
    assert sum(t["src_packets"] + t["dst_packets"] for t in rows) + arp == MIXED_PACKETS


def test_mixed_has_every_label_state_and_direction(mixed: Any) -> None:
    _, rows, summ = mixed
    assert {t["label"] for t in rows} == {"approved", *gen.REASONS}
    assert {t["state"] for t in rows} == {"SF", "S0", "REJ", "RSTO", "RSTR", "OTH"}
    assert {t["direction"] for t in rows} == {"syn", "service_port", "first_packet"}
    assert {t["vlan"] for t in rows} == {111, 112, None}
    assert {t["protocol"] for t in rows} == {1, 6, 17, 58}
    assert summ["labels"] == dict(Counter(t["label"] for t in rows))
    # states follow from the packets: REJ = SYN answered by RST-ACK, S0 = SYNs only ...
    for t in rows:
        fs, fd = t["tcp_flags_src"], t["tcp_flags_dst"]
        expect = (
            {"REJ": (0x02, 0x14), "S0": (0x02, 0)}.get(t["state"]) if t["protocol"] == 6 else None
        )
        if expect:
            assert (fs, fd) == expect
        if t["state"] == "SF" and t["protocol"] == 6:
            assert fs & 0x13 == 0x13 and fd & 0x13 == 0x13 and not (fs | fd) & 4
        if t["state"] in ("RSTO", "RSTR"):
            assert (fs if t["state"] == "RSTO" else fd) & 4 and fs & 2 and fd & 0x12 == 0x12
        if t["state"] == "OTH":
            assert not (fs | fd) & 7 and t["direction"] == "service_port"
        if t["protocol"] != 6:
            assert t["state"] == ("SF" if t["dst_packets"] else "S0")


def test_mid_stream_etcd_peer_and_named_violations(mixed: Any) -> None:
    _, rows, _ = mixed
    nodes = {"10.25.233.4", "10.25.233.5", "10.25.233.6"}
    etcd = [t for t in rows if t["dst_port"] == 2380]
    assert len(etcd) == 3
    for t in etcd:
        assert t["state"] == "OTH" and t["direction"] == "service_port"
        assert {t["src_ip"], t["dst_ip"]} <= nodes and t["src_port"] >= 32768
    by = {(t["label"], t["protocol"], t["dst_port"], t["state"]) for t in rows}
    for want in [
        ("port-not-approved", 6, 2381, "SF"),
        ("port-not-approved", 6, 22, "RSTO"),
        ("reverse-direction", 6, 6443, "S0"),
        ("reverse-direction", 6, 443, "REJ"),
        ("unknown-source", 6, 10250, "SF"),
        ("unknown-source", 6, 10250, "REJ"),
        ("unknown-destination", 6, 443, "SF"),
        ("protocol-not-approved", 17, 2379, "S0"),
        ("protocol-not-approved", 1, 0, "SF"),
        ("off-vlan", 6, 443, "SF"),
        ("out-of-scope-address", 17, 53, "SF"),
        ("out-of-scope-address", 17, 53, "S0"),
    ]:
        assert want in by, want
    s0 = next(t for t in rows if t["label"] == "reverse-direction" and t["state"] == "S0")
    assert s0["src_packets"] == 3 and s0["dst_packets"] == 0  # SYN + two retransmissions
    noise = [t for t in rows if t["ip_version"] == 6]
    assert noise and all(t["src_ip"].startswith("fe80::") for t in noise)
    assert {t["label"] for t in noise} == {"control-plane"}
    gossip = [t for t in rows if t["src_port"] == t["dst_port"] == 7946]
    assert len(gossip) == 3 and {t["direction"] for t in gossip} == {"first_packet"}


def test_every_approved_row_is_used_and_if_enabled_rows_are_not(mixed: Any) -> None:
    _, rows, _ = mixed
    ok = [t for t in rows if t["label"] == "approved"]
    rows_seen = {t["seed_row"] for t in ok}
    for fam in gen.APPROVED:
        if fam.name == "migration":
            assert any(49152 <= t["dst_port"] <= 49215 for t in ok)
            continue
        for p in fam.ports:
            assert fam.seed_row.format(port=p) in rows_seen, (fam.name, p)
    assert gen.GOSSIP_ROW in rows_seen and gen.ETCD_PEER_ROW in rows_seen
    used = {(t["protocol"], t["dst_port"]) for t in ok}
    assert not used & {(17, 51871), (6, 9010), (6, 9015)}  # "if enabled" rows stay unused
    assert all(t["seed_row"] for t in ok)
    assert all(t["direction"] in ("syn", "service_port", "first_packet") for t in ok)


def test_no_flow_key_is_reused(mixed: Any) -> None:
    _, rows, _ = mixed
    keys = [_truth_key(t)[0] for t in rows]
    assert len(keys) == len(set(keys))


def test_deterministic_for_a_seed(tmp_path: Path, mixed: Any) -> None:
    pcap, _, _ = mixed
    again = tmp_path / "again.pcap"
    gen.generate(again, packets=MIXED_PACKETS, seed=7, truth_path=tmp_path / "t.jsonl")
    assert again.read_bytes() == pcap.read_bytes()
    assert (tmp_path / "t.jsonl").read_text() == (pcap.parent / "mixed.truth.jsonl").read_text()
    other = tmp_path / "other.pcap"
    gen.generate(other, packets=MIXED_PACKETS, seed=8)
    assert hashlib.sha256(other.read_bytes()).digest() != hashlib.sha256(pcap.read_bytes()).digest()


def test_scenarios_approved_only_and_violations(tmp_path: Path) -> None:
    for scenario, n, labels in (
        ("approved-only", 2500, {"approved"}),
        ("violations", 1200, set(gen.REASONS)),
    ):
        truth = tmp_path / f"{scenario}.jsonl"
        summ = gen.generate(
            tmp_path / f"{scenario}.pcap", n, seed=3, scenario=scenario, truth_path=truth
        )
        rows = [json.loads(x) for x in truth.read_text().splitlines()]
        assert summ["packets"] == len(_records(tmp_path / f"{scenario}.pcap")) == n
        assert {t["label"] for t in rows} == labels


def test_too_few_packets_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="below the"):
        gen.generate(tmp_path / "x.pcap", packets=50)
    with pytest.raises(ValueError, match="scenario"):
        gen.generate(tmp_path / "x.pcap", packets=5000, scenario="nope")


def test_script_command_line(tmp_path: Path) -> None:
    out = tmp_path / "cli.pcap"
    cmd = [
        sys.executable,
        str(GEN_PATH),
        str(out),
        "--packets",
        "1500",
        "--seed",
        "2",
        "--scenario",
        "approved-only",
        "--truth",
        str(tmp_path / "cli.truth.jsonl"),
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and "1500 frames" in p.stderr
    assert len(_records(out)) == 1500
    bad = subprocess.run([*cmd[:3], "--packets", "10"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "below the" in bad.stderr


# --------------------------------------------------------------------------- tshark -------
def _tshark(*args: str) -> str:
    p = subprocess.run(["tshark", "-n", *args], capture_output=True, text=True, check=True)
    return p.stdout


@pytest.mark.tshark
def test_tshark_reads_every_frame_with_valid_checksums(mixed: Any) -> None:
    pcap, _, summ = mixed
    check = [
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
    ]
    fields = _tshark(
        "-r",
        str(pcap),
        *check,
        "-T",
        "fields",
        "-e",
        "ip.checksum.status",
        "-e",
        "tcp.checksum.status",
        "-e",
        "udp.checksum.status",
        "-e",
        "icmp.checksum.status",
        "-e",
        "icmpv6.checksum.status",
        "-e",
        "arp.opcode",
    )
    lines = fields.splitlines()
    assert len(lines) == MIXED_PACKETS
    statuses = Counter(v for line in lines for v in line.split("\t") if v)
    assert statuses["0"] == 0  # 0 = bad checksum
    assert statuses["1"] >= MIXED_PACKETS - summ["frames"]["arp"]  # every IP frame verified good


@pytest.mark.tshark
def test_tshark_per_flow_frames_and_bytes_equal_truth(mixed: Any) -> None:
    pcap, rows, summ = mixed
    out = _tshark(
        "-r",
        str(pcap),
        "-T",
        "fields",
        "-E",
        "occurrence=f",
        "-e",
        "frame.len",
        "-e",
        "vlan.id",
        "-e",
        "ip.src",
        "-e",
        "ipv6.src",
        "-e",
        "ip.dst",
        "-e",
        "ipv6.dst",
        "-e",
        "tcp.srcport",
        "-e",
        "udp.srcport",
        "-e",
        "tcp.dstport",
        "-e",
        "udp.dstport",
        "-e",
        "icmp.type",
        "-e",
        "icmpv6.type",
        "-e",
        "arp.opcode",
    )
    agg: Counter[tuple[Any, ...]] = Counter()
    arp = 0
    for line in out.splitlines():
        flen, vlan, s4, s6, d4, d6, ts, us, td, ud, it, i6, op = line.split("\t")
        if op:
            arp += 1
            continue
        proto = 6 if ts else 17 if us else 1 if it else 58
        sp = int(ts or us) if proto in (6, 17) else None
        dp = int(td or ud) if proto in (6, 17) else None
        a, b = (s4 or s6, sp), (d4 or d6, dp)
        key = (int(vlan) if vlan else None, proto, frozenset((a, b)))
        agg[(key, a, "p")] += 1
        agg[(key, a, "b")] += int(flen)
    assert arp == summ["non_ip_frames"]
    for t in rows:
        key, a, b = _truth_key(t)
        got = (agg[(key, a, "p")], agg[(key, a, "b")], agg[(key, b, "p")], agg[(key, b, "b")])
        assert got == (t["src_packets"], t["src_bytes"], t["dst_packets"], t["dst_bytes"]), t


_CONV = re.compile(r"^(\S+)\s+<->\s+(\S+)\s+(\d+)\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\S+\s+(\d+)\s")


@pytest.mark.tshark
def test_tshark_conversations_equal_truth(mixed: Any) -> None:
    pcap, rows, _ = mixed
    out = _tshark("-r", str(pcap), "-q", "-z", "conv,tcp", "-z", "conv,udp")
    conv: dict[frozenset[tuple[str, int]], dict[tuple[str, int], int]] = {}
    for line in out.splitlines():
        m = _CONV.match(line)
        if not m:
            continue
        (ha, _, pa), (hb, _, pb) = m[1].rpartition(":"), m[2].rpartition(":")
        a, b = (ha, int(pa)), (hb, int(pb))
        conv[frozenset((a, b))] = {b: int(m[3]), a: int(m[4])}  # "<-" is B to A, "->" A to B
    want = {}
    for t in rows:
        if t["protocol"] in (6, 17):
            a, b = (t["src_ip"], t["src_port"]), (t["dst_ip"], t["dst_port"])
            want[frozenset((a, b))] = {a: t["src_packets"], b: t["dst_packets"]}
    assert conv == want


def test_port_seed_and_start_change_only_ports_and_times(tmp_path: Path) -> None:
    """Same behaviour, other ephemeral ports and times (for stable-finding-id tests)."""

    def behaviour(port_seed: int | None, start: str) -> tuple[list[tuple[Any, ...]], set[int]]:
        truth = tmp_path / f"{port_seed}.jsonl"
        gen.generate(
            tmp_path / "b.pcap", 3000, seed=4, truth_path=truth, start=start, port_seed=port_seed
        )
        rows = [json.loads(x) for x in truth.read_text().splitlines()]
        drop = {"src_port", "first_seen", "last_seen"}
        same = sorted(tuple(sorted((k, v) for k, v in t.items() if k not in drop)) for t in rows)
        return same, {t["src_port"] for t in rows if t["protocol"] == 6}

    a, ports_a = behaviour(None, "2026-11-20T08:00:00Z")
    b, ports_b = behaviour(99, "2026-12-01T00:00:00Z")
    assert a == b
    assert not ports_a & ports_b
