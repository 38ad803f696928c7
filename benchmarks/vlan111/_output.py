"""From planned flows to bytes and truth: packet matrix, per-flow counters, pcap chunks.

``assemble`` turns a window's flows into a packet matrix (see ``_frames``) and per-flow counters
that ``accumulate`` adds to ``Flow.acc`` (a long-lived flow spans windows; a flow carried in
VXLAN counts its inner frames); ``truth_row`` is one ground-truth JSON object, ``truth_rows``
adds the tunnel columns and the outer udp/8472 flows of a VXLAN-carried one; ``write_chunk``
writes a time-ordered matrix through the numba kernel and adds it to the summary (frames by kind
and VLAN, bytes, times).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import struct
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import numpy as np

from ._families import APPROVED, direction_for, port_level
from ._flows import Flow
from ._frames import (
    ACKN,
    ARP,
    DP,
    DST,
    FL,
    FLEN,
    H_IP4,
    H_IP6,
    H_MAC,
    H_TTL,
    I64,
    IPID,
    IPS,
    IPV6_LAYOUTS,
    LAY,
    NCOL,
    ODST,
    OSP,
    OSRC,
    PLEN,
    POFF,
    POOL,
    POOL_SUM2,
    PROTO,
    RANDOM_SPAN,
    SEQ,
    SP,
    SRC,
    TCP4,
    TS,
    VLAN,
    VNI,
    VRRP4,
    VXLAN_PORT,
    frame_lengths,
    write_frames,
)


def iso(us: int) -> str:
    t = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


_PLAIN = (0, 0, 0, 0, -1)  # Flow.encap of a frame not carried in a tunnel
VXLAN_ROW = next(f.seed_row for f in APPROVED if f.name == "vxlan")
FRAME_KIND_VXLAN = "ipv4_udp_vxlan"  # the summary's frame kind of a VXLAN frame (any inner)


def assemble(flows: list[Flow], t_start: int, pktno: int) -> tuple[I64, dict[str, I64]]:
    """Packet matrix (rows in flow order) and per-flow counters (see Flow.acc)."""
    lens = np.array([len(f.rows) for f in flows], np.int64)
    rows = np.array([x for f in flows for x in f.rows], np.int64).reshape(-1, 7)
    n = len(rows)
    fid = np.repeat(np.arange(len(flows)), lens)
    meta = np.array([(f.lay, f.vlan, f.a, f.b, f.pa, f.pb) for f in flows], np.int64)[fid]
    enc = np.array([f.encap or _PLAIN for f in flows], np.int64).reshape(-1, 5)[fid]
    fwd = rows[:, 1] == 0
    m = np.empty((n, NCOL), np.int64)
    m[:, OSRC], m[:, ODST] = (
        np.where(fwd, enc[:, 0], enc[:, 1]),
        np.where(fwd, enc[:, 1], enc[:, 0]),
    )
    m[:, OSP], m[:, VNI] = np.where(fwd, enc[:, 2], enc[:, 3]), enc[:, 4]
    m[:, TS], m[:, LAY], m[:, VLAN] = rows[:, 0] + t_start, meta[:, 0], meta[:, 1]
    m[:, SRC], m[:, DST] = (
        np.where(fwd, meta[:, 2], meta[:, 3]),
        np.where(fwd, meta[:, 3], meta[:, 2]),
    )
    m[:, SP], m[:, DP] = (
        np.where(fwd, meta[:, 4], meta[:, 5]),
        np.where(fwd, meta[:, 5], meta[:, 4]),
    )
    m[:, FL], m[:, PLEN], m[:, SEQ], m[:, ACKN] = rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5]
    idx = np.arange(pktno, pktno + n, dtype=np.int64)
    m[:, POFF] = np.where(rows[:, 6] >= 0, rows[:, 6], (idx * 2654435761) % RANDOM_SPAN)
    m[:, IPID] = (fid * 40503 + idx) & 0xFFFF
    m[:, FLEN], iplen = frame_lengths(m)
    fb = np.where(m[:, VNI] >= 0, iplen + 14, m[:, FLEN])  # a VXLAN frame counts for its inner flow
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    tflags = np.where(m[:, LAY] == TCP4, m[:, FL], 0)

    def red(v: I64) -> I64:
        return np.add.reduceat(v, starts) if n else v[:0]

    def orr(v: I64) -> I64:
        return np.bitwise_or.reduceat(v, starts) if n else v[:0]

    cnt = {
        "src_packets": red(fwd.astype(np.int64)),
        "src_bytes": red(fb * fwd),
        "src_ip_bytes": red(iplen * fwd),
        "tcp_flags_src": orr(tflags * fwd),
        "dst_packets": red((~fwd).astype(np.int64)),
        "dst_bytes": red(fb * ~fwd),
        "dst_ip_bytes": red(iplen * ~fwd),
        "tcp_flags_dst": orr(tflags * ~fwd),
        "first": m[starts, TS],
        "last": m[starts + lens - 1, TS],
    }
    return m, cnt


ACC_KEYS = (
    "src_packets",
    "src_bytes",
    "src_ip_bytes",
    "tcp_flags_src",
    "dst_packets",
    "dst_bytes",
    "dst_ip_bytes",
    "tcp_flags_dst",
    "first",
    "last",
)


def truth_row(f: Flow) -> dict[str, Any]:
    acc = dict(zip(ACC_KEYS, f.acc, strict=True))
    if f.direction == "first_packet" and port_level(f.pa) > port_level(f.pb) and PROTO[f.lay] in (
        6, 17, 132,
    ):  # fmt: skip
        return _reply_seen_alone(f, acc)
    return {
        "vlan": None if f.vlan < 0 else f.vlan,
        "ip_version": 6 if f.lay in IPV6_LAYOUTS else 4,
        "src_ip": IPS[f.a],
        "dst_ip": IPS[f.b],
        "protocol": PROTO[f.lay],
        "src_port": None if f.lay == VRRP4 else f.pa,
        "dst_port": None if f.lay == VRRP4 else f.pb,
        **{k: acc[k] for k in ACC_KEYS[:8]},
        "first_seen": iso(acc["first"]),
        "last_seen": iso(acc["last"]),
        "state": f.state,
        "direction": f.direction,
        "label": f.label,
        "seed_row": f.seed_row,
        "fw_rule": f.fw_rule,
        "note": f.note,
    }


def truth_rows(f: Flow, t_start: int) -> list[dict[str, Any]]:
    """The flow's truth row; for a flow carried in VXLAN, its row (with ``tunnel``,
    ``tunnel_id``, ``outer_src_ip``, ``outer_dst_ip``, ``outer_flow_id``) and the row of each
    outer UDP flow that carried one of its directions (approved node-to-node traffic)."""
    row = truth_row(f)
    if f.encap is None:
        return [row]
    assert row["src_ip"] == IPS[f.a]  # an inner flow is never seen reply-first
    oa, ob, spa, spb, vni = f.encap
    row.update(tunnel="vxlan", tunnel_id=vni, outer_src_ip=IPS[oa], outer_dst_ip=IPS[ob],
               outer_flow_id=community_id(IPS[oa], IPS[ob], 17, spa, VXLAN_PORT))  # fmt: skip
    # per packet, the outer IP packet is the inner frame + 36 (IPv4, UDP, VXLAN headers), the
    # outer frame that + Ethernet and 802.1Q
    out, per = [row], 36 + 14 + (4 if f.vlan >= 0 else 0)
    for d, (s, t, sp) in enumerate(((oa, ob, spa), (ob, oa, spb))):
        ts = [r[0] for r in f.rows if r[1] == d]
        if not ts:
            continue
        side = "src" if d == 0 else "dst"
        pk, b = row[f"{side}_packets"], row[f"{side}_bytes"]
        out.append({
            "vlan": None if f.vlan < 0 else f.vlan, "ip_version": 4, "src_ip": IPS[s],
            "dst_ip": IPS[t], "protocol": 17, "src_port": sp, "dst_port": VXLAN_PORT,
            "src_packets": pk, "src_bytes": b + per * pk, "src_ip_bytes": b + 36 * pk,
            "tcp_flags_src": 0, "dst_packets": 0, "dst_bytes": 0, "dst_ip_bytes": 0,
            "tcp_flags_dst": 0, "first_seen": iso(t_start + min(ts)),
            "last_seen": iso(t_start + max(ts)), "state": "S0",
            "direction": direction_for(17, sp, VXLAN_PORT, False), "label": "approved",
            "seed_row": VXLAN_ROW, "fw_rule": None,
            "note": f"VXLAN VNI {vni}: {IPS[f.a if d == 0 else f.b]} -> "
                    f"{IPS[f.b if d == 0 else f.a]} of a pod flow",
        })  # fmt: skip
    return out


def community_id(sa: str, da: str, proto: int, sp: int, dp: int, seed: int = 0) -> str:
    """Community ID v1 of an IPv4 flow (the outer flow an inner flow links to)."""
    a = (ipaddress.IPv4Address(sa).packed, sp)
    b = (ipaddress.IPv4Address(da).packed, dp)
    (x, px), (y, py) = (a, b) if a <= b else (b, a)
    data = struct.pack("!H4s4sBBHH", seed, x, y, proto, 0, px, py)
    return "1:" + base64.b64encode(hashlib.sha1(data, usedforsecurity=False).digest()).decode()


def _reply_seen_alone(f: Flow, acc: dict[str, Any]) -> dict[str, Any]:
    """A flow whose sender's port outranks the receiver's (a DHCP offer 67 -> 68 seen
    alone): a flow builder orients it by the server port, so the truth is the reverse."""
    row = truth_row(replace(f, direction="service_port"))
    for a, b in (("src_ip", "dst_ip"), ("src_port", "dst_port")):
        row[a], row[b] = row[b], row[a]
    for k in ("packets", "bytes", "ip_bytes"):
        row[f"src_{k}"], row[f"dst_{k}"] = acc[f"dst_{k}"], acc[f"src_{k}"]
    row["tcp_flags_src"], row["tcp_flags_dst"] = acc["tcp_flags_dst"], acc["tcp_flags_src"]
    row["state"] = {"S0": "SHR", "SHR": "S0"}.get(f.state, f.state)
    return row


def accumulate(f: Flow, vals: list[int]) -> None:
    a = f.acc
    if a[4] + a[0] == 0:
        f.acc = list(vals)
        return
    for i in (0, 1, 2, 4, 5, 6):
        a[i] += vals[i]
    a[3], a[7], a[8], a[9] = a[3] | vals[3], a[7] | vals[7], min(a[8], vals[8]), max(a[9], vals[9])


def count_flows(summ: dict[str, Any], flows: list[Flow], names: dict[int, str]) -> None:
    for f in flows:
        if f.lay == ARP:
            continue
        if f.encap is not None:  # inner flows apart; its outer flows are approved, one-way
            summ["inner_flows"] += 1
            summ["inner_states"][f.state] = summ["inner_states"].get(f.state, 0) + 1
            outer = len({r[1] for r in f.rows})
            summ["flows"] += outer
            summ["labels"]["approved"] = summ["labels"].get("approved", 0) + outer
            summ["states"]["S0"] = summ["states"].get("S0", 0) + outer
            continue
        summ["flows"] += 1
        summ["labels"][f.label] = summ["labels"].get(f.label, 0) + 1
        summ["states"][f.state] = summ["states"].get(f.state, 0) + 1


def write_chunk(out: IO[bytes], m: I64, summ: dict[str, Any], names: dict[int, str]) -> None:
    if not len(m):
        return
    off = np.concatenate([[0], np.cumsum(m[:, FLEN] + 16)])
    buf = np.zeros(int(off[-1]), np.uint8)
    write_frames(buf, off[:-1], m, H_IP4, H_IP6, H_MAC, H_TTL, POOL, POOL_SUM2)
    out.write(buf.data)
    summ["packets"] += len(m)
    summ["bytes"] += int(m[:, FLEN].sum())
    kinds = np.where(m[:, VNI] >= 0, -1, m[:, LAY])  # -1: a VXLAN frame
    for key, col, lab in (("frames", kinds, names), ("vlans", m[:, VLAN], None)):
        vals, counts = np.unique(col, return_counts=True)
        for v, c in zip(vals.tolist(), counts.tolist(), strict=True):
            if lab:
                k = FRAME_KIND_VXLAN if v < 0 else lab[v]
            else:
                k = "untagged" if v < 0 else str(v)
            summ[key][k] = summ[key].get(k, 0) + c
    first = iso(int(m[0, TS]))
    summ.setdefault("first_seen", first)
    summ["last_seen"] = iso(int(m[-1, TS]))
