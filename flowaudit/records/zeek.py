"""Zeek conn.log (TSV with ``#fields`` headers, or JSON lines; gzip too) → flow tables.

Responsible for mapping one conn.log row onto one FLOW_SCHEMA row, streaming the log
in chunks (memory does not grow with the file).

Mapping (decisions for ARCHITECTURE.md):

* ``id.orig_*`` → ``src_*`` (the initiator), ``id.resp_*`` → ``dst_*``.
* ``protocol``: ``ip_proto`` when the log has it, else ``proto`` (tcp 6, udp 17, icmp 1
  for IPv4 / 58 for IPv6). Rows with an unknown transport and no ``ip_proto`` are
  skipped (counted in ``stats.skipped``). ICMP ports are Zeek's type/code (code of a
  request/reply type → counterpart type, as Zeek and Community ID do).
* ``first_seen`` = ``ts``; ``last_seen`` = ``ts + duration`` (unset duration → 0).
* Packets: ``orig_pkts``/``resp_pkts``. **Bytes**: Zeek logs no frame bytes, so
  ``orig_ip_bytes``/``resp_ip_bytes`` (IP-layer bytes) fill both ``*_bytes`` and
  ``*_ip_bytes``: a Zeek flow's ``src_bytes`` is smaller than the same flow's pcap
  ``src_bytes`` by the link-layer header of every packet.
* ``state`` = ``conn_state`` (unset → ``OTH``). ``direction`` = ``syn`` when the
  history starts with ``S`` (Zeek saw the initiator's SYN), else ``first_packet``.
* **TCP flags** from ``history`` (upper case = originator, lower case = responder):
  ``S`` SYN, ``H`` SYN+ACK, ``A``/``D`` ACK, ``F`` FIN, ``R`` RST. History letters
  record the first occurrence only, and Zeek does not log PSH/URG/ECE/CWR, so these are
  a lower bound of the flags a packet capture would show.
* ``vlan_id`` = ``vlan`` (or ``id.ctx.vlan``) when the log has it, else null;
  ``inner_vlan`` is not kept (the schema has the outermost tag only). ``sampling`` 1.
* Unset (``#unset_field``, ``-``) counters are 0; ``(empty)`` strings are empty.

Errors: a data line before any ``#fields`` header, or a ``#fields`` header without the
tuple columns, raises CaptureError with the line number; an unparseable ``ts`` too,
unless the caller passes ``default_ts`` (Zeek's test baselines mask ``ts`` as
``XXXXXXXXXX.XXXXXX``; a ``ts`` before 1970 or after 9999 counts as unparseable);
malformed lines (wrong column count, bad JSON, bad address) are skipped with a warning
naming the line. So are lines whose integer fields are not integers within their type's
range (ports 0-65535, ``ip_proto`` 0-255, counters 0-2^64-1, ``vlan`` 0-4095, ``duration``
within the timestamp range: ``counters["bad_field"]``; never wrapped, clipped or nulled)
and JSON lines nested deeper than ``limits.JSON_MAX_DEPTH`` (``counters["too_deep"]``).
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import json
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from flowaudit._util.time import to_us
from flowaudit.errors import CaptureError
from flowaudit.limits import (
    JSON_MAX_DEPTH,
    MAX_COUNTER,
    MAX_PORT,
    MAX_PROTOCOL,
    MAX_TIME_US,
    MAX_VLAN,
)
from flowaudit.packets.detect import open_stream
from flowaudit.records.common import (
    FieldError,
    RecordStats,
    flow_table,
    int_field,
    json_depth,
    parse_addresses,
)

CHUNK_ROWS = 65_536
REQUIRED = ("ts", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto")
_PROTO = {"tcp": 6, "udp": 17}
_ORIG_FLAGS = {"S": 0x02, "H": 0x12, "A": 0x10, "D": 0x10, "F": 0x01, "R": 0x04}
_FLAG_TABLE = np.zeros((2, 128), np.uint8)
for _ch, _bit in _ORIG_FLAGS.items():
    _FLAG_TABLE[0, ord(_ch)] = _bit
    _FLAG_TABLE[1, ord(_ch.lower())] = _bit


def history_flags(history: str) -> tuple[int, int]:
    """(originator flags, responder flags) implied by a Zeek ``history`` string."""
    fo = fr = 0
    for ch in history:
        o = ord(ch)
        if o < 128:
            fo |= int(_FLAG_TABLE[0, o])
            fr |= int(_FLAG_TABLE[1, o])
    return fo, fr


def _ts_us(text: str) -> int | None:
    """Zeek epoch text ("1300475167.096535") → µs, exactly; None when unparseable."""
    whole, _, frac = text.strip().partition(".")
    if not whole.lstrip("-").isdigit() or (frac and not frac.isdigit()):
        return None
    if len(whole) > 20:  # far beyond any time (and int() refuses > 4300 digits)
        whole = "-" + "9" * 20 if whole.startswith("-") else "9" * 20
    us = int(frac[:6].ljust(6, "0")) if frac else 0
    sign = -1 if whole.startswith("-") else 1
    return int(whole) * 1_000_000 + sign * us


def _json_ts_us(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _ts_us(repr(float(value))) if isinstance(value, float) else int(value) * 1_000_000
    if isinstance(value, str):
        us = _ts_us(value)
        if us is not None:
            return us
        try:
            t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return to_us(t)
    return None


def _int(get: Any, name: str, hi: int, default: int) -> int:
    """An integer field: ``default`` when unset or empty, else ``int_field`` (FieldError
    when it is not an integer 0..hi)."""
    v = get(name)
    if v is None or v == "":
        return default
    return int_field(name, v, hi)


def _duration_us(value: Any) -> int:
    """``duration`` → µs (unset or unreadable → 0, as before); FieldError beyond the range
    of a timestamp (it would overflow ``last_seen``)."""
    if value is None or isinstance(value, bool):
        return 0
    text = repr(value) if isinstance(value, float) else str(value)
    d = _ts_us(text)
    if d is not None and d > MAX_TIME_US:
        raise FieldError(f"duration {text[:40]!r} out of range")
    return max(d or 0, 0)


class _Rows:
    """One chunk of conn.log rows as column lists."""

    def __init__(self) -> None:
        self.line: list[int] = []
        self.ts: list[int] = []
        self.dur: list[int] = []
        self.orig_h: list[str] = []
        self.resp_h: list[str] = []
        self.orig_p: list[int] = []
        self.resp_p: list[int] = []
        self.proto: list[str] = []
        self.ip_proto: list[int] = []
        self.state: list[str] = []
        self.history: list[str] = []
        self.opk: list[int] = []
        self.oib: list[int] = []
        self.rpk: list[int] = []
        self.rib: list[int] = []
        self.vlan: list[int] = []

    def __len__(self) -> int:
        return len(self.line)


class _Reader:
    def __init__(self, path: Path, stats: RecordStats, default_ts: dt.datetime | None) -> None:
        self.path = path
        self.stats = stats
        self.default_us: int | None = None
        if default_ts is not None:
            self.default_us = to_us(default_ts)

    def ts(self, lineno: int, value: Any, parse: Any) -> int:
        us = None if value is None else parse(value)
        if us is not None and not 0 <= us <= MAX_TIME_US:
            us = None  # before 1970 or after 9999: no capture's time
        if us is None:
            if self.default_us is None:
                raise CaptureError(
                    f"{self.path}: line {lineno}: unparseable ts {str(value)[:40]!r}"
                )
            self.stats.count("default_ts")
            return self.default_us
        return int(us)

    def add(self, rows: _Rows, lineno: int, get: Any, ts_parse: Any) -> None:
        """Append one record; ``get(name)`` returns the value or None when unset. A record
        with an integer field that is not one or is outside its range is skipped."""
        ts = self.ts(lineno, get("ts"), ts_parse)
        try:
            dur = _duration_us(get("duration"))
            if ts + dur > MAX_TIME_US:
                raise FieldError(f"duration {str(get('duration'))[:40]!r} out of range")
            orig_p = _int(get, "id.orig_p", MAX_PORT, 0)
            resp_p = _int(get, "id.resp_p", MAX_PORT, 0)
            ip_proto = _int(get, "ip_proto", MAX_PROTOCOL, -1)
            counts = [
                _int(get, k, MAX_COUNTER, 0)
                for k in ("orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes")
            ]
            vlan_key = "vlan" if get("vlan") is not None else "id.ctx.vlan"
            vlan = _int(get, vlan_key, MAX_VLAN, -1)
        except FieldError as e:
            self.stats.skip(f"{self.path}: line {lineno}: {e}: skipped", "bad_field")
            return
        rows.line.append(lineno)
        rows.ts.append(ts)
        rows.dur.append(dur)
        rows.orig_h.append(str(get("id.orig_h") or ""))
        rows.resp_h.append(str(get("id.resp_h") or ""))
        rows.orig_p.append(orig_p)
        rows.resp_p.append(resp_p)
        rows.proto.append(str(get("proto") or ""))
        rows.ip_proto.append(ip_proto)
        rows.state.append(str(get("conn_state") or "OTH"))
        rows.history.append(str(get("history") or ""))
        rows.opk.append(counts[0])
        rows.oib.append(counts[1])
        rows.rpk.append(counts[2])
        rows.rib.append(counts[3])
        rows.vlan.append(vlan)

    def table(self, rows: _Rows) -> pa.Table | None:
        """The chunk as a FLOW_SCHEMA table (bad rows skipped with a warning)."""
        n = len(rows)
        if n == 0:
            return None
        ipv_s, *_a, ok_s = parse_addresses(rows.orig_h)
        ipv_d, *_b, ok_d = parse_addresses(rows.resp_h)
        ip_proto = np.asarray(rows.ip_proto, np.int64)
        named = np.array([_PROTO.get(p, -1) for p in rows.proto], np.int64)
        icmp = np.array([p == "icmp" for p in rows.proto], bool)
        proto = np.where(
            ip_proto >= 0, ip_proto, np.where(icmp, np.where(ipv_s == 6, 58, 1), named)
        )
        good = ok_s & ok_d & (ipv_s == ipv_d) & (proto >= 0) & (proto < 256)
        for i in np.flatnonzero(~good)[:5].tolist():
            why = "unknown transport" if proto[i] < 0 else "unreadable or mixed-family addresses"
            self.stats.warn(f"{self.path}: line {rows.line[i]}: {why}: row skipped")
        self.stats.skipped += int((~good).sum())
        idx = np.flatnonzero(good)
        if len(idx) == 0:
            return None
        take = idx.tolist()
        hist = [rows.history[i] for i in take]
        flags = np.array([history_flags(h) for h in hist], np.int64).reshape(-1, 2)
        tcp = proto[idx] == 6
        first = np.asarray(rows.ts, np.int64)[idx]
        opk, rpk = np.asarray(rows.opk, np.uint64)[idx], np.asarray(rows.rpk, np.uint64)[idx]
        oib, rib = np.asarray(rows.oib, np.uint64)[idx], np.asarray(rows.rib, np.uint64)[idx]
        cols = {
            "src_ip": [rows.orig_h[i] for i in take],
            "dst_ip": [rows.resp_h[i] for i in take],
            "protocol": proto[idx],
            "src_port": np.asarray(rows.orig_p, np.int64)[idx],
            "dst_port": np.asarray(rows.resp_p, np.int64)[idx],
            "first_seen": first,
            "last_seen": first + np.asarray(rows.dur, np.int64)[idx],
            "src_packets": opk,
            "dst_packets": rpk,
            "src_bytes": oib,
            "dst_bytes": rib,
            "src_ip_bytes": oib,
            "dst_ip_bytes": rib,
            "tcp_flags_src": np.where(tcp, flags[:, 0], 0),
            "tcp_flags_dst": np.where(tcp, flags[:, 1], 0),
            "state": pa.array([rows.state[i] for i in take], pa.string()),
            "direction": pa.array(
                ["syn" if h.startswith("S") else "first_packet" for h in hist], pa.string()
            ),
            "vlan_id": np.asarray(rows.vlan, np.int64)[idx],
        }
        table = flow_table(cols, source_kind="zeek", stats=self.stats)
        self.stats.flows += table.num_rows
        return table


def iter_zeek_tables(
    path: str | Path,
    *,
    stats: RecordStats,
    default_ts: dt.datetime | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[pa.Table]:
    """Flow tables (FLOW_SCHEMA, ``source_kind`` "zeek") of a Zeek conn.log, in chunks.

    TSV (``#separator``/``#fields`` headers, several header blocks allowed) or JSON
    lines, plain or gzip. ``default_ts`` replaces unparseable ``ts`` values (for Zeek
    test baselines, whose ``ts`` is masked); without it they raise CaptureError.
    """
    p = Path(path)
    reader = _Reader(p, stats, default_ts)
    rows = _Rows()
    try:
        with open_stream(p) as raw:
            lines = iter(io.TextIOWrapper(raw, encoding="utf-8", errors="replace"))
            for lineno, line, fmt, fields, sep, unset, empty in _records(p, lines):
                stats.records += 1
                if fmt == "json":
                    if json_depth(line) > JSON_MAX_DEPTH:
                        stats.skip(
                            f"{p}: line {lineno}: JSON nested deeper than {JSON_MAX_DEPTH}: "
                            "skipped",
                            "too_deep",
                        )
                        continue
                    try:
                        obj = json.loads(line)
                        if not isinstance(obj, dict):
                            raise ValueError("not a JSON object")
                    except ValueError as e:
                        stats.skipped += 1
                        stats.warn(f"{p}: line {lineno}: malformed JSON ({e}): skipped")
                        continue
                    if any(k not in obj for k in REQUIRED[1:]):
                        stats.skipped += 1
                        stats.warn(f"{p}: line {lineno}: no conn.log 5-tuple: skipped")
                        continue
                    reader.add(rows, lineno, obj.get, _json_ts_us)
                else:
                    values = line.rstrip("\r\n").split(sep)
                    if len(values) != len(fields):
                        stats.skipped += 1
                        stats.warn(
                            f"{p}: line {lineno}: {len(values)} columns, "
                            f"#fields has {len(fields)}: skipped"
                        )
                        continue
                    rec = dict(zip(fields, values, strict=True))
                    reader.add(rows, lineno, _tsv_getter(rec, unset, empty), _ts_us)
                if len(rows) >= chunk_rows:
                    table = reader.table(rows)
                    rows = _Rows()
                    if table is not None:
                        yield table
    except (OSError, EOFError, zlib.error) as e:
        raise CaptureError(f"{p}: unreadable stream after line {stats.records}: {e}") from e
    table = reader.table(rows)
    if table is not None:
        yield table


def _tsv_getter(rec: dict[str, str], unset: str, empty: str) -> Callable[[str], str | None]:
    """``get(name)`` for one TSV record: None when unset or absent, "" when (empty)."""

    def get(name: str) -> str | None:
        v = rec.get(name)
        if v is None or v == unset:
            return None
        return "" if v == empty else v

    return get


def _records(
    path: Path, lines: Iterator[str]
) -> Iterator[tuple[int, str, str, list[str], str, str, str]]:
    """(line number, line, "tsv"|"json", fields, separator, unset, empty) per data line."""
    fields: list[str] = []
    sep, unset, empty = "\t", "-", "(empty)"
    fmt = ""
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if not fmt:
            fmt = "json" if line.lstrip().startswith("{") else "tsv"
        if fmt == "json":
            yield lineno, line, fmt, fields, sep, unset, empty
            continue
        if line.startswith("#"):
            if line.startswith("#separator"):
                value = line[len("#separator") :].strip()
                try:
                    with warnings.catch_warnings():
                        # an escape Python does not know (\q, \%) is a deprecation warning
                        # and kept as written: it is no separator Zeek writes (\x09)
                        warnings.simplefilter("error", DeprecationWarning)
                        sep = codecs.decode(value, "unicode_escape") if value else "\t"
                except (UnicodeDecodeError, DeprecationWarning):
                    sep = ""
                if not sep:
                    raise CaptureError(
                        f"{path}: line {lineno}: #separator {value[:20]!r} is not a separator"
                    )
                continue
            key, _, value = line.rstrip("\r\n")[1:].partition(sep)
            if key == "fields":
                fields = value.split(sep)
                missing = [f for f in REQUIRED if f not in fields]
                if missing:
                    raise CaptureError(
                        f"{path}: line {lineno}: #fields lacks {', '.join(missing)}: not a conn.log"
                    )
            elif key == "unset_field":
                unset = value
            elif key == "empty_field":
                empty = value
            continue  # other headers (#path, #open, #close, #types) and comments
        if not fields:
            raise CaptureError(
                f"{path}: line {lineno}: data before a #fields header: not a Zeek TSV log"
            )
        yield lineno, line, fmt, fields, sep, unset, empty


__all__ = ["history_flags", "iter_zeek_tables"]
