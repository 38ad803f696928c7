"""Which UDP datagrams are opened as VXLAN: crafted frames with known ground truth, both
engines. Only a valid VXLAN header (flags 0x08, or 0x88 with a group policy; reserved last
byte 0) on a VXLAN port is opened; other traffic to UDP 8472 stays an outer flow only."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from pcaptools import records_at, tcp_frame, udp_frame, write_pcap

from flowaudit import api

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)


def vxlan(flags: int, vni: int, inner: bytes, last: int = 0) -> bytes:
    return struct.pack("!BBHI", flags, 0, 0, (vni << 8) | last) + inner


NODE_A, NODE_B = "10.25.233.4", "10.25.233.5"


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    syn = tcp_frame(None, "10.0.1.5", "10.0.2.7", 40000, 8080, 0x02)
    synack = tcp_frame(None, "10.0.2.7", "10.0.1.5", 8080, 40000, 0x12)
    dns = tcp_frame(None, "10.0.1.5", "10.0.2.9", 40001, 53, 0x02)
    frames = [
        udp_frame(NODE_A, NODE_B, 33000, 8472, vxlan(0x08, 7, syn)),  # opened
        udp_frame(NODE_B, NODE_A, 33001, 8472, vxlan(0x08, 7, synack)),  # opened, same flow
        udp_frame(NODE_A, NODE_B, 33002, 8472, vxlan(0x88, 7, dns)),  # GBP: opened
        udp_frame(NODE_A, NODE_B, 33003, 8472, vxlan(0x0C, 7, dns)),  # bad flags: not
        udp_frame(NODE_A, NODE_B, 33004, 8472, vxlan(0x08, 7, dns, last=1)),  # reserved: not
        udp_frame(NODE_A, NODE_B, 33005, 9999, vxlan(0x08, 7, dns)),  # not a VXLAN port
    ]
    p = tmp_path / "vx.pcap"
    write_pcap(p, PCAP_HEADER, list(records_at(1_700_000_000, frames)))
    return p


@pytest.mark.parametrize("engine", ["auto", pytest.param("tshark", marks=pytest.mark.tshark)])
def test_only_valid_vxlan_headers_on_vxlan_ports_are_opened(
    tmp_path: Path, capture: Path, engine: str
) -> None:
    store = tmp_path / f"s-{engine}"
    api.ingest(capture, store, engine=engine)
    inner = api.query(
        "SELECT src_ip, src_port, dst_ip, dst_port, src_packets, dst_packets, state, "
        "tunnel_id, outer_src_ip, outer_dst_ip, vlan_id FROM flows "
        "WHERE tunnel IS NOT NULL ORDER BY ALL",
        store=store,
    ).to_pylist()
    assert inner == [
        {"src_ip": "10.0.1.5", "src_port": 40000, "dst_ip": "10.0.2.7", "dst_port": 8080,
         "src_packets": 1, "dst_packets": 1, "state": "S1", "tunnel_id": 7,
         "outer_src_ip": NODE_A, "outer_dst_ip": NODE_B, "vlan_id": 111},
        {"src_ip": "10.0.1.5", "src_port": 40001, "dst_ip": "10.0.2.9", "dst_port": 53,
         "src_packets": 1, "dst_packets": 0, "state": "S0", "tunnel_id": 7,
         "outer_src_ip": NODE_A, "outer_dst_ip": NODE_B, "vlan_id": 111},
    ]  # fmt: skip
    outer = api.query("SELECT count(*) AS n FROM flows WHERE tunnel IS NULL", store=store)
    assert outer["n"].to_pylist() == [6]  # every datagram is its own outer flow
    # the option adds a port: the datagram to 9999 is opened too
    store2 = tmp_path / f"s2-{engine}"
    api.ingest(capture, store2, engine=engine, vxlan_ports=[9999])
    n = api.query("SELECT count(*) AS n FROM flows WHERE tunnel IS NOT NULL", store=store2)
    assert n["n"].to_pylist() == [2]  # 10.0.1.5:40001 → 53 again, in the same inner flow
    both = api.query(
        "SELECT src_packets FROM flows WHERE tunnel IS NOT NULL AND dst_port = 53", store=store2
    )
    assert both["src_packets"].to_pylist() == [2]
