"""Shared plumbing for record-based readers (NetFlow/IPFIX, nfcapd, Zeek, Hubble).

Responsible for two things every non-pcap reader needs:

* ``RecordStats``: what a reader saw (input records, flows yielded, records skipped,
  warnings, per-format counters), filled in by the reader while it streams.
* ``flow_table(cols, source_kind=...)``: a dict of columns (numpy arrays, Arrow arrays or
  Python sequences) → a table in FLOW_SCHEMA order and types. It fills what a reader
  need not compute itself: addresses in both forms (text ↔ 16-byte IPv4-mapped),
  ``flow_id`` (Community ID v1), ``state`` from TCP flags, ``capture_id`` = "" and the
  defaults (flags 0, sampling 1, nullable extensions null).

State from exporter TCP flags (``state_from_flags``), used when a record carries no
Zeek ``conn_state``. NetFlow flags are the OR of every packet's flags per direction, so
their order is unknown; the mapping is the closest Zeek code:

========================================================  =====
initiator side has no SYN (mid-stream record)             OTH
initiator SYN, responder sent nothing (no packets/flags)  S0
initiator SYN, responder RST without SYN (refused)        REJ
initiator SYN, responder SYN, FIN from both sides         SF
initiator SYN, responder SYN, RST from initiator          RSTO
initiator SYN, responder SYN, RST from responder          RSTR
initiator SYN, responder SYN, otherwise (not closed)      S1
initiator SYN, responder answered without SYN or RST      OTH
non-TCP: no responder packets                             S0
non-TCP: responder packets                                SF
========================================================  =====
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flowaudit._util import arrow as _arrow
from flowaudit._util.time import TIME_MAX_US, TIME_MIN_US
from flowaudit.flows.community_id import community_ids
from flowaudit.kernels.icmp import ICMP4_PAIR_TABLE, ICMP6_PAIR_TABLE, PORT_PROTOCOLS
from flowaudit.limits import JSON_MAX_DEPTH
from flowaudit.schema import FLOW_SCHEMA, TS, validate_flows

FIN, SYN, RST = 0x01, 0x02, 0x04
MAX_WARNINGS = 100

U64 = npt.NDArray[np.uint64]
T = TypeVar("T")
SWITCH_INTERVAL_S = 0.0005  # GIL switch interval while a reader thread runs (prefetched)


@dataclass
class RecordStats:
    """What a record reader saw. ``counters`` holds per-format counts (templates, ...)."""

    records: int = 0  # input records read (flow records, log lines, JSON objects)
    flows: int = 0  # flow rows yielded (after pairing)
    skipped: int = 0  # input records not turned into flows
    warnings: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    suppressed_warnings: int = 0  # warnings beyond MAX_WARNINGS (counted, not kept)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the per-format counter ``name``."""
        self.counters[name] = self.counters.get(name, 0) + n

    def warn(self, message: str) -> None:
        """Keep a warning (the first MAX_WARNINGS; later ones are only counted)."""
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        else:
            self.suppressed_warnings += 1

    def skip(self, message: str, counter: str | None = None) -> None:
        """One input record skipped: counted (``skipped``, and ``counter`` if given) and
        warned about (``message`` names file and line)."""
        self.skipped += 1
        if counter:
            self.count(counter)
        self.warn(message)


# --- untrusted fields --------------------------------------------------------------------
class FieldError(ValueError):
    """A record field that is not an integer, or outside its type's range. The reader
    skips the record with a warning; the value is never wrapped, clipped or nulled."""


_INT_TEXT = re.compile(r"\s*[+-]?[0-9]+\s*")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def int_field(name: str, value: Any, hi: int, lo: int = 0) -> int:
    """``value`` (an int, or decimal text) as an int in ``lo..hi``; else FieldError naming
    the field. Bools, floats and other types are not integers."""
    if isinstance(value, str) and len(value) <= 20 and value.isascii() and value.isdigit():
        v = int(value)  # the common case, fast
    elif isinstance(value, int) and not isinstance(value, bool):
        v = value
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value):
        digits = value.strip().lstrip("+-").lstrip("0")  # int() refuses > 4300 digits
        v = int(digits or "0") if len(digits) <= 40 else hi + 1
        v = -v if "-" in value else v
    else:
        raise FieldError(f"{name} {_short(value)} is not an integer")
    if not lo <= v <= hi:
        raise FieldError(f"{name} {_short(value)} outside {lo}-{hi}")
    return v


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OPEN = np.zeros(256, np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def json_depth(line: str) -> int:
    """The deepest bracket nesting of one JSON text (brackets inside strings ignored), or
    a lower bound above ``JSON_MAX_DEPTH`` when it is deeper. Cheap: a count for ordinary
    lines, a vectorised scan only for lines with many brackets."""
    opens = line.count("[") + line.count("{")
    if opens <= JSON_MAX_DEPTH:
        return opens
    bare = _JSON_STRING.sub("", line).encode("utf-8", "replace")
    steps = _OPEN[np.frombuffer(bare, np.uint8)].astype(np.int64)
    return int(np.cumsum(steps).max(initial=0))


# --- addresses ---------------------------------------------------------------------------
def parse_addresses(
    texts: Sequence[str | None] | pa.Array | pa.ChunkedArray,
) -> tuple[npt.NDArray[np.int8], U64, U64, npt.NDArray[np.bool_]]:
    """Text addresses → (ip_version, hi, lo, valid). Invalid or null entries: valid False.

    ``hi``/``lo`` are the big-endian halves of the 16-byte IPv4-mapped form. Each distinct
    text is parsed once (address sets of a flow file are small).
    """
    arr = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(texts, pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    enc = pc.dictionary_encode(arr)
    uniq = enc.dictionary.to_pylist()
    k = len(uniq)
    u_ipv = np.zeros(k + 1, np.int8)
    u_hi = np.zeros(k + 1, np.uint64)
    u_lo = np.zeros(k + 1, np.uint64)
    for i, t in enumerate(uniq):
        try:
            a = ipaddress.ip_address(str(t).strip().split("%", 1)[0])
        except ValueError:
            continue
        if a.version == 4:
            u_ipv[i], u_hi[i], u_lo[i] = 4, 0, (0xFFFF << 32) | int(a)
        else:
            v = int(a)
            u_ipv[i], u_hi[i], u_lo[i] = 6, v >> 64, v & 0xFFFFFFFFFFFFFFFF
    idx = enc.indices.fill_null(k).to_numpy(zero_copy_only=False).astype(np.int64)
    ipv = u_ipv[idx]
    return ipv, u_hi[idx], u_lo[idx], ipv != 0


def ipv4_to_halves(v4: npt.NDArray[np.generic]) -> tuple[U64, U64]:
    """uint32 IPv4 addresses → (hi, lo) of their IPv4-mapped IPv6 form."""
    lo = np.asarray(v4, dtype=np.uint64) | np.uint64(0xFFFF << 32)
    return np.zeros(len(lo), np.uint64), lo


def addr16(hi: npt.NDArray[np.generic], lo: npt.NDArray[np.generic]) -> pa.Array:
    """The 16-byte sortable address column from big-endian halves."""
    b = np.empty((len(hi), 2), dtype=">u8")
    b[:, 0] = hi
    b[:, 1] = lo
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), len(hi), [None, pa.py_buffer(b.tobytes())]
    )


def ip_text(ipv: npt.NDArray[np.generic], hi: npt.NDArray[np.generic], lo: U64) -> pa.Array:
    """Canonical text (dotted quad / RFC 5952) of addresses given as halves."""
    return _arrow.ip_text_unique(ipv, hi, lo)


# --- state -------------------------------------------------------------------------------
def state_from_flags(
    protocol: npt.NDArray[np.generic],
    flags_src: npt.NDArray[np.generic],
    flags_dst: npt.NDArray[np.generic],
    dst_packets: npt.NDArray[np.generic],
) -> pa.Array:
    """Zeek conn_state codes from per-direction OR-ed TCP flags (table in the docstring)."""
    proto = np.asarray(protocol).astype(np.int64)
    fs = np.asarray(flags_src).astype(np.int64)
    fd = np.asarray(flags_dst).astype(np.int64)
    answered = (np.asarray(dst_packets).astype(np.uint64) > 0) | (fd != 0)
    tcp = proto == 6
    src_syn, dst_syn = (fs & SYN) != 0, (fd & SYN) != 0
    est = tcp & src_syn & dst_syn
    conds = [
        ~tcp & ~answered,
        ~tcp,
        ~src_syn,
        ~answered,
        ((fd & RST) != 0) & ~dst_syn,
        est & ((fs & FIN) != 0) & ((fd & FIN) != 0),
        est & ((fs & RST) != 0),
        est & ((fd & RST) != 0),
        est,
    ]
    names = ["S0", "SF", "OTH", "S0", "REJ", "SF", "RSTO", "RSTR", "S1", "OTH"]
    idx = np.select(conds, np.arange(len(conds)), default=len(conds))
    return _arrow.pick(idx, names)


# --- the table ---------------------------------------------------------------------------
def _np(v: Any, n: int, dtype: Any, default: Any = 0) -> npt.NDArray[Any]:
    if v is None:
        return np.full(n, default, dtype=dtype)
    if isinstance(v, pa.ChunkedArray):
        v = v.combine_chunks()
    if isinstance(v, pa.Array):
        v = v.fill_null(default).to_numpy(zero_copy_only=False)
    a = np.asarray(v)
    if a.ndim == 0:
        return np.full(n, a.item(), dtype=dtype)
    if a.dtype == object:
        a = np.array([default if x is None else x for x in a])
    return a.astype(dtype)


def _strings(v: Any, n: int, default: str | None) -> pa.Array:
    if v is None and default is None:
        return pa.nulls(n, pa.string())
    if v is None or isinstance(v, str):
        return _arrow.constant(v if v is not None else str(default), n)
    if isinstance(v, pa.ChunkedArray):
        return v.combine_chunks().cast(pa.string())
    if isinstance(v, pa.Array):
        return v.cast(pa.string())
    return pa.array(list(v), pa.string())


def _nullable_int(v: Any, n: int, typ: pa.DataType) -> pa.Array:
    """Integers where a negative value (or None) means null."""
    if v is None:
        return pa.nulls(n, typ)
    if isinstance(v, pa.ChunkedArray):
        v = v.combine_chunks()
    if isinstance(v, pa.Array):
        return v.cast(typ)
    a = np.asarray(v)
    if a.ndim == 0:
        a = np.full(n, a.item())
    if a.dtype == object:
        mask = np.array([x is None for x in a], dtype=bool)
        a = np.array([-1 if x is None else x for x in a], dtype=np.int64)
    else:
        a = a.astype(np.int64)
        mask = a < 0
    null = mask | (a < 0)
    if pa.types.is_integer(typ) and not null.all():
        info = np.iinfo(_arrow.np_dtype(typ))
        kept = a[~null]
        if kept.min() < info.min or kept.max() > info.max:
            raise pa.ArrowInvalid(f"value out of range for {typ}")  # as pa.array would
    return _arrow.ints(typ, np.where(null, 0, a), null=null)


def halves(col: pa.Array | pa.ChunkedArray) -> tuple[U64, U64]:
    """The big-endian (hi, lo) halves of a binary(16) address column."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    n = len(arr)
    raw = np.frombuffer(arr.buffers()[1], dtype=">u8", count=2 * (arr.offset + n))
    raw = raw[2 * arr.offset :].reshape(n, 2).astype(np.uint64)
    return raw[:, 0], raw[:, 1]


def prefetched(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """``items``, produced by a background thread up to ``depth`` items ahead, so that a
    reader's decoding (Python, holding the GIL) overlaps the caller's pairing and flow
    ids (numpy/Arrow, mostly without it) on the second core. Memory stays bounded (at
    most ``depth`` + 2 items alive); an exception in the producer is raised here; closing
    the returned generator stops the producer."""
    import queue
    import sys
    import threading

    q: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
    # The producer runs Python bytecode, the consumer numpy/Arrow calls that drop the GIL
    # and want it back after each one: with CPython's 5 ms switch interval the consumer
    # waits up to 5 ms per call (measured: 1M NetFlow records 3.6–5.0 s → 2.3–4.2 s wall
    # with 0.5 ms). Lowered while this runs, restored after.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL_S))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((0, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((1, None))
        except BaseException as e:  # handed to the consumer, raised there
            q.put((2, e))

    worker = threading.Thread(target=produce, name="flowaudit-records", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = q.get()
            if kind == 1:
                return
            if kind == 2:
                raise value
            yield value
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting to put
            try:
                q.get_nowait()
            except queue.Empty:
                worker.join(0.05)
        close = getattr(items, "close", None)
        if close is not None:
            close()
        sys.setswitchinterval(interval)


def _constant_string(col: pa.Array | pa.ChunkedArray) -> str | None:
    """The one value of a string column holding a single value and no null, else None
    (checked on the buffers, chunk by chunk: no copy, no per-row Python work)."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    value: bytes | None = None
    for arr in chunks:
        n = len(arr)
        if n == 0:
            continue
        if arr.null_count or arr.type != pa.string():
            return None
        offs = np.frombuffer(arr.buffers()[1], np.int32, count=arr.offset + n + 1)[arr.offset :]
        width = int(offs[1] - offs[0])
        if int(offs[-1] - offs[0]) != width * n or (np.diff(offs) != width).any():
            return None
        if width == 0:
            one = b""
        else:
            data = np.frombuffer(arr.buffers()[2], np.uint8)[offs[0] : offs[-1]].reshape(n, width)
            if (data[-1] != data[0]).any() or (data != data[0]).any():
                return None
            one = data[0].tobytes()
        if value is not None and one != value:
            return None
        value = one
    return value.decode() if value is not None else None


def take_rows(table: pa.Table, rows: npt.NDArray[np.integer]) -> pa.Table:
    """``table.take(rows)``, with string columns that hold one value (source kind, capture
    id, direction, the empty ``flow_id``/``src_ip``/``dst_ip`` before ``add_flow_ids``)
    and columns that are all null rebuilt instead of gathered: the same table, for a
    fraction of the work."""
    idx = _arrow.ints(pa.int64(), rows)
    cols = []
    if any(c.num_chunks > 1 for c in table.columns):
        table = table.combine_chunks()  # a take from one chunk is several times faster
    for col in table.columns:
        if col.null_count == len(col):  # the NetFlow-less columns (tunnel ...): no gather
            cols.append(pa.nulls(len(rows), col.type))
            continue
        value = _constant_string(col) if pa.types.is_string(col.type) else None
        cols.append(_arrow.constant(value, len(rows)) if value is not None else col.take(idx))
    return pa.Table.from_arrays(cols, schema=table.schema)


def add_flow_ids(table: pa.Table, *, sort: bool = False) -> pa.Table:
    """``table`` with ``flow_id`` (Community ID v1) and ``src_ip``/``dst_ip`` text computed
    from its tuple columns (``flow_table(..., flow_ids=False)`` leaves them empty).
    ``sort``: also sorted by (first_seen, flow_id), as ``sort_by`` would (stable), with
    the address text made after the rows are in order (less to move)."""
    if table.num_rows == 0:
        return table

    def ints(name: str) -> npt.NDArray[np.int64]:
        return _arrow.int_values(table[name], 0)

    shi, slo = halves(table["src_addr"])
    dhi, dlo = halves(table["dst_addr"])
    fid = community_ids(
        ints("ip_version"), shi, slo, dhi, dlo, ints("protocol"), ints("src_port"),
        ints("dst_port"),
    )  # fmt: skip
    if sort:
        keys = pa.table({"first_seen": table["first_seen"], "flow_id": fid})
        order = pc.sort_indices(
            keys, sort_keys=[("first_seen", "ascending"), ("flow_id", "ascending")]
        )
        rows = _arrow.int_values(order)  # (to_numpy would import pandas)
        table = take_rows(table, rows)
        fid = fid.take(_arrow.ints(pa.int64(), rows))
        shi, slo = halves(table["src_addr"])
        dhi, dlo = halves(table["dst_addr"])
    ipv = ints("ip_version")
    for name, value in (("flow_id", fid), ("src_ip", ip_text(ipv, shi, slo)),
                        ("dst_ip", ip_text(ipv, dhi, dlo))):  # fmt: skip
        i = table.schema.get_field_index(name)
        table = table.set_column(i, table.schema.field(i), value)
    return table


def flow_table(
    cols: Mapping[str, Any],
    *,
    source_kind: str,
    flow_ids: bool = True,
    stats: RecordStats | None = None,
) -> pa.Table:
    """Columns → a FLOW_SCHEMA table (validated with ``validate_flows``).

    Addresses: either ``src_ip``/``dst_ip`` text (parsed; rows with unparsable addresses
    raise ValueError — filter them first with ``parse_addresses``) or ``ip_version`` +
    ``src_hi``/``src_lo``/``dst_hi``/``dst_lo`` (IPv4-mapped halves, see
    ``ipv4_to_halves``). ``first_seen``/``last_seen``: Arrow timestamps or µs since the
    epoch. Ports, ``vlan_id`` and ``observation_domain``: negative or None = null (ports
    are nulled anyway for protocols without ports; ICMP ports are type/code and the code
    of a request/reply type is replaced by its counterpart type, as the flow builder and
    Community ID do). Missing counters and flags are 0, ``sampling`` 1, ``state`` derived
    by ``state_from_flags``, ``direction`` is required (a string or per-row values).
    ``flow_ids=False`` leaves ``flow_id``, ``src_ip`` and ``dst_ip`` empty, for readers
    that pair records first and then call ``add_flow_ids`` on fewer rows (SHA-1 and
    address text are the costliest columns). With ``stats``, rows whose times fall outside
    ``_util.time.TIME_MIN_US``..``TIME_MAX_US`` (a corrupt export time, an uptime that
    wrapped) are dropped, and counted as ``records_time_out_of_range`` in ``stats``:
    nothing unstorable reaches the store.
    """
    if "src_hi" in cols:
        n = len(cols["src_hi"])
        ipv = _np(cols["ip_version"], n, np.int8)
        shi, slo = _np(cols["src_hi"], n, np.uint64), _np(cols["src_lo"], n, np.uint64)
        dhi, dlo = _np(cols["dst_hi"], n, np.uint64), _np(cols["dst_lo"], n, np.uint64)
    else:
        ipv, shi, slo, ok_s = parse_addresses(cols["src_ip"])
        ipv_d, dhi, dlo, ok_d = parse_addresses(cols["dst_ip"])
        n = len(ipv)
        bad = ~(ok_s & ok_d) | (ipv != ipv_d)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"row {i}: invalid or mixed-family addresses")
    proto = _np(cols["protocol"], n, np.uint8)
    has_ports = np.isin(proto, PORT_PROTOCOLS)
    sp = _np(cols.get("src_port"), n, np.int64, -1)
    dp = _np(cols.get("dst_port"), n, np.int64, -1)
    icmp4, icmp6 = proto == 1, proto == 58
    if (icmp4 | icmp6).any():
        t = np.clip(sp, 0, 255)
        cp = np.where(icmp4, ICMP4_PAIR_TABLE[t], ICMP6_PAIR_TABLE[t])
        dp = np.where((icmp4 | icmp6) & (cp >= 0) & (sp >= 0), cp, dp)
    port_null = ~has_ports | (sp < 0) | (dp < 0)
    sp_u, dp_u = np.where(port_null, 0, sp), np.where(port_null, 0, dp)
    pk_s = _np(cols.get("src_packets"), n, np.uint64)
    pk_d = _np(cols.get("dst_packets"), n, np.uint64)
    fl_s = _np(cols.get("tcp_flags_src"), n, np.uint8)
    fl_d = _np(cols.get("tcp_flags_dst"), n, np.uint8)
    state = cols.get("state")
    first_us, first_ok = _us(cols["first_seen"], n)
    last_us, last_ok = _us(cols["last_seen"], n)
    storable = first_ok & last_ok
    out: dict[str, Any] = {
        "flow_id": (
            community_ids(ipv, shi, slo, dhi, dlo, proto, sp_u, dp_u)
            if flow_ids
            else _arrow.constant("", n)
        ),
        "source_kind": _strings(source_kind, n, None),
        "capture_id": _strings(cols.get("capture_id", ""), n, ""),
        "vlan_id": _nullable_int(cols.get("vlan_id"), n, pa.int16()),
        "ip_version": _arrow.ints(pa.int8(), ipv),
        "src_ip": ip_text(ipv, shi, slo) if flow_ids else _strings("", n, ""),
        "dst_ip": ip_text(ipv, dhi, dlo) if flow_ids else _strings("", n, ""),
        "src_addr": addr16(shi, slo),
        "dst_addr": addr16(dhi, dlo),
        "protocol": _arrow.ints(pa.uint8(), proto),
        "src_port": _arrow.ints(pa.uint16(), sp_u, null=port_null),
        "dst_port": _arrow.ints(pa.uint16(), dp_u, null=port_null),
        "first_seen": _arrow.ints(TS, np.where(storable, first_us, 0)),
        "last_seen": _arrow.ints(TS, np.where(storable, last_us, 0)),
        "src_packets": _arrow.ints(pa.uint64(), pk_s),
        "src_bytes": _arrow.ints(pa.uint64(), _np(cols.get("src_bytes"), n, np.uint64)),
        "dst_packets": _arrow.ints(pa.uint64(), pk_d),
        "dst_bytes": _arrow.ints(pa.uint64(), _np(cols.get("dst_bytes"), n, np.uint64)),
        "tcp_flags_src": _arrow.ints(pa.uint8(), fl_s),
        "tcp_flags_dst": _arrow.ints(pa.uint8(), fl_d),
        "state": (
            state_from_flags(proto, fl_s, fl_d, pk_d) if state is None else _strings(state, n, "")
        ),
        "direction": _strings(cols["direction"], n, None),
        "sampling": _arrow.ints(pa.uint32(), _np(cols.get("sampling"), n, np.uint32, 1)),
    }
    for name in ("src_ip_bytes", "dst_ip_bytes"):
        if cols.get(name) is not None:
            out[name] = _nullable_int(cols[name], n, pa.uint64())
    for name in ("exporter", "verdict", "drop_reason"):
        if cols.get(name) is not None:
            out[name] = _strings(cols[name], n, None)
    if cols.get("observation_domain") is not None:
        out["observation_domain"] = _nullable_int(cols["observation_domain"], n, pa.uint32())
    arrays = [out[f.name] if f.name in out else pa.nulls(n, f.type) for f in FLOW_SCHEMA]
    table = validate_flows(pa.Table.from_arrays(arrays, schema=FLOW_SCHEMA))
    bad = n - int(storable.sum())
    if not bad:
        return table
    if stats is not None:
        stats.skipped += bad
        stats.count("records_time_out_of_range", bad)
    return table.filter(_arrow.bools(storable))


def _us(v: Any, n: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Times (Arrow timestamps, or numbers of µs since the epoch of any integer type) as
    int64 µs, and whether each is storable (``TIME_MIN_US`` <= t < ``TIME_MAX_US``)."""
    if isinstance(v, pa.ChunkedArray):
        v = v.combine_chunks()
    if isinstance(v, pa.Array) and pa.types.is_timestamp(v.type):
        us = _arrow.int_values(v.cast(TS), TIME_MIN_US - 1)
        return us, (us >= TIME_MIN_US) & (us < TIME_MAX_US)
    a = np.asarray(v) if not isinstance(v, pa.Array) else _np(v, n, np.int64)
    if a.ndim == 0 or a.dtype == object:
        a = _np(v, n, np.int64)
    if a.dtype.kind == "u":  # an unsigned value beyond int64 wraps negative: keep it out
        ok = a < np.uint64(TIME_MAX_US)
        return np.where(ok, a, 0).astype(np.int64), ok & (a >= TIME_MIN_US)
    us = a.astype(np.int64)
    return us, (us >= TIME_MIN_US) & (us < TIME_MAX_US)


__all__ = [
    "MAX_WARNINGS",
    "FieldError",
    "RecordStats",
    "add_flow_ids",
    "addr16",
    "flow_table",
    "halves",
    "ip_text",
    "int_field",
    "ipv4_to_halves",
    "json_depth",
    "parse_addresses",
    "prefetched",
    "state_from_flags",
    "take_rows",
]
