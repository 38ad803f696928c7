"""Flows from real captures against their reference results (Zeek conn.log, nDPI).

Each capture in tests/data/flows/ (see SOURCES.md) is read with the fast reader and
fed to the flow builder; every Zeek conn.log row must have a flow with the same
oriented tuple, the same orig/resp packets and IP bytes, and the same conn_state.
Where we deliberately differ from the reference, the test says why.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pyarrow as pa
import pytest
from testpaths import DATA as TEST_DATA

from flowaudit.flows.builder import FlowBuilder, FlowStats
from flowaudit.packets.pcap import iter_packets

DATA = TEST_DATA / "flows"

Flow = dict[str, Any]


def build(name: str) -> tuple[list[Flow], FlowStats]:
    fb = FlowBuilder("0" * 64, "pcap")
    tables = [fb.add(b) for b in iter_packets(DATA / name)]
    return pa.concat_tables([*tables, fb.finish()]).to_pylist(), fb.stats


def zeek_log(name: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    fields: list[str] = []
    for line in (DATA / name).read_text().splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        elif fields and not line.startswith("#"):
            rows.append(dict(zip(fields, line.split("\t"), strict=True)))
    return rows


def tuple_of(f: Flow) -> tuple[str, int, str, int]:
    return f["src_ip"], f["src_port"], f["dst_ip"], f["dst_port"]


def compare(flows: list[Flow], rows: list[dict[str, str]]) -> list[tuple[Any, ...]]:
    """(tuple, got, expected) for every Zeek row; flows sharing a tuple pair up in time order."""
    by_tuple: dict[tuple[str, int, str, int], list[Flow]] = defaultdict(list)
    for f in sorted(flows, key=lambda f: f["first_seen"]):
        by_tuple[tuple_of(f)].append(f)
    out = []
    for r in rows:
        key = (r["id.orig_h"], int(r["id.orig_p"]), r["id.resp_h"], int(r["id.resp_p"]))
        expected = (
            int(r["orig_pkts"]),
            int(r["orig_ip_bytes"]),
            int(r["resp_pkts"]),
            int(r["resp_ip_bytes"]),
            r["conn_state"],
        )
        cands = by_tuple.get(key)
        f = cands.pop(0) if cands else None
        got = None
        if f is not None:
            got = (
                f["src_packets"],
                f["src_ip_bytes"],
                f["dst_packets"],
                f["dst_ip_bytes"],
                f["state"],
            )
        out.append((key, got, expected))
    return out


CASES = [
    # pcap, conn.log, Zeek rows compared
    ("zeek-ssh.pcap", "ssh-basic.conn.log", 25),
    ("zeek-modbus-and-non-modbus-p502.pcap", "modbus-and-non-modbus-p502.conn.log", 8),
    ("zeek-ftp-ipv6.pcap", "ftp-ipv6.conn.log", 6),
    ("zeek-q-in-q.pcap", "q-in-q.conn.log", 2),
    ("zeek-pcapng-multi-interface.pcapng", "pcapng-multi-interface.conn.log", 3),
    ("zeek-http-connect-with-header.null.pcap", "http-connect-with-header.conn.log", 1),
    ("zeek-mixed-vlan-mpls.pcap", "vlan-mpls.conn.log", 3),
    ("zeek-mpls-in-vlan.pcap", "mpls-in-vlan.conn.log", 3),
    ("zeek-pppoe-over-qinq.pcap", "pppoe-over-qinq.conn.log", 1),
    # flows are built on the outer headers: Zeek's inner ICMP conn (tunnel_parents set)
    # is not ours to produce (and Zeek would write OTH for it where we write SF)
    ("zeek-vxlan.pcap", "vxlan.conn.log", 4),
]


@pytest.mark.parametrize(("pcap", "log", "n"), CASES, ids=[c[1].split(".")[0] for c in CASES])
def test_flows_match_zeek_conn_log(pcap: str, log: str, n: int) -> None:
    rows = [r for r in zeek_log(log) if r["tunnel_parents"] == "-"]
    assert len(rows) == n
    flows, stats = build(pcap)
    result = compare(flows, rows)
    assert [(k, got) for k, got, _ in result] == [(k, exp) for k, _, exp in result]
    assert len(flows) == n  # and no flow Zeek does not have
    assert stats.packets_in_flows == sum(int(r["orig_pkts"]) + int(r["resp_pkts"]) for r in rows)


def test_ssh_basic_directions_and_flags() -> None:
    flows, stats = build("zeek-ssh.pcap")
    assert stats.packets == stats.packets_in_flows == 1797
    dirs = sorted((f["direction"], f["protocol"]) for f in flows)
    # 22 TCP conns open with a SYN; one is mid-stream to 8118 (no service port on either
    # side: first packet decides, as Zeek did); 2 UDP 57621<->57621 broadcasts
    assert dirs == [("first_packet", 6)] + [("first_packet", 17)] * 2 + [("syn", 6)] * 22
    rstr = next(f for f in flows if f["dst_port"] == 2200)
    assert (rstr["state"], rstr["tcp_flags_dst"] & 4) == ("RSTR", 4)


def test_modbus_reset_then_quiet_gap_gives_two_flows_like_zeek() -> None:
    flows, _ = build("zeek-modbus-and-non-modbus-p502.pcap")
    same = [f for f in flows if f["src_ip"] == "198.74.56.135"]
    assert [(f["state"], f["direction"]) for f in same] == [
        ("RSTO", "syn"),
        ("RSTRH", "service_port"),  # mid-stream data to 502: 502 is the service side
    ]
    assert len({f["flow_id"] for f in same}) == 1


def test_vlan_collisions_both_keys() -> None:
    flows, _ = build("zeek-vlan-collisions.pcap")
    # the .cut files hold a btest line and a header line, no #fields: parse by column
    lines = (DATA / "vlan-collisions.vlan-key.conn.log.cut").read_text().splitlines()[2:]
    expected = sorted(
        (-1 if c[6] == "-" else int(c[6]), c[2], int(c[3]), c[4], int(c[5]), int(c[8]), int(c[9]))
        for c in (line.split("\t") for line in lines)
    )
    got = sorted(
        (
            -1 if f["vlan_id"] is None else f["vlan_id"],
            *tuple_of(f),
            f["src_packets"],
            f["dst_packets"],
        )
        for f in flows
    )
    assert got == expected  # VLAN-aware key: 3 conns, 7/7 each
    assert [g[0] for g in got] == [-1, 10, 42]  # untagged (null), QinQ 10/20 keeps the outer
    assert sum(f["vlan_id"] is None for f in flows) == 1
    # Zeek's default (VLAN-blind) key folds them into one conn of 21/21 packets
    default = (DATA / "vlan-collisions.default-key.conn.log.cut").read_text().splitlines()[2]
    cols = default.split("\t")
    assert {tuple_of(f) for f in flows} == {(cols[2], int(cols[3]), cols[4], int(cols[5]))}
    assert sum(f["src_packets"] for f in flows) == int(cols[8]) == 21
    assert sum(f["dst_packets"] for f in flows) == int(cols[9]) == 21


NDPI = re.compile(
    r"^\s+\d+\s+(TCP|UDP) \[?([0-9a-f.:]+?)\]?:(\d+) <-> \[?([0-9a-f.:]+?)\]?:(\d+) "
    r".*?\[(\d+) pkts/(\d+) bytes <-> (\d+) pkts/(\d+) bytes\]"
)
# nDPI's reader counts only first fragments; we also count the later ones. These are the
# 7 non-first fragments of the capture (frames 3 6 9 12 17 39 42, listed with
# `tshark -o ip.defragment:FALSE -o ipv6.defragment:FALSE`), all server -> client:
# client (ip, port) -> (fragments, wire bytes)
TAIL_FRAGMENTS = {
    ("172.217.40.76", 56680): (1, 264),
    ("2a00:1450:4013:c03::10a", 46433): (1, 123),
    ("2a00:1450:4013:c06::105", 63369): (1, 112),
    ("173.194.169.104", 59464): (1, 52),
    ("74.125.47.136", 59330): (1, 264),
    ("2001:470:1f0b:16b0:20c:29ff:fe7c:a4cb", 55729): (1, 368),
    ("194.247.5.6", 51791): (1, 292),
}


def test_dns_fragmented_matches_ndpi_flow_list() -> None:
    expected = []
    for line in (DATA / "ndpi-dns_fragmented.pcap.ndpi.out").read_text().splitlines():
        m = NDPI.match(line)
        if m:
            proto, sip, sp, dip, dp, spk, sby, dpk, dby = m.groups()
            tail_pk, tail_by = TAIL_FRAGMENTS.get((sip, int(sp)), (0, 0))
            expected.append(
                (
                    6 if proto == "TCP" else 17,
                    sip,
                    int(sp),
                    dip,
                    int(dp),
                    int(spk),
                    int(sby),
                    int(dpk) + tail_pk,
                    int(dby) + tail_by,
                )
            )
    assert len(expected) == 21
    flows, stats = build("ndpi-dns_fragmented.pcap")
    got = [
        (
            f["protocol"],
            *tuple_of(f),
            f["src_packets"],
            f["src_bytes"],
            f["dst_packets"],
            f["dst_bytes"],
        )
        for f in flows
    ]
    assert sorted(got) == sorted(expected)
    assert {f["state"] for f in flows} == {"SF"}
    assert (stats.fragments_attributed, stats.fragments_unattributed) == (7, 0)
    assert stats.packets_in_flows == stats.packets == 66


def test_ipv6_fragment_without_its_first_is_counted_not_a_flow() -> None:
    # frame 4 is the tail (offset 362) of fragment id 1 whose first fragment is missing
    flows, stats = build("zeek-ipv6-fragmented-dns.pcap")
    assert [(f["src_port"], f["src_packets"], f["dst_packets"]) for f in flows] == [
        (51850, 1, 1),
        (51851, 2, 3),  # response 2 in three fragments (frames 6-8)
    ]
    assert (stats.fragments_unattributed, stats.fragments_unattributed_bytes) == (1, 404)
    assert stats.fragments_unattributed_ip_bytes == 40 + 350
    assert stats.packets_in_flows == stats.packets - 1 == 7
