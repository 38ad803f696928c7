"""The same traffic as a pcap and as NetFlow v9 exported from it gives the same audit.

softflowd (Debian) reads the sample capture and exports NetFlow v9 (VLAN-tracking, IPv6 on)
to a UDP socket on loopback; the datagrams are written into a pcap, ingested with
``--format netflow`` and audited beside the pcap itself.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from testpaths import ADMIN, REPO

from flowaudit import api

SAMPLE = REPO / "samples" / "pcaps" / "vlan111-mixed.pcap"


def export_netflow_v9(capture: Path, out: Path) -> int:
    """Run softflowd over ``capture``; write the datagrams it exports as a raw-IP pcap."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    grams: list[bytes] = []

    def receive() -> None:
        while True:
            try:
                grams.append(sock.recv(65535))
            except TimeoutError:
                return

    rx = threading.Thread(target=receive)
    rx.start()
    port = sock.getsockname()[1]
    subprocess.run(
        [
            "softflowd",
            "-r",
            str(capture),
            "-n",
            f"127.0.0.1:{port}",
            "-v",
            "9",
            "-T",
            "vlan",
            "-6",
            "-c",
            "none",
            "-d",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    rx.join()
    sock.close()
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))  # LINKTYPE_RAW
        for i, g in enumerate(grams):
            ip = struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                0,
                28 + len(g),
                i,
                0,
                64,
                17,
                0,
                b"\x7f\x00\x00\x01",
                b"\x7f\x00\x00\x01",
            )
            pkt = ip + struct.pack("!HHHH", 40000, 2055, 8 + len(g), 0) + g
            f.write(struct.pack("<IIII", 1_800_000_000 + i, 0, len(pkt), len(pkt)) + pkt)
    return len(grams)


def _violations(d: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {
        (
            v["finding_id"],
            v["vlan_id"],
            v["src_ip"],
            v["dst_ip"],
            v["protocol"],
            v["dst_port"],
            v["reason"],
        )
        for v in d["violations"]
    }


def _unused(d: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {
        (
            u["finding_id"],
            u["rule_id"],
            u["protocol"],
            u["status"],
            str(u["unused_ports"]),
            str(u["unused_pairs"]),
        )
        for u in d["unused_rules"]
    }


@pytest.mark.softflowd
def test_netflow_export_of_a_capture_gives_the_same_findings(tmp_path: Path) -> None:
    export = tmp_path / "export.pcap"
    assert export_netflow_v9(SAMPLE, export) > 0
    store = tmp_path / "nf"
    (res,) = api.ingest(export, store, format="netflow")
    assert res.source_kind == "netflow9"
    from_netflow = api.audit(store=store, groups=ADMIN).to_dict()
    from_pcap = api.audit([SAMPLE], groups=ADMIN).to_dict()
    assert from_netflow["window"]["flows"] == from_pcap["window"]["flows"] == 125
    assert len(from_pcap["violations"]) == 14
    assert _violations(from_netflow) == _violations(from_pcap)
    assert _unused(from_netflow) == _unused(from_pcap)
