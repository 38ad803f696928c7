"""Cilium Hubble flows (``hubble observe -o json`` lines; gzip too) → flow tables.

Responsible for mapping one Hubble flow event (one JSON line, one packet-level event
seen by Cilium's datapath) onto one FLOW_SCHEMA row, streaming in chunks.

Mapping (decisions for ARCHITECTURE.md):

* One row per line: Hubble events are per packet (or per L7 request/response), not per
  connection, so flows are not aggregated here; ``src_packets``/``dst_packets`` count
  the one packet (1 on the sender's side), bytes are 0 (Hubble exports no byte count).
* **Orientation**: ``is_reply`` (or the deprecated ``reply``) true means the packet
  goes from the responder to the initiator: the row is stored in the initiator's view
  (addresses and ports swapped back) with the packet, its TCP flags and its ICMP type on
  the ``dst`` side. Without ``is_reply`` (Hubble did not know) the packet's sender is
  the initiator, except for ICMP reply types (echo reply ...), sent by the responder.
* ``direction`` = ``syn`` when the TCP flags include SYN (a SYN from the initiator or a
  SYN-ACK from the responder), else ``first_packet``.
* ``state``: TCP from flags (``records.state_from_flags``: SYN alone S0, refused REJ,
  mid-stream OTH ...); other protocols ``S0`` for a packet from the initiator, ``SHR``
  for a reply (Zeek's codes for "only that side sent").
* ICMPv4/ICMPv6 type and code are the ports as Community ID maps them (a reply type is
  stored as its request type seen from the initiator: echo reply → 8/0).
* ``verdict`` = ``verdict`` (FORWARDED, DROPPED, REDIRECTED, ...); ``drop_reason`` =
  ``drop_reason_desc`` (or the numeric ``drop_reason`` when only that is present).
  ``traffic_direction``, endpoint identities, labels and L7 details are not kept (no
  schema column). ``vlan_id`` null, ``sampling`` 1, ``exporter`` null.
* Lines without an ``IP`` object (non-IP events) are skipped and counted
  (``counters["no_ip"]``); malformed lines are skipped with a warning naming the line, and
  so are lines whose ports or ICMP type/code are not integers in range
  (``counters["bad_field"]``; never wrapped) and lines nested deeper than
  ``limits.JSON_MAX_DEPTH`` (``counters["too_deep"]``, checked before parsing).
"""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from flowaudit._util.time import to_us
from flowaudit.errors import CaptureError
from flowaudit.kernels.icmp import (
    ICMP4_PAIRS,
    ICMP4_REQUESTS,
    ICMP6_PAIRS,
    ICMP6_REQUESTS,
)
from flowaudit.limits import JSON_MAX_DEPTH, MAX_ICMP, MAX_PORT
from flowaudit.packets.detect import open_stream
from flowaudit.records.common import (
    FieldError,
    RecordStats,
    flow_table,
    int_field,
    json_depth,
    state_from_flags,
)

CHUNK_ROWS = 65_536
_TCP_FLAGS = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10, "URG": 0x20,
              "ECE": 0x40, "CWR": 0x80}  # fmt: skip
ICMP4_REPLIES = frozenset(ICMP4_PAIRS) - ICMP4_REQUESTS
ICMP6_REPLIES = frozenset(ICMP6_PAIRS) - ICMP6_REQUESTS


def parse_time_us(text: str) -> int:
    """RFC 3339 with up to nanoseconds ("2021-06-16T16:52:13.136834446Z") → µs (truncated)."""
    s = text.strip()
    tz = "+00:00"
    if s.endswith(("Z", "z")):
        s = s[:-1]
    elif len(s) > 6 and s[-6] in "+-" and s[-3] == ":":
        s, tz = s[:-6], s[-6:]
    base, _, frac = s.partition(".")
    if frac and not frac.isdigit():
        raise ValueError(f"bad fraction in {text!r}")
    t = dt.datetime.fromisoformat(base + tz)
    us = to_us(t)
    return us + (int(frac[:6].ljust(6, "0")) if frac else 0)


def _is_reply(flow: dict[str, Any]) -> bool | None:
    """``is_reply`` (or the deprecated ``reply``); None when Hubble did not know."""
    v = flow.get("is_reply", flow.get("reply"))
    if isinstance(v, dict):
        v = v.get("value")
    return None if v is None else bool(v)


class _Rows:
    def __init__(self) -> None:
        self.src: list[str] = []
        self.dst: list[str] = []
        self.proto: list[int] = []
        self.sp: list[int] = []
        self.dp: list[int] = []
        self.ts: list[int] = []
        self.reply: list[bool] = []
        self.flags: list[int] = []
        self.verdict: list[str | None] = []
        self.drop: list[str | None] = []

    def __len__(self) -> int:
        return len(self.ts)


def _l4(l4: dict[str, Any]) -> tuple[int, int, int, int, bool] | None:
    """(protocol, sport, dport, tcp flags, is ICMP) of a Hubble ``l4`` object."""
    for name, proto in (("TCP", 6), ("UDP", 17), ("SCTP", 132)):
        if name in l4:
            o = l4[name] or {}
            flags = 0
            for k, on in (o.get("flags") or {}).items():
                if on:
                    flags |= _TCP_FLAGS.get(k, 0)
            return (
                proto,
                int_field(f"l4.{name}.source_port", o.get("source_port", 0), MAX_PORT),
                int_field(f"l4.{name}.destination_port", o.get("destination_port", 0), MAX_PORT),
                flags,
                False,
            )
    for name, proto in (("ICMPv4", 1), ("ICMPv6", 58)):
        if name in l4:
            o = l4[name] or {}
            icmp_type = int_field(f"l4.{name}.type", o.get("type", 0), MAX_ICMP)
            icmp_code = int_field(f"l4.{name}.code", o.get("code", 0), MAX_ICMP)
            return proto, icmp_type, icmp_code, 0, True
    return None


def _add(rows: _Rows, flow: dict[str, Any]) -> bool:
    """Append one event; False when it has no IP layer."""
    ip = flow.get("IP")
    if not isinstance(ip, dict) or not ip.get("source") or not ip.get("destination"):
        return False
    l4 = _l4(flow.get("l4") or {})
    proto, sp, dp, flags, icmp = l4 if l4 is not None else (0, 0, 0, 0, False)
    known = _is_reply(flow)
    reply = bool(known)
    if known is None and icmp:  # unknown: an ICMP reply type is sent by the responder
        reply = sp in (ICMP4_REPLIES if proto == 1 else ICMP6_REPLIES)
    src, dst = str(ip["source"]), str(ip["destination"])
    if ipaddress.ip_address(src).version != ipaddress.ip_address(dst).version:
        raise ValueError("source and destination of different address families")
    if reply:
        src, dst = dst, src
        if icmp:
            pairs = ICMP4_PAIRS if proto == 1 else ICMP6_PAIRS
            if sp in pairs:  # a reply type: the initiator sent its request counterpart
                sp, dp = pairs[sp], 0
        else:
            sp, dp = dp, sp
    rows.src.append(src)
    rows.dst.append(dst)
    rows.proto.append(proto)
    rows.sp.append(sp if l4 is not None else -1)
    rows.dp.append(dp if l4 is not None else -1)
    rows.ts.append(parse_time_us(str(flow["time"])))
    rows.reply.append(reply)
    rows.flags.append(flags)
    verdict = flow.get("verdict")
    rows.verdict.append(str(verdict) if verdict is not None else None)
    drop = flow.get("drop_reason_desc")
    if drop is None and flow.get("drop_reason"):
        drop = str(flow["drop_reason"])
    rows.drop.append(str(drop) if drop is not None else None)
    return True


def _table(rows: _Rows, stats: RecordStats | None = None) -> pa.Table:
    reply = np.asarray(rows.reply, bool)
    proto = np.asarray(rows.proto, np.int64)
    flags = np.asarray(rows.flags, np.int64)
    fs, fd = np.where(reply, 0, flags), np.where(reply, flags, 0)
    one = np.ones(len(rows), np.uint64)
    sp, dp = np.where(reply, 0, one), np.where(reply, one, 0)
    tcp_state = state_from_flags(proto, fs, fd, dp).to_numpy(zero_copy_only=False)
    state = np.where(proto == 6, tcp_state, np.where(reply, "SHR", "S0"))
    ts = np.asarray(rows.ts, np.int64)
    cols = {
        "src_ip": rows.src,
        "dst_ip": rows.dst,
        "protocol": proto,
        "src_port": np.asarray(rows.sp, np.int64),
        "dst_port": np.asarray(rows.dp, np.int64),
        "first_seen": ts,
        "last_seen": ts,
        "src_packets": sp,
        "dst_packets": dp,
        "tcp_flags_src": fs,
        "tcp_flags_dst": fd,
        "state": pa.array(state.tolist(), pa.string()),
        "direction": pa.array(
            np.where((flags & 0x02) != 0, "syn", "first_packet").tolist(), pa.string()
        ),
        "verdict": pa.array(rows.verdict, pa.string()),
        "drop_reason": pa.array(rows.drop, pa.string()),
    }
    return flow_table(cols, source_kind="hubble", stats=stats)


def iter_hubble_tables(
    path: str | Path, *, stats: RecordStats, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pa.Table]:
    """Flow tables (FLOW_SCHEMA, ``source_kind`` "hubble") of ``hubble observe -o json``
    output: one row per event line, in chunks of ``chunk_rows``."""
    p = Path(path)
    rows = _Rows()
    lineno = 0
    try:
        with open_stream(p) as raw:
            for lineno, line in enumerate(
                io.TextIOWrapper(raw, encoding="utf-8", errors="replace"), 1
            ):
                if not line.strip():
                    continue
                stats.records += 1
                if json_depth(line) > JSON_MAX_DEPTH:
                    stats.skip(
                        f"{p}: line {lineno}: JSON nested deeper than {JSON_MAX_DEPTH}: skipped",
                        "too_deep",
                    )
                    continue
                try:
                    obj = json.loads(line)
                    flow = obj.get("flow") if isinstance(obj, dict) else None
                    if not isinstance(flow, dict):
                        raise ValueError("no 'flow' object")
                    if not _add(rows, flow):
                        stats.skipped += 1
                        stats.count("no_ip")
                        continue
                except FieldError as e:
                    stats.skip(f"{p}: line {lineno}: {e}: skipped", "bad_field")
                    continue
                except (ValueError, TypeError, KeyError, AttributeError) as e:
                    stats.skipped += 1
                    stats.warn(f"{p}: line {lineno}: malformed Hubble flow ({e}): skipped")
                    continue
                if len(rows) >= chunk_rows:
                    yield _finish(rows, stats, p)
                    rows = _Rows()
    except (OSError, EOFError, zlib.error) as e:
        raise CaptureError(f"{p}: unreadable stream after line {lineno}: {e}") from e
    if len(rows):
        yield _finish(rows, stats, p)


def _finish(rows: _Rows, stats: RecordStats, path: Path) -> pa.Table:
    try:
        table = _table(rows, stats)
    except ValueError as e:  # an address that is not an IP address
        raise CaptureError(f"{path}: {e}") from e
    stats.flows += table.num_rows
    for item in table.column("verdict").value_counts().to_pylist():
        stats.count(f"verdict_{item['values']}", int(item["counts"]))
    return table


__all__ = ["iter_hubble_tables", "parse_time_us"]
