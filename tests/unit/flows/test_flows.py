"""Flow builder on literal packet fixtures: every state code, direction rule, ICMP
pairing, fragments, idle split, close-and-reuse split, VLAN keying, output contract.

Packets are written as plain rows (time, sender, receiver, protocol, flags ...) and
turned into a ``PacketBatch``; expected values follow from Zeek's documented rules.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from flowaudit.flows.builder import FlowBuilder, FlowConfig
from flowaudit.flows.community_id import community_id
from flowaudit.flows.ports import service_port_mask
from flowaudit.kernels.layout import (
    FRAG_FIRST,
    FRAG_HAS_L4,
    FRAG_IS_FRAGMENT,
    KIND_IP,
    KIND_NON_IP,
    KIND_TRUNCATED,
)
from flowaudit.matrix import load_matrix
from flowaudit.packets.batch import PacketBatch
from flowaudit.schema import FLOW_SCHEMA, validate_flows

FLAG_BITS = {"F": 1, "S": 2, "R": 4, "P": 8, "A": 16}
A, B = ("10.0.0.1", 40000), ("10.0.0.2", 80)
HEAD = FRAG_IS_FRAGMENT | FRAG_FIRST | FRAG_HAS_L4  # first fragment
TAIL = FRAG_IS_FRAGMENT  # later fragment: no L4 header


def pkt(
    t: float,
    src: tuple[str, int],
    dst: tuple[str, int],
    proto: int = 6,
    flags: str = "",
    data: int = 0,
    vlan: int = -1,
    frag: int = FRAG_HAS_L4,
    frag_id: int = 0,
    kind: int = KIND_IP,
    ip_len: int | None = None,
) -> dict[str, Any]:
    s, d = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
    hdr = (20 if s.version == 4 else 40) + {6: 20, 17: 8}.get(proto, 8)
    il = ip_len if ip_len is not None else hdr + data
    return {
        "t": t,
        "src": s,
        "dst": d,
        "sport": src[1],
        "dport": dst[1],
        "proto": proto,
        "flags": sum(FLAG_BITS[c] for c in flags),
        "ip_len": il,
        "wire": il + 14,
        "vlan": vlan,
        "frag": frag,
        "frag_id": frag_id,
        "kind": kind,
    }


def _halves(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[int, int]:
    v = int(ip) if ip.version == 6 else (0xFFFF << 32) | int(ip)
    return v >> 64, v & ((1 << 64) - 1)


def batch(rows: list[dict[str, Any]]) -> PacketBatch:
    b = PacketBatch.empty(len(rows))
    for i, r in enumerate(rows):
        b["ts_ns"][i] = round(r["t"] * 1e9)
        b["wire_len"][i] = r["wire"]
        b["vlan"][i] = r["vlan"]
        b["kind"][i] = r["kind"]
        b["ip_version"][i] = r["src"].version if r["kind"] == KIND_IP else 0
        b["src_hi"][i], b["src_lo"][i] = _halves(r["src"])
        b["dst_hi"][i], b["dst_lo"][i] = _halves(r["dst"])
        b["protocol"][i] = r["proto"]
        has_l4 = r["frag"] & FRAG_HAS_L4
        b["sport"][i] = r["sport"] if has_l4 else 0
        b["dport"][i] = r["dport"] if has_l4 else 0
        b["tcp_flags"][i] = r["flags"] if has_l4 else 0
        b["ip_len"][i] = r["ip_len"]
        b["frag"][i] = r["frag"]
        b["frag_id"][i] = r["frag_id"]
    b.check()
    return b


def cols(flow: dict[str, Any], *names: str) -> tuple[Any, ...]:
    return tuple(flow[n] for n in names)


#: what ``flowaudit ingest`` orients flows with by default: the shipped matrix's service ports
SHIPPED = FlowConfig(service_ports=service_port_mask(load_matrix().service_ports))


def run(*batches: list[dict[str, Any]], config: FlowConfig = SHIPPED) -> list[dict[str, Any]]:
    fb = FlowBuilder("cap", "pcap", config)
    tables = [fb.add(batch(rows)) for rows in batches]
    return pa.concat_tables([*tables, fb.finish()]).to_pylist()


def tcp(seq: list[tuple[str, str, int]], t0: float = 0.0, a=A, b=B) -> list[dict[str, Any]]:
    """TCP packets between ``a`` and ``b``: (sender 'A'/'B', flags, payload bytes)."""
    out = []
    for i, (who, flags, data) in enumerate(seq):
        src, dst = (a, b) if who == "A" else (b, a)
        out.append(pkt(t0 + i * 0.1, src, dst, 6, flags, data))
    return out


HANDSHAKE = [("A", "S", 0), ("B", "SA", 0), ("A", "A", 0)]
STATE_CASES = {
    "S0": [("A", "S", 0)],
    "S1": [*HANDSHAKE, ("A", "PA", 100), ("B", "A", 0)],
    "SF": [
        *HANDSHAKE,
        ("A", "PA", 10),
        ("B", "A", 0),
        ("A", "FA", 0),
        ("B", "FA", 0),
        ("A", "A", 0),
    ],
    "REJ": [("A", "S", 0), ("B", "RA", 0)],
    "S2": [*HANDSHAKE, ("A", "FA", 0)],
    "S3": [*HANDSHAKE, ("B", "FA", 0)],
    "RSTO": [*HANDSHAKE, ("A", "R", 0)],
    "RSTR": [*HANDSHAKE, ("B", "R", 0)],
    "RSTOS0": [("A", "S", 0), ("A", "R", 0)],
    "RSTRH": [("B", "SA", 0), ("B", "R", 0)],
    "SH": [("A", "S", 0), ("A", "F", 0)],
    "SHR": [("B", "SA", 0), ("B", "F", 0)],
    "OTH": [("A", "PA", 10), ("B", "PA", 10)],
}


@pytest.mark.parametrize("state", list(STATE_CASES))
def test_every_tcp_state_code(state: str) -> None:
    (flow,) = run(tcp(STATE_CASES[state]))
    assert flow["state"] == state
    assert (flow["src_ip"], flow["src_port"], flow["dst_ip"], flow["dst_port"]) == (*A, *B)
    seq = STATE_CASES[state]
    assert flow["src_packets"] == sum(1 for w, _, _ in seq if w == "A")
    assert flow["dst_packets"] == sum(1 for w, _, _ in seq if w == "B")


def test_rst_after_ack_from_originator_is_not_rstos0() -> None:
    # history "SAR"-like: the originator acknowledged something before resetting
    (flow,) = run(tcp([("A", "S", 0), ("A", "A", 0), ("A", "R", 0)]))
    assert flow["state"] == "OTH"


def test_sf_counters_flags_bytes_and_times() -> None:
    (flow,) = run(tcp(STATE_CASES["SF"]))
    assert flow["tcp_flags_src"] == 2 | 16 | 8 | 1
    assert flow["tcp_flags_dst"] == 2 | 16 | 1
    assert (flow["src_packets"], flow["dst_packets"]) == (5, 3)
    assert flow["src_ip_bytes"] == 5 * 40 + 10 and flow["dst_ip_bytes"] == 3 * 40
    assert flow["src_bytes"] == flow["src_ip_bytes"] + 5 * 14
    assert flow["dst_bytes"] == flow["dst_ip_bytes"] + 3 * 14
    assert flow["first_seen"].timestamp() == 0.0
    assert flow["last_seen"].timestamp() == pytest.approx(0.7)
    assert cols(flow, "direction", "sampling", "vlan_id", "ip_version") == ("syn", 1, None, 4)
    assert flow["flow_id"] == community_id(A[0], B[0], 6, A[1], B[1])
    assert flow["src_addr"] == ipaddress.ip_address("::ffff:10.0.0.1").packed
    assert flow["exporter"] is None and flow["verdict"] is None


@pytest.mark.parametrize(
    ("state", "udp_seq"),
    [("S0", ["A", "A"]), ("SF", ["A", "B", "A"]), ("SHR", ["B"])],
)
def test_udp_states(state: str, udp_seq: list[str]) -> None:
    client, dns = ("10.0.0.5", 53000), ("10.0.0.53", 53)
    rows = [
        pkt(i * 0.1, *((client, dns) if w == "A" else (dns, client)), 17, data=30)
        for i, w in enumerate(udp_seq)
    ]
    (flow,) = run(rows)
    assert (flow["src_ip"], flow["dst_port"], flow["state"]) == ("10.0.0.5", 53, state)
    assert flow["direction"] == "service_port"
    assert flow["tcp_flags_src"] == 0 and flow["tcp_flags_dst"] == 0


# --- direction ----------------------------------------------------------------------


def test_syn_ack_seen_first_makes_its_receiver_the_initiator() -> None:
    (flow,) = run(tcp([("B", "SA", 0), ("A", "A", 0), ("A", "PA", 5)]))
    assert (flow["src_ip"], flow["dst_port"], flow["direction"]) == ("10.0.0.1", 80, "syn")
    assert flow["state"] == "S1"


def test_mid_stream_etcd_peer_session_is_node_to_node_2380() -> None:
    node1, node2 = ("10.25.233.4", 2380), ("10.25.233.5", 41000)
    rows = tcp([("A", "PA", 100), ("B", "A", 0), ("B", "PA", 50)], a=node1, b=node2)
    (flow,) = run(rows)
    assert (flow["src_ip"], flow["src_port"], flow["dst_ip"], flow["dst_port"]) == (
        "10.25.233.5",
        41000,
        "10.25.233.4",
        2380,
    )
    assert (flow["direction"], flow["state"]) == ("service_port", "OTH")
    assert (flow["src_packets"], flow["dst_packets"]) == (2, 1)


def test_first_packet_when_no_side_or_both_sides_use_a_service_port() -> None:
    hi1, hi2 = ("10.0.0.1", 40000), ("10.0.0.2", 50000)
    ssh, https = ("10.0.0.3", 22), ("10.0.0.4", 443)
    flows = run(
        tcp([("B", "PA", 5), ("A", "A", 0)], a=hi1, b=hi2)
        + tcp([("A", "PA", 5)], t0=1, a=ssh, b=https)
    )
    assert [(f["src_port"], f["dst_port"], f["direction"]) for f in flows] == [
        (50000, 40000, "first_packet"),
        (22, 443, "first_packet"),
    ]


def test_caller_service_port_mask() -> None:
    mask = np.zeros(65536, dtype=np.bool_)
    mask[40000] = True
    (flow,) = run(
        tcp([("B", "PA", 5)], a=A, b=("10.0.0.2", 50000)), config=FlowConfig(service_ports=mask)
    )
    assert (flow["src_port"], flow["dst_port"], flow["direction"]) == (50000, 40000, "service_port")


def test_shipped_matrix_service_ports() -> None:
    m = service_port_mask(load_matrix().service_ports)
    probe = (0, 1, 22, 68, 1023, 1024, 2380, 5353, 8118, 9001, 9022, 9023)
    # 2 = Zeek's likely server ports (22, 5353), 1 = well-known and the matrix's, 0 = none
    assert "".join(str(m[p]) for p in probe) == "012110120110"
    assert m[49152] == m[49215] == 1 and m[49216] == 0
    matrix = {p for lo, hi in load_matrix().service_ports for p in range(lo, hi + 1)}
    assert matrix == set(range(2379, 2381)) | set(range(9001, 9023)) | set(range(49152, 49216)) | {
        22, 443, 4240, 4244, 4245, 5080, 6443, 7946, 8472, 10250, 10257, 10259, 16509, 30003,
        51871,
    }  # fmt: skip
    assert {int(p) for p in np.flatnonzero(m)} == set(range(1, 1024)) | matrix | {
        1080, 1434, 1812, 1883, 2811, 3128, 3306, 3389, 4011, 5060, 5222, 5223, 5269, 5353,
        5355, 6379, 6666, 6667, 6668, 6669, 8000, 8080, 8888, 20000,
    }  # fmt: skip


def test_a_dhcp_reply_seen_alone_is_oriented_client_to_server() -> None:
    """Both 67 and 68 are well known; 67 is a likely server port (Zeek's), so the reply's
    receiver (the client) is the initiator, as Zeek writes it."""
    reply = pkt(0.0, ("10.25.233.1", 67), ("10.25.233.4", 68), proto=17, data=300)
    (flow,) = run([reply])
    assert (flow["src_ip"], flow["src_port"], flow["dst_ip"], flow["dst_port"]) == (
        "10.25.233.4", 68, "10.25.233.1", 67,
    )  # fmt: skip
    assert (flow["direction"], flow["state"], flow["src_packets"], flow["dst_packets"]) == (
        "service_port", "SHR", 0, 1,
    )  # fmt: skip


def test_without_a_matrix_only_well_known_and_likely_server_ports_orient() -> None:
    m = service_port_mask(())
    assert int((m == 1).sum()) == 1023 - 34 and int((m == 2).sum()) == 34 + 24
    assert not m[0] and m[1] and m[1023] and not m[2380]
    node1, node2 = ("10.25.233.4", 2380), ("10.25.233.5", 41000)
    rows = tcp([("A", "PA", 100), ("B", "A", 0)], a=node1, b=node2)
    (flow,) = run(rows, config=FlowConfig())
    assert (flow["src_port"], flow["dst_port"], flow["direction"]) == (2380, 41000, "first_packet")


def test_other_protocol_has_no_ports_and_first_packet_direction() -> None:
    gre = [
        pkt(0, ("10.0.0.9", 0), ("10.0.0.8", 0), 47, data=50),
        pkt(1, ("10.0.0.8", 0), ("10.0.0.9", 0), 47, data=50),
    ]
    (flow,) = run(gre)
    assert (flow["src_ip"], flow["src_port"], flow["dst_port"]) == ("10.0.0.9", None, None)
    assert (flow["direction"], flow["state"], flow["protocol"]) == ("first_packet", "SF", 47)
    assert flow["flow_id"] == community_id("10.0.0.9", "10.0.0.8", 47)


# --- ICMP -----------------------------------------------------------------------------


def icmp(t: float, src: str, dst: str, itype: int, code: int = 0, proto: int = 1) -> dict[str, Any]:
    return pkt(t, (src, itype), (dst, code), proto, data=56)


def test_echo_request_and_reply_pair_into_one_flow() -> None:
    rows = [
        icmp(0, "192.168.0.89", "192.168.0.1", 8),
        icmp(0.01, "192.168.0.1", "192.168.0.89", 0),
        icmp(1, "192.168.0.89", "192.168.0.1", 8),
        icmp(1.01, "192.168.0.1", "192.168.0.89", 0),
    ]
    (flow,) = run(rows)
    assert (flow["src_ip"], flow["src_port"], flow["dst_port"]) == ("192.168.0.89", 8, 0)
    assert (flow["src_packets"], flow["dst_packets"], flow["state"]) == (2, 2, "SF")
    assert flow["direction"] == "first_packet"
    assert flow["flow_id"] == "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="  # Zeek's baseline for this tuple


def test_icmpv6_neighbour_solicitation_and_advertisement() -> None:
    a, b = "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea"
    (flow,) = run([icmp(0, a, b, 135, proto=58), icmp(0.1, b, a, 136, proto=58)])
    assert (flow["src_ip"], flow["src_port"], flow["dst_port"]) == (a, 135, 136)
    assert (flow["src_packets"], flow["dst_packets"], flow["ip_version"]) == (1, 1, 6)
    assert flow["flow_id"] == "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="


def test_reply_seen_first_then_request_from_other_side_decides() -> None:
    only_reply = run([icmp(0, "10.0.0.2", "10.0.0.1", 0)])
    assert [
        (f["src_ip"], f["src_port"], f["dst_port"], f["direction"], f["state"]) for f in only_reply
    ] == [("10.0.0.2", 0, 8, "first_packet", "S0")]
    (flow,) = run([icmp(0, "10.0.0.2", "10.0.0.1", 0), icmp(1, "10.0.0.1", "10.0.0.2", 8)])
    assert cols(flow, "src_ip", "src_port", "dst_port", "direction") == (
        "10.0.0.1", 8, 0, "first_packet")  # fmt: skip
    assert (flow["src_packets"], flow["dst_packets"]) == (1, 1)


def test_one_way_icmp_types_keep_type_and_code() -> None:
    rows = [
        icmp(0, "10.0.0.254", "10.0.0.1", 3, 1),
        icmp(1, "10.0.0.254", "10.0.0.1", 3, 1),
        icmp(2, "10.0.0.1", "10.0.0.254", 3, 1),
        icmp(3, "10.0.0.254", "10.0.0.1", 11, 0),
    ]
    flows = run(rows)
    assert [
        (f["src_ip"], f["src_port"], f["dst_port"], f["src_packets"], f["state"]) for f in flows
    ] == [
        ("10.0.0.254", 3, 1, 2, "S0"),
        ("10.0.0.1", 3, 1, 1, "S0"),
        ("10.0.0.254", 11, 0, 1, "S0"),
    ]
    assert flows[0]["flow_id"] == community_id("10.0.0.254", "10.0.0.1", 1, 3, 1)


# --- fragments ------------------------------------------------------------------------

C4, S4 = ("10.1.1.1", 35353), ("10.1.1.2", 53)
C6, S6 = ("2001:db8::1", 35353), ("2001:db8::53", 53)


@pytest.mark.parametrize(("client", "server"), [(C4, S4), (C6, S6)], ids=["ipv4", "ipv6"])
def test_later_fragments_join_the_flow_of_their_first(client: Any, server: Any) -> None:
    rows = [
        pkt(0, client, server, 17, data=40),
        pkt(0.1, server, client, 17, data=1472, frag=HEAD, frag_id=7),
        pkt(0.1, server, client, 17, ip_len=1500, frag=TAIL, frag_id=7),
        pkt(0.1, server, client, 17, ip_len=300, frag=TAIL, frag_id=7),
    ]
    fb = FlowBuilder("cap", "pcap")
    (flow,) = pa.concat_tables([fb.add(batch(rows)), fb.finish()]).to_pylist()
    hdr = 28 if client is C4 else 48
    assert (flow["src_packets"], flow["dst_packets"]) == (1, 3)
    assert flow["dst_ip_bytes"] == hdr + 1472 + 1500 + 300
    assert flow["dst_bytes"] == flow["dst_ip_bytes"] + 3 * 14
    st = fb.stats
    assert (st.fragments_attributed, st.fragments_unattributed, st.packets_in_flows) == (2, 0, 4)


def test_fragment_before_its_first_waits_and_orphans_are_counted() -> None:
    rows = [
        pkt(0.0, S4, C4, 17, ip_len=600, frag=TAIL, frag_id=1),  # arrives before its head
        pkt(0.2, S4, C4, 17, data=1000, frag=HEAD, frag_id=1),
        pkt(0.3, S4, C4, 17, ip_len=700, frag=TAIL, frag_id=2),  # head never captured
        pkt(0.4, S4, C4, 17, ip_len=800, frag=TAIL, frag_id=2),
        pkt(0.5, C4, S4, 17, ip_len=900, frag=TAIL, frag_id=1),  # same id, other src
    ]
    fb = FlowBuilder("cap", "pcap")
    (flow,) = pa.concat_tables([fb.add(batch(rows)), fb.finish()]).to_pylist()
    assert (flow["src_ip"], flow["src_packets"], flow["dst_packets"]) == ("10.1.1.1", 0, 2)
    assert flow["dst_ip_bytes"] == 600 + 1028
    assert flow["first_seen"].timestamp() == 0.0 and flow["state"] == "SHR"
    st = fb.stats
    assert (st.fragments_attributed, st.fragments_unattributed) == (1, 3)
    assert st.fragments_unattributed_ip_bytes == 700 + 800 + 900
    assert st.fragments_unattributed_bytes == 700 + 800 + 900 + 3 * 14
    assert (st.packets, st.packets_in_flows) == (5, 2)


def test_stale_pending_fragments_expire_into_stats() -> None:
    rows = [
        pkt(0, S4, C4, 17, ip_len=700, frag=TAIL, frag_id=5),
        pkt(61, S4, C4, 17, data=10, frag=HEAD, frag_id=5),
    ]
    fb = FlowBuilder("cap", "pcap")
    fb.add(batch(rows))
    assert fb.stats.fragments_unattributed == 1  # expired by the sweep at t=61
    (flow,) = fb.finish().to_pylist()
    assert flow["dst_packets"] == 1


# --- splitting --------------------------------------------------------------------------


@pytest.mark.parametrize(("gap", "n"), [(59.0, 1), (61.0, 2)])
def test_udp_idle_split(gap: float, n: int) -> None:
    rows = [pkt(0, C4, S4, 17, data=10), pkt(gap, C4, S4, 17, data=10)]
    assert len(run(rows)) == n


def test_tcp_idle_split_after_300s() -> None:
    rows = tcp(HANDSHAKE) + [pkt(0.3 + 301, A, B, 6, "PA", 10), pkt(302, B, A, 6, "A")]
    first, second = run(rows)
    assert (first["state"], first["src_packets"], first["dst_packets"]) == ("S1", 2, 1)
    assert (second["state"], second["direction"], second["src_ip"]) == ("OTH", "service_port", A[0])


def test_idle_flows_are_emitted_by_add_and_memory_holds_only_live_flows() -> None:
    fb = FlowBuilder("cap", "pcap")
    assert fb.add(batch([pkt(0, C4, S4, 17, data=10)])).num_rows == 0
    assert fb.active_flows == 1
    out = fb.add(batch([pkt(100, ("10.9.9.9", 1), ("10.9.9.8", 2), 17, data=1)]))
    assert out.column("src_ip").to_pylist() == ["10.1.1.1"]
    assert (fb.active_flows, fb.stats.flows_emitted) == (1, 1)


def test_closed_flow_lingers_then_new_syn_starts_a_new_flow() -> None:
    rows = tcp(STATE_CASES["SF"]) + tcp([("A", "S", 0), ("B", "SA", 0)], t0=1.0)
    fb = FlowBuilder("cap", "pcap")
    flows = pa.concat_tables([fb.add(batch(rows)), fb.finish()]).to_pylist()
    assert [(f["state"], f["src_packets"], f["dst_packets"]) for f in flows] == [
        ("SF", 5, 3),
        ("S1", 1, 1),
    ]  # the last ACK stayed in the closed flow
    assert fb.stats.split_reuse == 1


def test_closed_flow_is_emitted_from_add_after_the_linger() -> None:
    fb = FlowBuilder("cap", "pcap")
    other = ("10.7.7.7", 1), ("10.7.7.8", 2)
    assert fb.add(batch(tcp(STATE_CASES["SF"]))).num_rows == 0
    assert fb.add(batch([pkt(3, *other, 17, data=1)])).num_rows == 0  # within 5 s
    out = fb.add(batch([pkt(6, *other, 17, data=1)]))
    assert out.column("state").to_pylist() == ["SF"]


def test_packets_after_a_reset_and_a_quiet_gap_form_a_new_flow() -> None:
    # the pattern of zeek-modbus-and-non-modbus-p502.pcap: S, SA, R ... 16 s ... data, R
    rows = tcp([("A", "S", 0), ("B", "SA", 0), ("A", "R", 0)])
    rows += [pkt(16, A, B, 6, "A", 109), pkt(16.01, B, A, 6, "R")]
    first, second = run(rows)
    assert (first["state"], first["src_packets"], first["dst_packets"]) == ("RSTO", 2, 1)
    assert cols(second, "state", "direction", "src_ip") == ("RSTRH", "service_port", A[0])


# --- VLAN, output contract, scale -------------------------------------------------------


def test_same_five_tuple_on_three_vlans_is_three_flows() -> None:
    rows = [
        pkt(0, A, B, 6, "S", vlan=-1),
        pkt(0.1, A, B, 6, "S", vlan=42),
        pkt(0.2, A, B, 6, "S", vlan=10),
        pkt(0.3, B, A, 6, "SA", vlan=42),
    ]
    flows = run(rows)
    assert [(f["vlan_id"], f["state"]) for f in flows] == [(None, "S0"), (42, "S1"), (10, "S0")]
    assert len({f["flow_id"] for f in flows}) == 1  # Community ID has no VLAN


def test_output_contract_order_and_empty() -> None:
    assert FlowBuilder("cap", "pcap").finish().schema == FLOW_SCHEMA
    rows = [pkt(5, (f"10.0.0.{i}", 1000 + i), ("10.0.1.1", 53), 17, data=1) for i in range(20)]
    fb = FlowBuilder("c" * 64, "pcapng")
    table = pa.concat_tables([fb.add(batch(rows)), fb.finish()])
    assert table.schema == FLOW_SCHEMA and validate_flows(table).num_rows == 20
    ids = table.column("flow_id").to_pylist()
    assert ids == sorted(ids)
    assert set(table.column("source_kind").to_pylist()) == {"pcapng"}
    assert set(table.column("capture_id").to_pylist()) == {"c" * 64}


def test_nanoseconds_truncate_to_microseconds() -> None:
    (flow,) = run([pkt(1.500000999, C4, S4, 17, data=1)])
    assert flow["first_seen"].microsecond == 500000


def test_non_ip_undecoded_and_portless_packets_are_counted_not_flows() -> None:
    rows = [
        pkt(0, C4, S4, 17, kind=KIND_NON_IP),
        pkt(0, C4, S4, 17, kind=KIND_TRUNCATED),
        pkt(0, C4, S4, 6, frag=0),
        pkt(0, C4, S4, 17, data=1),
    ]
    fb = FlowBuilder("cap", "pcap")
    fb.add(batch(rows))
    st = fb.stats
    assert (st.packets, st.ip_packets, st.non_ip, st.not_decoded) == (4, 2, 1, 1)
    assert (st.ip_without_ports, st.packets_in_flows, st.flows_created) == (1, 1, 1)


def test_tables_grow_and_expire_under_many_flows() -> None:
    n = 20000
    dns = ("10.255.0.1", 53)
    rows = [pkt(i / 100, (f"10.{i // 250}.{i % 250}.1", 1024 + i), dns, 17) for i in range(n)]
    fb = FlowBuilder("cap", "pcap", FlowConfig(initial_flows=16, udp_idle_s=30))
    emitted = sum(fb.add(batch(rows[j : j + 5000])).num_rows for j in range(0, n, 5000))
    assert emitted > 0 and fb.active_flows <= 3600  # 30 s idle + up to 5 s to the next sweep
    total = emitted + fb.finish().num_rows
    assert total == n and fb.stats.packets_in_flows == n


def test_a_clock_that_goes_back_does_not_stop_expiry() -> None:
    rows = [pkt(1000, C4, S4, 17, data=1), pkt(10, ("10.5.5.5", 1), ("10.5.5.6", 2), 17),
            pkt(200, ("10.5.5.7", 1), ("10.5.5.8", 2), 17)]  # fmt: skip
    fb = FlowBuilder("cap", "pcap")
    out = fb.add(batch(rows))
    assert out.column("src_ip").to_pylist() == ["10.5.5.5"]  # idle since t=10, swept at t=200


def test_emission_order_is_first_seen_then_the_whole_flow_id() -> None:
    """The fast order (first 8 id characters as one integer) equals sorting by the whole
    (first_seen, flow_id), also when ids share those 8 characters and differ later."""
    from flowaudit.flows.builder import _emission_order

    rng = np.random.default_rng(11)
    alphabet = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                             np.uint8)  # fmt: skip
    for shared in (0, 8, 12):  # leading characters after "1:" common to every id
        n = 3000
        body = alphabet[rng.integers(0, 64, (n, 28))]
        body[:, :shared] = body[0, :shared]
        ids = [b"1:" + bytes(row) for row in body]
        first = rng.integers(0, 40, n).astype(np.int64)  # many rows share a first_seen
        fid_s = np.array(ids, dtype="S30")
        order = _emission_order(first, fid_s)
        want = sorted(range(n), key=lambda i: (int(first[i]), ids[i]))
        assert [(int(first[i]), ids[i]) for i in order] == [(int(first[i]), ids[i]) for i in want]
