"""Inner flows of real VXLAN, Geneve and GRE captures, checked against results we did not write.

* Zeek's conn.log for the same trace (its rows with ``tunnel_parents`` are the inner
  connections): tuple, packets and IP bytes per side must be equal.
* tshark's own dissection (``-T fields``, second IP layer of each tunnelled frame): the
  packets per inner conversation must be equal.
* the two engines of flowaudit (fast reader, tshark engine) must store identical inner flows.

The captures and logs are in tests/data/overlay (origins in its SOURCES.md).
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from testpaths import DATA

from flowaudit import api

OVERLAY = DATA / "overlay"
INNER = (
    "SELECT src_ip, src_port, dst_ip, dst_port, protocol, src_packets, src_ip_bytes, "
    "dst_packets, dst_ip_bytes, src_bytes, dst_bytes, state, vlan_id, tunnel, tunnel_id, "
    "outer_src_ip, outer_dst_ip, outer_flow_id, first_seen, last_seen "
    "FROM flows WHERE tunnel IS NOT NULL ORDER BY ALL"
)
# every tunnelled trace (zeek-ip6_esp.pcap is encrypted: nothing to open)
CAPTURES = sorted(p.name for p in OVERLAY.glob("*.pcap") if "esp" not in p.name) + [
    "../flows/zeek-vxlan.pcap"
]


def inner_flows(tmp: Path, name: str, engine: str = "auto") -> list[dict[str, Any]]:
    store = tmp / f"store-{engine}-{Path(name).stem}"
    api.ingest(OVERLAY / name, store, engine=engine)
    return api.query(INNER, store=store).to_pylist()


def zeek_inner(log: Path) -> list[tuple[Any, ...]]:
    fields: list[str] = []
    rows = []
    for line in log.read_text().splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        elif fields and not line.startswith("#"):
            r = dict(zip(fields, line.split("\t"), strict=True))
            if r["tunnel_parents"] != "-":
                rows.append(
                    (
                        r["id.orig_h"],
                        int(r["id.orig_p"]),
                        r["id.resp_h"],
                        int(r["id.resp_p"]),
                        r["proto"],
                        int(r["orig_pkts"]),
                        int(r["orig_ip_bytes"]),
                        int(r["resp_pkts"]),
                        int(r["resp_ip_bytes"]),
                    )  # fmt: skip
                )
    return sorted(rows)


PROTO = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmp"}


@pytest.mark.parametrize(
    ("pcap", "log"),
    [
        ("zeek-geneve.pcap", "geneve.conn.log"),
        ("zeek-geneve-many-options.pcap", "geneve-many-options.conn.log"),
        ("zeek-geneve-ipv6.pcap", "geneve-ipv6.conn.log"),
        ("zeek-gre-sample.pcap", "gre.conn.log"),
        ("zeek-vxlan-encapsulated-http.pcap", "vxlan-encapsulated-http.conn.log"),
        ("../flows/zeek-vxlan.pcap", "../flows/vxlan.conn.log"),
    ],
)
def test_inner_flows_equal_zeek_conn_log(tmp_path: Path, pcap: str, log: str) -> None:
    got = sorted(
        (
            f["src_ip"],
            f["src_port"],
            f["dst_ip"],
            f["dst_port"],
            PROTO[f["protocol"]],
            f["src_packets"],
            f["src_ip_bytes"],
            f["dst_packets"],
            f["dst_ip_bytes"],
        )  # fmt: skip
        for f in inner_flows(tmp_path, pcap)
    )
    assert got == zeek_inner(OVERLAY / log)


def test_inner_flow_columns_of_a_gre_and_a_vxlan_trace(tmp_path: Path) -> None:
    gre = inner_flows(tmp_path, "zeek-gre-sample.pcap")
    assert {f["tunnel"] for f in gre} == {"gre"}
    assert {f["tunnel_id"] for f in gre} == {None}  # no key in these GRE headers
    # the outer addresses follow the inner initiator: the unreachable goes the other way
    by_src = {(f["src_ip"], f["protocol"]): f for f in gre}
    ssh = by_src[("66.59.111.190", 6)]
    unreach = by_src[("172.28.2.3", 1)]
    assert (ssh["outer_src_ip"], ssh["outer_dst_ip"]) == ("172.27.1.66", "66.59.109.137")
    assert (unreach["outer_src_ip"], unreach["outer_dst_ip"]) == ("66.59.109.137", "172.27.1.66")
    # one outer GRE flow carried them all: its Community ID, as the outer flow has it
    outer = api.query(
        "SELECT flow_id FROM flows WHERE protocol = 47",
        store=tmp_path / "store-auto-zeek-gre-sample",
    ).to_pylist()
    assert {f["outer_flow_id"] for f in gre} == {outer[0]["flow_id"]}
    vx = inner_flows(tmp_path, "ndpi-vxlan.pcap")
    assert {(f["tunnel"], f["tunnel_id"], f["vlan_id"]) for f in vx} == {("vxlan", 1111, 5)}
    assert {(f["outer_src_ip"], f["outer_dst_ip"]) for f in vx} == {
        ("192.168.22.4", "192.168.22.5")
    }
    # nDPI's flow list of the same trace names these four inner flows
    assert sorted((f["src_ip"], f["src_port"], f["dst_ip"], f["dst_port"]) for f in vx) == [
        ("10.10.20.4", 32860, "8.8.8.8", 53),
        ("10.10.20.4", 44437, "8.8.8.8", 53),
        ("10.10.20.4", 45226, "157.240.224.35", 443),
        ("10.10.20.4", 45228, "157.240.224.35", 443),
    ]
    ndpi = (OVERLAY / "ndpi-vxlan.pcap.ndpi.out").read_text()
    for f in vx:
        assert f"{f['src_ip']}:{f['src_port']} <-> {f['dst_ip']}:{f['dst_port']}" in ndpi


def tshark_inner_packets(path: Path) -> Counter[tuple[Any, ...]]:
    """Packets per inner conversation (unordered endpoints), from tshark's dissection alone."""
    cmd = ["tshark", "-r", str(path), "-n", "-T", "fields", "-E", "occurrence=a",
           "-E", "aggregator=,", "-o", "ip.defragment:FALSE", "-d", "udp.port==8472,vxlan",
           "-e", "frame.protocols", "-e", "ip.src", "-e", "ip.dst", "-e", "ipv6.src",
           "-e", "ipv6.dst", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "udp.srcport",
           "-e", "udp.dstport"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    counts: Counter[tuple[Any, ...]] = Counter()
    for line in out.splitlines():
        protos, *vals = line.split("\t")
        toks = protos.split(":")
        tun = next((i for i, t in enumerate(toks) if t in ("vxlan", "geneve", "gre")), -1)
        ips = [i for i, t in enumerate(toks) if t in ("ip", "ipv6")]
        inner = [i for i in ips if i > tun]
        if tun < 0 or not inner:
            continue  # not tunnelled, or no IP inside (ARP)
        at = inner[0]
        v6 = toks[at] == "ipv6"
        k = sum(1 for t in toks[:at] if t == toks[at])
        src = vals[2 if v6 else 0].split(",")[k]
        dst = vals[3 if v6 else 1].split(",")[k]
        l4 = toks[at + 1] if at + 1 < len(toks) else ""
        ports: tuple[int, ...] = ()
        if l4 in ("tcp", "udp"):
            j = sum(1 for t in toks[: at + 1] if t == l4)
            base = 4 if l4 == "tcp" else 6
            sp = int(vals[base].split(",")[j])
            dp = int(vals[base + 1].split(",")[j])
            ports = tuple(sorted((sp, dp)))
        counts[(l4, *sorted((src, dst)), *ports)] += 1
    return counts


@pytest.mark.tshark
@pytest.mark.parametrize("pcap", CAPTURES)
def test_inner_packets_equal_tshark_dissection(tmp_path: Path, pcap: str) -> None:
    got: Counter[tuple[Any, ...]] = Counter()
    for f in inner_flows(tmp_path, pcap):
        l4 = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}[f["protocol"]]
        ports = tuple(sorted((f["src_port"], f["dst_port"]))) if l4 in ("tcp", "udp") else ()
        got[(l4, *sorted((f["src_ip"], f["dst_ip"])), *ports)] += (
            f["src_packets"] + f["dst_packets"]
        )
    want = tshark_inner_packets(OVERLAY / pcap)
    assert want  # every capture here carries inner IP traffic
    assert got == want


@pytest.mark.tshark
@pytest.mark.parametrize("pcap", CAPTURES)
def test_both_engines_store_the_same_inner_flows(tmp_path: Path, pcap: str) -> None:
    assert inner_flows(tmp_path, pcap, "tshark") == inner_flows(tmp_path, pcap, "auto")


def test_vxlan_port_option_and_switching_tunnels_off(tmp_path: Path) -> None:
    # tcpdump's VXLAN trace with its port rewritten to 8472 (Cilium's): opened by default
    assert len(inner_flows(tmp_path, "tcpdump-vxlan_port_8472.pcap")) == 1
    from flowaudit.ingest import ingest_file
    from flowaudit.store import FlowStore

    st = FlowStore(tmp_path / "off")
    ingest_file(OVERLAY / "tcpdump-vxlan_port_8472.pcap", st, vxlan_ports=None)
    assert api.query("SELECT count(*) AS n FROM flows WHERE tunnel IS NOT NULL", store=st)[
        "n"
    ].to_pylist() == [0]


def test_inner_flows_are_never_node_matrix_findings(tmp_path: Path) -> None:
    """The audit's `flows` holds outer flows only: pod addresses never become violations."""
    report = api.audit([OVERLAY / "ndpi-vxlan.pcap", OVERLAY / "zeek-gre-sample.pcap"])
    d = report.to_dict()
    inner = {"10.10.20.4", "8.8.8.8", "157.240.224.35", "66.59.111.190", "172.28.2.3"}
    seen = {v["src_ip"] for v in d["violations"]} | {v["dst_ip"] for v in d["violations"]}
    assert seen and not seen & inner
    assert {"192.168.22.4", "172.27.1.66"} <= seen  # the outer flows are audited as ever


def test_a_store_written_before_the_tunnel_columns_reads_them_as_null(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from flowaudit.schema import FLOW_SCHEMA

    store = tmp_path / "old"
    api.ingest(OVERLAY / "zeek-gre-sample.pcap", store)
    new = ("tunnel", "tunnel_id", "outer_src_ip", "outer_dst_ip", "outer_flow_id")
    for f in (store / "flows").rglob("*.parquet"):  # rewrite them as the previous schema
        t = pq.read_table(f)
        pq.write_table(t.filter(t.column("tunnel").is_null()).drop_columns(list(new)), f)
    assert all(n not in pq.read_schema(f).names for n in new)
    got = api.query("SELECT count(*) AS n, count(tunnel) AS t, count(outer_flow_id) AS o "
                    "FROM flows", store=store).to_pylist()  # fmt: skip
    assert got == [{"n": 1, "t": 0, "o": 0}]
    cols = api.query("SELECT * FROM flows", store=store).column_names
    assert sorted(cols) == sorted([*FLOW_SCHEMA.names, "date"])
    report = api.audit(store=store).to_dict()
    assert report["violations"]  # the outer GRE flow is audited as before
