"""make_flows(rows): small FLOW_SCHEMA tables built in code for audit tests."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

import pyarrow as pa

from flowaudit.schema import FLOW_SCHEMA, validate_flows

T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)


def addr16(ip: str) -> bytes:
    a = ipaddress.ip_address(ip)
    n = (0xFFFF << 32 | int(a)) if a.version == 4 else int(a)
    return n.to_bytes(16, "big")


def flow(
    src: str,
    dst: str,
    dport: int | None,
    *,
    proto: int = 6,
    sport: int | None = 40000,
    vlan: int | None = 111,
    state: str = "SF",
    direction: str = "syn",
    t: float = 0.0,
    dur: float = 1.0,
    pk: tuple[int, int] = (5, 4),
    by: tuple[int, int] = (600, 500),
    sampling: int = 1,
) -> dict[str, Any]:
    v = ipaddress.ip_address(src).version
    return {
        "flow_id": f"1:test-{src}-{dst}-{dport}-{sport}-{t}",
        "source_kind": "pcap",
        "capture_id": "0" * 64,
        "vlan_id": vlan,
        "ip_version": v,
        "src_ip": src,
        "dst_ip": dst,
        "src_addr": addr16(src),
        "dst_addr": addr16(dst),
        "protocol": proto,
        "src_port": sport,
        "dst_port": dport,
        "first_seen": T0 + dt.timedelta(seconds=t),
        "last_seen": T0 + dt.timedelta(seconds=t + dur),
        "src_packets": pk[0],
        "src_bytes": by[0],
        "dst_packets": pk[1],
        "dst_bytes": by[1],
        "tcp_flags_src": 0x1B if proto == 6 else 0,
        "tcp_flags_dst": 0x1B if proto == 6 else 0,
        "state": state,
        "direction": direction,
        "sampling": sampling,
    }


def make_flows(rows: list[dict[str, Any]]) -> pa.Table:
    if not rows:
        return FLOW_SCHEMA.empty_table()
    cols = {f.name: [r.get(f.name) for r in rows] for f in FLOW_SCHEMA}
    return validate_flows(
        pa.table({k: pa.array(v, FLOW_SCHEMA.field(k).type) for k, v in cols.items()})
    )
