"""NetFlow v5 / v9 / IPFIX datagram decoding state: templates, sampling, waiting data.

``Decoder.datagram(exporter, payload, offset)`` parses one export datagram and files its
records into per-template batches (raw bytes plus per-record context: export time,
sysUptime, exporter, observation domain). ``Decoder.batches()`` hands the batches over
for columnar decoding (``netflow._columns``) and empties them, so memory stays bounded.

State is kept per (exporter, observation domain) — v9 source id, IPFIX observation
domain, v5 engine type/id — as RFC 7011 and RFC 3954 require: templates, options
templates, the sampling interval announced by options records (by selector/sampler id
and per domain) and systemInitTimeMilliseconds (element 160). Data sets whose template
has not arrived yet wait (up to ``MAX_WAITING_BYTES``) and are decoded when it comes;
``finish()`` reports the ones that never got a template.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from flowaudit.records.common import RecordStats
from flowaudit.records.netflow.templates import (
    Template,
    decode,
    parse_templates,
    transcode,
)

MAX_WAITING_BYTES = 16 << 20
V5_HEADER = struct.Struct("!HHIIIIBBH")
V9_HEADER = struct.Struct("!HHIIII")
IPFIX_HEADER = struct.Struct("!HHIII")
V5_RECORD_LEN = 48

Key = tuple[int, int, int]  # (exporter index, observation domain, template id)


@dataclass
class Batch:
    """Raw records of one template (or v5) plus their context, waiting to be decoded."""

    version: int
    template: Template | None  # None for NetFlow v5
    chunks: list[bytes] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    # per data set: (export secs, export nsecs, sysUptime ms, exporter, domain, v5 sampling)
    ctx: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)
    records: int = 0

    def add(self, data: bytes, count: int, ctx: tuple[int, int, int, int, int, int]) -> None:
        self.chunks.append(data)
        self.counts.append(count)
        self.ctx.append(ctx)
        self.records += count

    def context(self) -> npt.NDArray[np.int64]:
        """(records, 6) int64 context rows, one per record."""
        c = np.asarray(self.ctx, dtype=np.int64).reshape(-1, 6)
        return np.repeat(c, np.asarray(self.counts, dtype=np.int64), axis=0)


@dataclass
class Decoder:
    path: str
    stats: RecordStats
    raw: bool = False  # raw datagram file: unknown versions are errors, not other traffic
    exporters: list[str] = field(default_factory=list)
    templates: dict[Key, Template] = field(default_factory=dict)
    pending: dict[Key, Batch] = field(default_factory=dict)
    ready: list[Batch] = field(default_factory=list)
    waiting: dict[Key, list[tuple[bytes, tuple[int, int, int, int, int, int], int]]] = field(
        default_factory=dict
    )
    waiting_bytes: int = 0
    sampling: dict[tuple[int, int], int] = field(default_factory=dict)
    sampler: dict[tuple[int, int, int], int] = field(default_factory=dict)
    init_ms: dict[tuple[int, int], int] = field(default_factory=dict)
    pending_records: int = 0
    _exp_index: dict[str, int] = field(default_factory=dict)

    def _warn(self, offset: int, msg: str) -> None:
        self.stats.warn(f"{self.path}: byte {offset}: {msg}")

    def exporter_index(self, name: str) -> int:
        i = self._exp_index.get(name)
        if i is None:
            i = self._exp_index[name] = len(self.exporters)
            self.exporters.append(name)
        return i

    # --- datagrams ---------------------------------------------------------------------
    def datagram(self, exporter: str, data: bytes, offset: int) -> bool:
        """Decode one export datagram; False when it is not NetFlow/IPFIX (ignored)."""
        if len(data) < 4:
            return False
        version = int.from_bytes(data[:2], "big")
        exp = self.exporter_index(exporter)
        if version == 5:
            return self._v5(exp, data, offset)
        if version in (9, 10):
            return self._v9_ipfix(exp, data, offset, version)
        return False

    def _v5(self, exp: int, data: bytes, offset: int) -> bool:
        if len(data) < V5_HEADER.size:
            return False
        _, count, uptime, secs, nsecs, _, etype, eid, samp = V5_HEADER.unpack_from(data)
        have = (len(data) - V5_HEADER.size) // V5_RECORD_LEN
        if not 1 <= count <= 30:
            if not self.raw:
                return False
            self._warn(offset, f"NetFlow v5 header announces {count} records (1..30 allowed)")
            count = min(count, have, 30)
        if count > have:
            self._warn(offset, f"NetFlow v5 datagram holds {have} of {count} records")
            count = have
        self.stats.count("datagrams_v5")
        if count <= 0:
            return True
        body = data[V5_HEADER.size : V5_HEADER.size + count * V5_RECORD_LEN]
        interval = samp & 0x3FFF
        ctx = (secs, nsecs, uptime, exp, (etype << 8) | eid, interval if interval > 1 else 1)
        key = (exp, -1, 5)
        b = self.pending.get(key)
        if b is None:
            b = self.pending[key] = Batch(5, None)
        b.add(body, count, ctx)
        self.pending_records += count
        return True

    def _v9_ipfix(self, exp: int, data: bytes, offset: int, version: int) -> bool:
        ipfix = version == 10
        if ipfix:
            if len(data) < IPFIX_HEADER.size:
                return False
            _, length, secs, _, domain = IPFIX_HEADER.unpack_from(data)
            if length < IPFIX_HEADER.size or (length > len(data) and not self.raw):
                return False
            if length > len(data):
                self._warn(offset, f"IPFIX message of {length} bytes cut at {len(data)}")
            end, uptime, p = min(length, len(data)), 0, IPFIX_HEADER.size
        else:
            if len(data) < V9_HEADER.size:
                return False
            _, _, uptime, secs, _, domain = V9_HEADER.unpack_from(data)
            end, p = len(data), V9_HEADER.size
        self.stats.count("datagrams_ipfix" if ipfix else "datagrams_v9")
        ctx = (secs, 0, uptime, exp, domain, 1)
        while p + 4 <= end:
            sid, slen = struct.unpack_from("!HH", data, p)
            if slen < 4 or p + slen > end:
                if not any(data[p:end]):
                    break  # zero padding after the last set
                self._warn(offset + p, f"set length {slen} invalid (set id {sid})")
                break
            body = data[p + 4 : p + slen]
            if sid >= 256:
                self._data_set((exp, domain, sid), body, ctx, offset + p)
            elif sid in ((2, 3) if ipfix else (0, 1)):
                self._template_set(exp, domain, body, ipfix, sid in (1, 3), offset + p)
            else:
                self._warn(offset + p, f"reserved set id {sid} skipped")
            p += slen
        return True

    def _template_set(
        self, exp: int, domain: int, body: bytes, ipfix: bool, options: bool, offset: int
    ) -> None:
        tpls, withdrawn, problem = parse_templates(body, ipfix, options)
        if problem:
            self._warn(offset, problem)
        for tid in withdrawn:
            self._flush_key((exp, domain, tid))
            self.templates.pop((exp, domain, tid), None)
        for t in tpls:
            key = (exp, domain, t.tid)
            old = self.templates.get(key)
            self.stats.count("options_templates" if options else "templates")
            if old is not None and old.same_as(t):
                continue
            self._flush_key(key)
            self.templates[key] = t
            for body2, ctx, off2 in self.waiting.pop(key, []):
                self.waiting_bytes -= len(body2)
                self.stats.count("data_sets_decoded_late")
                self._data_set(key, body2, ctx, off2)

    def _data_set(
        self, key: Key, body: bytes, ctx: tuple[int, int, int, int, int, int], offset: int
    ) -> None:
        t = self.templates.get(key)
        if t is None:
            if self.waiting_bytes + len(body) <= MAX_WAITING_BYTES:
                self.waiting.setdefault(key, []).append((body, ctx, offset))
                self.waiting_bytes += len(body)
            else:
                self.stats.count("data_sets_dropped_waiting_full")
            return
        if t.varlen:
            buf, count, clean = transcode(t, body)
            if not clean:
                self._warn(offset, f"template {t.tid}: variable-length record cut short")
        else:
            if t.reclen == 0:
                self._warn(offset, f"template {t.tid} has record length 0: data set skipped")
                return
            count = len(body) // t.reclen
            buf = body[: count * t.reclen]
        if count == 0:
            return
        if t.options:
            self._options_records(key, t, buf, count)
            return
        b = self.pending.get(key)
        if b is None:
            b = self.pending[key] = Batch(10 if t.ipfix else 9, t)
        b.add(buf, count, ctx)
        self.pending_records += count

    def _options_records(self, key: Key, t: Template, buf: bytes, count: int) -> None:
        cols = decode(t, buf, count)
        exp, domain = key[0], key[1]
        self.stats.count("options_records", count)
        for i in range(count):
            row = {k: int(v[i]) for k, v in cols.items() if v.ndim == 1}
            interval = row.get((0, 34)) or row.get((0, 50)) or 0
            if not interval and row.get((0, 310)) and row.get((0, 309)):
                interval = row[(0, 310)] // max(row[(0, 309)], 1)
            if not interval and row.get((0, 305)):
                interval = (row[(0, 305)] + row.get((0, 306), 0)) // row[(0, 305)]
            if interval:
                self.sampling[(exp, domain)] = interval
                sid = row.get((0, 302), row.get((0, 48)))
                if sid is not None:
                    self.sampler[(exp, domain, sid)] = interval
            if row.get((0, 160)):
                self.init_ms[(exp, domain)] = row[(0, 160)]

    # --- batches -----------------------------------------------------------------------
    def _flush_key(self, key: Key) -> None:
        b = self.pending.pop(key, None)
        if b is not None and b.records:
            self.ready.append(b)

    def batches(self) -> list[Batch]:
        """Every batch with records (pending and ready), handed over and forgotten."""
        out = self.ready + [b for b in self.pending.values() if b.records]
        self.ready, self.pending, self.pending_records = [], {}, 0
        return out

    def finish(self) -> None:
        """Report data sets whose template never arrived."""
        for (exp, domain, tid), sets in sorted(self.waiting.items()):
            nbytes = sum(len(s[0]) for s in sets)
            self.stats.count("data_sets_without_template", len(sets))
            self.stats.count("bytes_without_template", nbytes)
            self._warn(
                sets[0][2],
                f"{len(sets)} data set(s), {nbytes} bytes, for template {tid} of exporter "
                f"{self.exporters[exp]} domain {domain}: the template never arrived",
            )
        self.waiting.clear()
        self.waiting_bytes = 0


__all__ = ["Batch", "Decoder", "V5_RECORD_LEN"]
