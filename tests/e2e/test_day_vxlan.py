"""The VXLAN overlay of a day on VLAN 111 (the generator's ``day-on-the-lan`` scenario): pods
on the three nodes talk to pods on other nodes (CoreDNS 53/udp, HTTP 8080, gRPC 9090,
Postgres 5432), carried node to node in udp/8472 VXLAN (VNI 2) as Cilium does.

Ingested and audited through the command line, the store's inner flows must equal the
generator's truth exactly (tuple, counters per side, state, tunnel columns, times), the outer
udp/8472 flows too, and the audit must see only the outer flows: approved usage of the VXLAN
rule, never a pod address in a violation; its overlay section must be the truth's inner flows
grouped under the VXLAN rule, and a pod allow list without Postgres must find exactly the
database flows. tshark's own dissection of the same file must agree with the truth packet for
packet, and the tshark engine must store the same flows.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pcaptools import load_generator
from testpaths import ADMIN, ADMIN_OPT

from flowaudit import api
from flowaudit.cli import cli

PODS = ipaddress.ip_network("10.0.0.0/16")  # Cilium's per-node /24s of 10.0.0.0/8 used here
COLS = (
    "vlan", "src_ip", "dst_ip", "protocol", "src_port", "dst_port", "src_packets", "src_bytes",
    "src_ip_bytes", "tcp_flags_src", "dst_packets", "dst_bytes", "dst_ip_bytes",
    "tcp_flags_dst", "state", "direction", "first_seen", "last_seen",
)  # fmt: skip
TUNNEL = ("tunnel", "tunnel_id", "outer_src_ip", "outer_dst_ip", "outer_flow_id")
SQL = (
    "SELECT vlan_id AS vlan, * EXCLUDE (vlan_id), "
    "strftime(first_seen, '%Y-%m-%dT%H:%M:%S.%fZ') AS first_seen, "
    "strftime(last_seen, '%Y-%m-%dT%H:%M:%S.%fZ') AS last_seen FROM flows WHERE "
)


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("dayvx")
    pcap, truth_path, store = tmp / "day.pcap", tmp / "day.truth.jsonl", tmp / "store"
    summ = load_generator().generate(
        pcap, packets=8000, seed=14, scenario="day-on-the-lan", truth_path=truth_path,
        internet=20,
    )  # fmt: skip
    truth = [json.loads(x) for x in truth_path.read_text().splitlines()]
    run = CliRunner()
    r = run.invoke(cli, ["ingest", str(pcap), "--store", str(store)])
    assert r.exit_code == 0, r.output
    r = run.invoke(cli, ["audit", "--store", str(store), *ADMIN_OPT, "--format", "json"])
    assert r.exit_code == 1, r.output  # 1: violations found (the internet egress)
    return {"pcap": pcap, "summ": summ, "truth": truth, "store": store,
            "report": json.loads(r.stdout)}  # fmt: skip


def _rows(rows: list[dict[str, Any]], cols: tuple[str, ...]) -> list[tuple[Any, ...]]:
    return sorted(tuple(r[c] for c in cols) for r in rows)


def _is_pod(ip: str | None) -> bool:
    return ip is not None and ipaddress.ip_address(ip) in PODS


def test_inner_flows_equal_the_truth(day: dict[str, Any]) -> None:
    want = [t for t in day["truth"] if t.get("tunnel")]
    got = api.query(SQL + "tunnel IS NOT NULL", store=day["store"]).to_pylist()
    assert _rows(got, COLS + TUNNEL) == _rows(want, COLS + TUNNEL)
    # what the scenario promises: every pod service, from pods to pods on other nodes
    assert {(t["protocol"], t["dst_port"]) for t in want} == {(17, 53), (6, 8080), (6, 9090),
                                                              (6, 5432)}  # fmt: skip
    assert all(_is_pod(t["src_ip"]) and _is_pod(t["dst_ip"]) for t in want)
    assert all(t["src_ip"].split(".")[2] != t["dst_ip"].split(".")[2] for t in want)
    assert {(t["tunnel"], t["tunnel_id"], t["vlan"]) for t in want} == {("vxlan", 2, 111)}
    assert len(want) == day["summ"]["inner_flows"] > 20
    # seed 14: a SYN never answered (one outer flow), a rejected one, an abort, the rest SF
    assert {t["state"] for t in want} == {"SF", "S0", "REJ", "RSTO"}
    assert sum(day["summ"]["inner_states"].values()) == len(want)


def test_outer_vxlan_flows_equal_the_truth(day: dict[str, Any]) -> None:
    want = [t for t in day["truth"] if t["dst_port"] == 8472 and not t.get("tunnel")]
    sql = SQL + "tunnel IS NULL AND protocol = 17 AND 8472 IN (src_port, dst_port)"
    got = api.query(sql, store=day["store"]).to_pylist()
    assert _rows(got, COLS) == _rows(want, COLS)
    # one outer flow per direction of each inner flow (each node hashes its own source port)
    inner = [t for t in day["truth"] if t.get("tunnel")]
    assert len(want) == sum(1 + (t["dst_packets"] > 0) for t in inner)
    # every VXLAN frame is one inner packet and one outer packet
    frames = day["summ"]["frames"]["ipv4_udp_vxlan"]
    assert frames == sum(t["src_packets"] + t["dst_packets"] for t in inner)
    assert frames == sum(t["src_packets"] for t in want)
    # an inner flow links to the outer flow of its first packet, from its initiator's node
    outer = {g["flow_id"]: g for g in got}
    for t in inner:
        o = outer[t["outer_flow_id"]]
        assert (o["src_ip"], o["dst_ip"]) == (t["outer_src_ip"], t["outer_dst_ip"])
        assert o["first_seen"] == t["first_seen"]


def test_the_audit_sees_approved_vxlan_and_no_pod_address(day: dict[str, Any]) -> None:
    rep, truth = day["report"], day["truth"]
    outer_rows = [t for t in truth if not t.get("tunnel")]
    assert rep["window"]["flows"] == rep["summary"]["flows"] == len(outer_rows)
    assert len(outer_rows) == day["summ"]["flows"]
    seen = {v[k] for v in rep["violations"] for k in ("src_ip", "dst_ip")}
    assert seen and not any(_is_pod(ip) for ip in seen)  # out-of-scope egress is still found
    assert rep["summary"]["by_reason"] == {"out-of-scope-address": len(rep["violations"])}
    tops = {a for g in rep["finding_groups"] for a in g["top_initiators"] + g["top_responders"]}
    assert tops and not any(_is_pod(a) for a in tops)
    assert "cilium-vxlan-8472" not in {u["rule_id"] for u in rep["unused_rules"]}
    (cell,) = [c for c in rep["coverage"] if "cilium-vxlan-8472" in c["rules"]]
    vxlan = [t for t in outer_rows if t["dst_port"] == 8472]
    assert (cell["status"], cell["flows"], cell["findings"]) == ("used", len(vxlan), [])


def _tshark_vxlan(pcap: Path) -> tuple[Counter[tuple[Any, ...]], Counter[tuple[Any, ...]]]:
    """From tshark's dissection of the frames it reads as VXLAN on 8472 (every checksum
    verified good): packets per directed inner 5-tuple, [packets, bytes] per outer flow."""
    cmd = ["tshark", "-r", str(pcap), "-n", "-d", "udp.port==8472,vxlan",
           "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
           "-o", "udp.check_checksum:TRUE", "-Y", "vxlan", "-T", "fields",
           "-E", "occurrence=a", "-E", "aggregator=,", "-e", "ip.src", "-e", "ip.dst",
           "-e", "udp.srcport", "-e", "udp.dstport", "-e", "tcp.srcport", "-e", "tcp.dstport",
           "-e", "vxlan.vni", "-e", "ip.checksum.status", "-e", "tcp.checksum.status",
           "-e", "udp.checksum.status", "-e", "frame.len"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    inner: Counter[tuple[Any, ...]] = Counter()
    outer: Counter[tuple[Any, ...]] = Counter()
    for line in out.splitlines():
        src, dst, usp, udp, tsp, tdp, vni, ipck, tck, uck, flen = line.split("\t")
        (osrc, isrc), (odst, idst) = src.split(","), dst.split(",")
        (osp, *isp), (odp, *idp) = usp.split(","), udp.split(",")
        assert (vni, odp) == ("2", "8472") and ipck == "1,1"  # 1: good
        assert tck in ("", "1") and uck in ("3", "3,1")  # outer UDP checksum 0: not present
        if tsp:
            inner[(isrc, int(tsp), idst, int(tdp), 6)] += 1
        else:
            inner[(isrc, int(isp[0]), idst, int(idp[0]), 17)] += 1
        outer[(osrc, int(osp), odst, "packets")] += 1
        outer[(osrc, int(osp), odst, "bytes")] += int(flen)
    return inner, outer


@pytest.mark.tshark
def test_tshark_reads_what_the_truth_says(day: dict[str, Any]) -> None:
    want_in: Counter[tuple[Any, ...]] = Counter()
    want_out: Counter[tuple[Any, ...]] = Counter()
    for t in day["truth"]:
        if t.get("tunnel"):
            want_in[(t["src_ip"], t["src_port"], t["dst_ip"], t["dst_port"], t["protocol"])] += t[
                "src_packets"
            ]
            if t["dst_packets"]:
                key = (t["dst_ip"], t["dst_port"], t["src_ip"], t["src_port"], t["protocol"])
                want_in[key] += t["dst_packets"]
        elif t["dst_port"] == 8472:
            want_out[(t["src_ip"], t["src_port"], t["dst_ip"], "packets")] += t["src_packets"]
            want_out[(t["src_ip"], t["src_port"], t["dst_ip"], "bytes")] += t["src_bytes"]
    assert _tshark_vxlan(day["pcap"]) == (want_in, want_out)


@pytest.mark.tshark
def test_the_tshark_engine_stores_the_same_flows(day: dict[str, Any], tmp_path: Path) -> None:
    store = tmp_path / "store-tshark"
    api.ingest(day["pcap"], store, engine="tshark")
    cols = ("flow_id", *COLS, *TUNNEL)
    got = api.query(SQL + "true", store=store).to_pylist()
    assert _rows(got, cols) == _rows(api.query(SQL + "true", store=day["store"]).to_pylist(), cols)
    assert len(got) == len(day["truth"])


def test_port_seed_and_start_change_only_ports_and_times(tmp_path: Path) -> None:
    """As for the other scenarios: the same pods, services, sizes and states; the inner
    ephemeral ports, the outer source ports hashed from them and the times differ."""
    gen = load_generator()

    def behaviour(port_seed: int | None, start: str) -> tuple[list[Any], set[int]]:
        truth = tmp_path / f"{port_seed}.jsonl"
        gen.generate(tmp_path / "b.pcap", 8000, seed=4, scenario="day-on-the-lan",
                     truth_path=truth, start=start, port_seed=port_seed, internet=20)  # fmt: skip
        rows = [json.loads(x) for x in truth.read_text().splitlines()]
        drop = {"src_port", "first_seen", "last_seen", "outer_flow_id"}
        same = sorted(tuple(sorted((k, v) for k, v in t.items() if k not in drop)) for t in rows)
        return same, {t["src_port"] for t in rows if t.get("tunnel") or t["dst_port"] == 8472}

    a, ports_a = behaviour(None, "2026-11-20T08:00:00Z")
    b, ports_b = behaviour(99, "2026-12-01T00:00:00Z")
    assert a == b and any(("tunnel", "vxlan") in t for t in a)
    assert len(ports_a & ports_b) < len(ports_a) // 10


def _overlay_from_truth(truth: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The audit's overlay rows as the truth implies them: inner flows grouped by (outer
    pair, inner source /24, inner destination, protocol, port) under the VXLAN rule."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for t in truth:
        if not t.get("tunnel"):
            continue
        net = t["src_ip"].rsplit(".", 1)[0] + ".0/24"
        key = ("cilium-vxlan-8472", t["tunnel"], t["tunnel_id"], t["outer_src_ip"],
               t["outer_dst_ip"], net, t["dst_ip"], t["protocol"], t["dst_port"])  # fmt: skip
        first = {"flows": 0, "packets": 0, "bytes": 0}
        g = out.setdefault(
            key, {**first, "first_seen": t["first_seen"], "last_seen": t["last_seen"]}
        )
        g["flows"] += 1
        g["packets"] += t["src_packets"] + t["dst_packets"]
        g["bytes"] += t["src_bytes"] + t["dst_bytes"]
        g["first_seen"] = min(g["first_seen"], t["first_seen"])
        g["last_seen"] = max(g["last_seen"], t["last_seen"])
    return out


KEY = ("rule_id", "tunnel", "tunnel_id", "outer_src_ip", "outer_dst_ip", "inner_src_ip",
       "inner_dst_ip", "protocol", "dst_port")  # fmt: skip


def test_the_overlay_section_is_what_the_truth_carried(day: dict[str, Any]) -> None:
    rep, truth = day["report"], day["truth"]
    got = {tuple(o[k] for k in KEY): o for o in rep["overlay"]}
    want = _overlay_from_truth(truth)
    assert len(got) == len(rep["overlay"])  # one row per group
    assert {k: {f: o[f] for f in want[k]} for k, o in got.items() if k in want} == want
    assert got.keys() == want.keys()
    assert {(o["reason"], o["finding_id"]) for o in rep["overlay"]} == {(None, None)}
    inner = sum(1 for t in truth if t.get("tunnel"))
    assert (rep["summary"]["overlay_flows"], rep["summary"]["overlay_not_approved"]) == (inner, 0)
    # nothing encrypted here: the whole window is auditable
    enc = rep["encrypted"]
    assert (enc["wireguard_flows"], enc["esp_flows"]) == (0, 0)
    assert enc["flows"] == sum(1 for t in truth if not t.get("tunnel"))


POD_ALLOW_LIST = """
pods:
  description: Cilium's cluster pool on the three nodes
  cidrs: [10.0.0.0/16]
  allow:
    - protocol: udp
      ports: 53
      purpose: CoreDNS
    - protocol: tcp
      ports: [8080, 9090]
      purpose: frontends and APIs (not the database)
"""


def test_a_pod_allow_list_without_postgres_finds_exactly_the_database_flows(
    day: dict[str, Any], tmp_path: Path
) -> None:
    shipped = Path(__file__).resolve().parents[2] / "rules" / "tmna-vlan111.yaml"
    m = tmp_path / "tmna-vlan111.yaml"
    m.write_text(
        shipped.read_text(encoding="utf-8").rstrip("\n") + "\n" + POD_ALLOW_LIST, encoding="utf-8"
    )
    d = api.audit(store=day["store"], rules=m, groups=ADMIN).to_dict()
    bad = {k for k in _overlay_from_truth(day["truth"]) if k[-1] == 5432}
    assert bad and {tuple(o[k] for k in KEY) for o in d["overlay"] if o["reason"]} == bad
    assert {o["reason"] for o in d["overlay"] if o["reason"]} == {"overlay-not-approved"}
    assert all(o["finding_id"] for o in d["overlay"] if o["reason"])
    assert d["summary"]["overlay_not_approved"] == len(bad)
    # the node matrix's findings are unchanged: still only the internet egress
    assert sorted(v["finding_id"] for v in d["violations"]) == sorted(
        v["finding_id"] for v in day["report"]["violations"]
    )
