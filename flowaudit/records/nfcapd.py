"""nfcapd files (nfdump's binary flow store) → flow tables, directly or through ``nfdump``.

Responsible for reading nfcapd files (one file, or a directory of ``nfcapd.*`` files
of which only new ones are read) as FLOW_SCHEMA tables with bounded memory.

How (decisions for ARCHITECTURE.md):

* **Direct reader first**: layout-2 files (nfdump 1.7) that are uncompressed (nfcapd's
  default) or BZ2-compressed are decoded from their bytes by ``nfcapd_format`` (numpy
  over the V3 records; issue 13: nfdump's text output bounded the old path at ~90k
  records/s). The flows are the nfdump path's (``tests/unit/records/test_nfcapd_direct.py``
  reads every test file both ways: equal tables, row for row). Files above one chunk
  (200k records direct, ~90k through nfdump's text) are cut at other records, so the
  same flows come in another order across tables (1M records compared: equal as sets).
  Layout-1 files (nfdump 1.6), LZO/LZ4/ZSTD blocks and encryption go through nfdump
  (Debian's nfdump writes none of them unless asked, ``-z``/``-y``/``-j``). Exporters
  and samplers come from ``nfdump -E`` on both paths (25 ms), so nfdump stays required.
* **nfdump path**: ``nfdump -r FILE -q -N -6 -o fmt:…`` (nfdump 1.7.1), with ``TZ=UTC`` so
  times print in UTC. Its stdout is parsed while nfdump runs, with Arrow's streaming CSV
  reader ('|' separated; fields trimmed and cast column-wise). Measured on 301,800
  records: nfdump prints this ``fmt`` in 1.8 s, JSON in 2.4 s and CSV in 3.5 s; Arrow
  parses the ``fmt`` text in 0.8 s, while JSON (5× the text, pretty-printed) took
  10 s. ``%ter`` prints wrong milliseconds in 1.7.1 and CSV has whole seconds only, so
  times are read from ``%ts``/``%te`` text.
* **Records are unidirectional** (nfcapd stores what the exporter sent): each becomes a
  row oriented as exported (``direction`` = ``exporter``; NSEL/biflow output counters
  go to ``dst_*``), then ``pairing.iter_paired`` joins the two records of one
  conversation within the file.
* **Exporter** and **observation domain** come from ``nfdump -E`` (SysID → exporter IP
  and source ID / observation domain), falling back to the record's router address.
* **Sampling**: nfcapd already multiplied packet and byte counts by the sampling
  interval when it collected them, so counts are estimates; ``sampling`` is the
  interval. It is read from the sampler list ``nfdump -E`` prints (1.7.1: "packet
  interval: 1, packet space: 99" under the exporter's line = 1 in 100), and for layout-1
  files (nfdump 1.6, whose sampler records 1.7.1 skips as "unknown record type 9")
  from those records themselves (compressed layout-1 files are first rewritten
  uncompressed into a temporary copy with ``nfdump -J 0``). Without a sampler, 1.
* **VLAN**: the record's source VLAN (``%svln``), 0 = none → null.
* **Times**: a record whose last-seen is before its first-seen (seen in real exports)
  gets last = first; counted in ``counters["negative_duration"]`` with one warning.
* **ICMP**: nfdump prints type.code in the destination port; type and code become the
  ports (``records.flow_table`` maps request/reply codes to counterpart types).
* **State** from TCP flags: ``records.state_from_flags`` (table in ``records.py``).
* **Errors**: no ``nfdump`` → CaptureError with hint "apt-get install nfdump"; a file
  that is not nfcapd → CaptureError naming the file and byte 0; nfdump failing with no
  flow read (corrupt file) → CaptureError with nfdump's message; failing after some
  flows → those flows plus a warning. An nfcapd file with no flows gives no table.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowaudit._util import arrow as _arrow
from flowaudit._util import tools
from flowaudit._util.files import digest_file
from flowaudit._util.time import TIME_MAX_US
from flowaudit.errors import CaptureError
from flowaudit.records.common import RecordStats, flow_table, parse_addresses

NFCAPD_MAGIC = 0xA50C
NFDUMP_HINT = "apt-get install nfdump"
FIELDS = ("ts", "te", "pr", "sa", "da", "sp", "dp", "flg", "ipkt", "ibyt", "opkt", "obyt",
          "exp", "svln", "ra")  # fmt: skip
FMT = "fmt:" + "|".join("%" + f for f in FIELDS)
_FLAG_BITS = ((0, 0x80), (1, 0x40), (2, 0x20), (3, 0x10), (4, 0x08), (5, 0x04), (6, 0x02),
              (7, 0x01))  # "CEUAPRSF": nfdump's flag string, one character per bit  # fmt: skip
_V1_COMPRESSED = 0x01 | 0x08 | 0x10  # LZO, BZ2, LZ4 in a layout-1 header
_SAMPLER_RE = re.compile(r"Sampler for Exporter SysID:\s*(\d+),.*?interval:\s*(\d+)")
# nfdump 1.7.1 -E, under its exporter's line: "Sampler: Generic Sampler: algorithm: 1,
# packet interval: 1, packet space: 99"
_SAMPLER_V17_RE = re.compile(r"^\s+Sampler:.*packet interval:\s*(\d+),\s*packet space:\s*(\d+)")
_EXPORTER_RE = re.compile(r"SysID:\s*(\d+),\s*IP:\s*(\S+),\s*version:\s*\d+,\s*ID:\s*(\d+)")
BLOCK_SIZE = 1 << 24  # bytes of nfdump text per Arrow batch (~90,000 records)


@dataclass
class ExporterInfo:
    """What ``nfdump -E`` (and legacy sampler records) say about a file's exporters."""

    address: dict[int, str] = field(default_factory=dict)  # SysID → exporter IP
    domain: dict[int, int] = field(default_factory=dict)  # SysID → source id / domain
    interval: dict[int, int] = field(default_factory=dict)  # SysID → sampling interval


def nfdump_path() -> str:
    """The ``nfdump`` executable, or CaptureError with the package hint."""
    exe = shutil.which("nfdump")
    if exe is None:
        raise CaptureError("nfdump is not installed (needed to read nfcapd files)", NFDUMP_HINT)
    return exe


def check_nfcapd(path: Path) -> int:
    """The file's layout version (1 or 2); CaptureError unless it is an nfcapd file."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise CaptureError(f"{path}: cannot read at byte 0: {e.strerror or e}") from e
    if len(head) < 4:
        raise CaptureError(f"{path}: not an nfcapd file: only {len(head)} bytes at byte 0")
    magic, version = struct.unpack("<HH", head)
    if magic != NFCAPD_MAGIC or version not in (1, 2):
        raise CaptureError(
            f"{path}: not an nfcapd file (magic {magic:#06x} version {version} at byte 0)"
        )
    return int(version)


def nfcapd_files(
    path: str | Path, seen: set[str] | None = None, *, hash_files: bool = True
) -> list[tuple[Path, str]]:
    """(file, BLAKE3 digest) of the nfcapd files to read: ``path`` itself, or the ``nfcapd.*``
    files of a directory in name order (``nfcapd.current.*``, still being written, is
    left out). Files whose digest is in ``seen`` are skipped. ``hash_files=False`` lists
    them without reading them (the digest is then "")."""
    p = Path(path)
    if not p.exists():
        raise CaptureError(f"{p}: no such file or directory")
    if p.is_dir():
        files = sorted(
            f
            for f in p.iterdir()
            if f.is_file() and f.name.startswith("nfcapd.") and ".current." not in f.name
        )
    else:
        files = [p]
    if not hash_files:
        return [(f, "") for f in files]
    out = []
    for f in files:
        digest = digest_file(f)
        if seen is None or digest not in seen:
            out.append((f, digest))
    return out


def _env() -> dict[str, str]:
    return {**os.environ, "TZ": "UTC", "LC_ALL": "C"}


def exporter_info(path: Path, exe: str, stats: RecordStats) -> ExporterInfo:
    """Exporters and samplers of one nfcapd file (``nfdump -E`` plus layout-1 samplers).
    When nfdump cannot list them (it loops on a damaged appendix) the records are still
    read, with a warning: without observation domains and sampling intervals."""
    info = ExporterInfo()
    run = tools.run([exe, "-E", str(path)], "nfdump", env=_env())
    if run.stopped:
        stats.warn(
            f"{path}: listing the exporters, {' '.join(run.messages)}; each flow's exporter "
            "is its record's received-from address, without observation domain or sampling "
            "interval"
        )
        return info
    current: int | None = None  # the exporter whose sampler lines follow (nfdump 1.7)
    for line in run.stdout.decode("utf-8", "replace").splitlines():
        m = _SAMPLER_RE.search(line)
        if m:
            sysid, interval = int(m.group(1)), int(m.group(2))
            info.interval[sysid] = max(interval, info.interval.get(sysid, 0))
            continue
        m = _SAMPLER_V17_RE.search(line)
        if m and current is not None:
            # 1 of every (interval + space) packets: nfcapd scaled the counts by that
            taken, space = int(m.group(1)), int(m.group(2))
            interval = (taken + space) // taken if taken else 0
            info.interval[current] = max(interval, info.interval.get(current, 0))
            continue
        m = _EXPORTER_RE.search(line)
        if m:
            sysid = current = int(m.group(1))
            info.address[sysid] = m.group(2)
            info.domain[sysid] = int(m.group(3))
    if check_nfcapd(path) == 1:
        for sysid, interval in _legacy_samplers(path, exe).items():
            info.interval.setdefault(sysid, interval)
    return info


def _legacy_samplers(path: Path, exe: str) -> dict[int, int]:
    """SysID → interval from the type-9 sampler records of a layout-1 (nfdump 1.6) file."""
    with open(path, "rb") as f:
        head = f.read(12)
    flags = struct.unpack_from("<I", head, 4)[0]
    if not flags & _V1_COMPRESSED:
        with open(path, "rb") as f:
            return _walk_samplers(f, 140 + 144)  # layout-1 header + stat record
    with tempfile.TemporaryDirectory(prefix="flowaudit-nfcapd-") as tmp:
        copy = Path(tmp) / "nfcapd.copy"
        shutil.copyfile(path, copy)
        # rewrites the copy uncompressed (as layout 2), keeping every record
        tools.run([exe, "-r", str(copy), "-J", "0"], "nfdump")
        with open(copy, "rb") as f:
            if f.read(4)[2:4] != b"\x02\x00":
                return {}
            return _walk_samplers(f, 40)  # layout-2 header


def _walk_samplers(f: IO[bytes], offset: int) -> dict[int, int]:
    """Walk data blocks from ``offset``; collect (sysid → interval) of type-9 records."""
    out: dict[int, int] = {}
    f.seek(offset)
    while True:
        bh = f.read(12)
        if len(bh) < 12:
            return out
        nrec, size, _btype, _bflags = struct.unpack("<IIHH", bh)
        data = f.read(size)
        p = 0
        for _ in range(nrec):
            if p + 4 > len(data):
                break
            rtype, rsize = struct.unpack_from("<HH", data, p)
            if rsize < 4:
                break
            if rtype == 9 and rsize >= 16 and p + 16 <= len(data):
                _sid, interval, _mode, sysid = struct.unpack_from("<iIHH", data, p + 4)
                out[sysid] = max(interval, out.get(sysid, 0))
            p += rsize
        if len(data) < size:
            return out


def iter_nfcapd_tables(
    path: str | Path,
    *,
    stats: RecordStats,
    seen: set[str] | None = None,
    service_ports: Sequence[int | tuple[int, int]] = (),
    reader: str = "auto",
) -> Iterator[pa.Table]:
    """Flow tables (FLOW_SCHEMA, ``source_kind`` "nfcapd") of an nfcapd file or directory.

    ``reader``: "auto" reads layout-2 files that are uncompressed or BZ2-compressed
    directly (``nfcapd_format``) and every other file through nfdump; "nfdump" always
    through nfdump (the cross-check of the tests); "direct" never (CaptureError for a
    file only nfdump reads).

    A single file's tables have ``capture_id`` "" (the pipeline stamps the file's
    digest); for a directory each table carries the digest of the file it came from,
    so one call can ingest many files (``seen``: digests to skip). Callers that
    keep one manifest entry per file call ``nfcapd_files`` and this function per file.
    """
    from flowaudit.records.common import add_flow_ids, prefetched
    from flowaudit.records.pairing import iter_paired

    if reader not in ("auto", "direct", "nfdump"):
        raise ValueError(f"reader must be auto, direct or nfdump, not {reader!r}")
    p = Path(path)
    exe = nfdump_path()
    files = nfcapd_files(p, seen)
    if seen:
        stats.count("files_already_seen", len(nfcapd_files(p)) - len(files))
    for f, digest in files:
        check_nfcapd(f)
        stats.count("files")
        stamp = digest if p.is_dir() else ""
        direct = _iter_direct(f, exe, stats) if reader != "nfdump" else None
        if direct is None:
            if reader == "direct":
                raise CaptureError(f"{f}: not readable without nfdump")
            tables = iter_paired(_iter_records(f, exe, stats), service_ports=service_ports)
        else:
            stats.count("files_read_directly")
            tables = (
                add_flow_ids(t, sort=True)
                for t in iter_paired(prefetched(direct), sort=False, service_ports=service_ports)
            )
        for table in tables:
            if stamp:
                i = table.schema.get_field_index("capture_id")
                table = table.set_column(
                    i, table.schema.field(i), pa.repeat(pa.scalar(stamp), table.num_rows)
                )
            stats.flows += table.num_rows
            yield table


def _iter_records(path: Path, exe: str, stats: RecordStats) -> Iterator[pa.Table]:
    """Unidirectional record tables of one file, streamed from ``nfdump``."""
    import pyarrow.csv as pcsv

    info = exporter_info(path, exe, stats)
    read = 0
    cmd = [exe, "-r", str(path), "-q", "-N", "-6", "-o", FMT]
    proc, errors = tools.start(cmd, "nfdump", env=_env())
    assert proc.stdout is not None
    bad_rows = [0]

    def skip(_row: Any) -> str:
        bad_rows[0] += 1
        return "skip"

    try:
        try:
            reader = pcsv.open_csv(
                proc.stdout,
                read_options=pcsv.ReadOptions(column_names=list(FIELDS), block_size=BLOCK_SIZE),
                parse_options=pcsv.ParseOptions(
                    delimiter="|", quote_char=False, invalid_row_handler=skip
                ),
                convert_options=pcsv.ConvertOptions(
                    column_types={name: pa.string() for name in FIELDS}
                ),
            )
        except pa.ArrowInvalid:  # no output at all
            reader = None
        if reader is not None:
            for batch in reader:
                if batch.num_rows == 0:
                    continue
                try:
                    table = _to_flows(batch, info, stats, path)
                except (pa.ArrowInvalid, ValueError) as e:  # nfdump printed a surprise
                    raise CaptureError(
                        f"{path}: unexpected nfdump output after record {read}: {e}"
                    ) from e
                read += batch.num_rows
                if table.num_rows:
                    yield table
    finally:
        proc.stdout.close()
        rc = proc.wait()
    messages = [ln for ln in errors.lines() if not ln.startswith("Skip unknown record type")]
    # "No matching flows" (an empty file) is the only non-record line nfdump prints
    stats.count("nfdump_other_lines", max(bad_rows[0] - (1 if read == 0 else 0), 0))
    if rc != 0 or messages:
        msg = "; ".join(messages) or f"nfdump exited with status {rc}"
        if read == 0:
            raise CaptureError(f"{path}: nfdump could not read the file: {msg}")
        stats.warn(f"{path}: nfdump stopped after {read} records: {msg}")


def _iter_direct(path: Path, exe: str, stats: RecordStats) -> Iterator[pa.Table] | None:
    """Unidirectional record tables (no ``flow_id``/address text yet) read straight from
    the file, or None when the file needs nfdump (``nfcapd_format.Unsupported``)."""
    from flowaudit.records import nfcapd_format as fmt

    chunks = fmt.iter_raw_records(path, stats)
    try:
        first = next(chunks, None)  # Unsupported comes before the first chunk
    except fmt.Unsupported:
        return None
    info = exporter_info(path, exe, stats)

    def tables() -> Iterator[pa.Table]:
        for raw in itertools.chain([first] if first is not None else [], chunks):
            table = _raw_to_flows(raw, info, stats, path)
            if table.num_rows:
                yield table

    return tables()


def _raw_to_flows(raw: Any, info: ExporterInfo, stats: RecordStats, path: Path) -> pa.Table:
    """``_to_flows`` for records read directly: the same columns from the binary values."""
    from flowaudit.records.common import ip_text

    n = len(raw)
    stats.records += n
    good = raw.ipv > 0
    if not good.all():
        bad = int((~good).sum())
        stats.skipped += bad
        stats.warn(f"{path}: {bad} nfcapd record(s) without addresses skipped")
        raw = type(raw)(**{k: v[good] for k, v in vars(raw).items()})
        n = len(raw)
        if n == 0:
            return pa.table({})
    # ms → µs; a value whose µs would not fit is TIME_MAX_US, which flow_table drops
    # and counts (records_time_out_of_range) like any other unstorable time
    limit = np.uint64(TIME_MAX_US // 1000)
    first = np.where(raw.first_ms <= limit, raw.first_ms.astype(np.int64) * 1000, TIME_MAX_US)
    last = np.where(raw.last_ms <= limit, raw.last_ms.astype(np.int64) * 1000, TIME_MAX_US)
    last = _clamp_negative(first, last, path, stats)
    proto = raw.proto.astype(np.int64)
    icmp = (proto == 1) | (proto == 58)
    sp = raw.src_port.astype(np.int64)
    dp = raw.dst_port.astype(np.int64)
    if icmp.any():  # nfdump prints the destination port as "type.code"
        sp, dp = np.where(icmp, dp >> 8, sp), np.where(icmp, dp & 0xFF, dp)
    sysid = raw.sysid.astype(np.int64)
    domain = np.full(n, -1, np.int64)
    sampling = np.ones(n, np.int64)
    codes = np.zeros(n, np.intp)
    names: list[str] = []
    known = np.zeros(n, bool)
    for s in np.unique(sysid).tolist():
        m = sysid == s
        if s in info.address:
            codes[m] = len(names)
            names.append(info.address[s])
            known |= m
        if s in info.domain:
            domain[m] = info.domain[s]
        if info.interval.get(s, 0) > 1:
            sampling[m] = info.interval[s]
    if known.all():
        exporter = _arrow.pick(codes, names)
    else:  # the record's received-from address, as nfdump prints it ("0.0.0.0": none)
        ra_v = np.where(raw.ra_ipv > 0, raw.ra_ipv, 4).astype(np.int8)
        ra = np.asarray(ip_text(ra_v, raw.ra_hi, raw.ra_lo).to_numpy(zero_copy_only=False))
        ra = ra.astype(object)
        for i, name in enumerate(names):
            ra[(codes == i) & known] = name
        exporter = pa.array(ra, pa.string())
    if (sampling > 1).any():
        stats.count("sampled_records", int((sampling > 1).sum()))
    vlan = raw.src_vlan.astype(np.int64)
    cols = {
        "ip_version": raw.ipv,
        "src_hi": raw.src_hi,
        "src_lo": raw.src_lo,
        "dst_hi": raw.dst_hi,
        "dst_lo": raw.dst_lo,
        "protocol": proto,
        "src_port": sp,
        "dst_port": dp,
        "first_seen": first,
        "last_seen": last,
        "src_packets": raw.packets,
        "src_bytes": raw.octets,
        "dst_packets": raw.out_packets,
        "dst_bytes": raw.out_octets,
        "tcp_flags_src": np.where(proto == 6, raw.flags.astype(np.int64), 0),
        "vlan_id": np.where(vlan > 0, vlan, -1),
        "direction": "exporter",
        "sampling": sampling,
        "exporter": exporter,
        "observation_domain": domain,
    }
    return flow_table(cols, source_kind="nfcapd", flow_ids=False, stats=stats)


def _clamp_negative(first: Any, last: Any, path: Path, stats: RecordStats) -> Any:
    """``last``, with records whose last-seen is before their first-seen (seen in real
    exports) set to first; counted, with one warning."""
    neg = last < first
    if not neg.any():
        return last
    if "negative_duration" not in stats.counters:
        stats.warn(f"{path}: records with last-seen before first-seen: last set to first")
    stats.count("negative_duration", int(neg.sum()))
    return np.where(neg, first, last)


def _ints(col: pa.Array, dtype: Any, default: int = 0) -> Any:
    """nfdump's space-padded integer text (``-N``: plain numbers) → a numpy array."""
    s = pc.utf8_trim_whitespace(col).cast(pa.int64())
    return np.asarray(s.fill_null(default).to_numpy()).astype(dtype)


def _to_flows(
    batch: pa.RecordBatch, info: ExporterInfo, stats: RecordStats, path: Path
) -> pa.Table:
    n = batch.num_rows
    stats.records += n
    col = {name: batch.column(name) for name in FIELDS}
    ipv_s, *_s, ok_s = parse_addresses(pc.utf8_trim_whitespace(col["sa"]))
    ipv_d, *_d, ok_d = parse_addresses(pc.utf8_trim_whitespace(col["da"]))
    ts = pc.utf8_trim_whitespace(col["ts"])
    te = pc.utf8_trim_whitespace(col["te"])
    first_ms = pc.cast(ts, pa.timestamp("ms"), safe=False)
    last_ms = pc.cast(te, pa.timestamp("ms"), safe=False)
    good = ok_s & ok_d & (ipv_s == ipv_d)
    if not good.all():
        bad = int((~good).sum())
        stats.skipped += bad
        stats.warn(f"{path}: {bad} nfdump record(s) with unreadable addresses skipped")
        keep = pa.array(good)
        col = {k: pc.filter(v, keep) for k, v in col.items()}
        first_ms, last_ms = pc.filter(first_ms, keep), pc.filter(last_ms, keep)
        n = int(good.sum())
        if n == 0:
            return pa.table({})
    first = np.asarray(first_ms.cast(pa.int64()).to_numpy(zero_copy_only=False)) * 1000
    last = np.asarray(last_ms.cast(pa.int64()).to_numpy(zero_copy_only=False)) * 1000
    last = _clamp_negative(first, last, path, stats)
    proto = _ints(col["pr"], np.int64)
    dp_text = pc.utf8_trim_whitespace(col["dp"])
    icmp = (proto == 1) | (proto == 58)
    sp = _ints(col["sp"], np.int64)
    parts = pc.split_pattern(dp_text, ".", max_splits=1)  # ICMP prints "type.code"
    dp = _ints(pc.list_element(parts, 0), np.int64)
    if icmp.any():
        sp, dp = np.where(icmp, dp, sp), np.where(icmp, _code(parts), dp)
    flags = np.zeros(n, np.int64)
    flg = pc.utf8_trim_whitespace(col["flg"])
    for pos, bit in _FLAG_BITS:
        ch = pc.utf8_slice_codeunits(flg, pos, pos + 1)
        on = pc.fill_null(pc.and_(pc.not_equal(ch, "."), pc.not_equal(ch, "")), False)
        flags |= np.where(np.asarray(on.to_numpy(zero_copy_only=False), bool), bit, 0)
    sysid = _ints(col["exp"], np.int64, -1)
    uniq = np.unique(sysid)
    ra = pc.utf8_trim_whitespace(col["ra"])
    exporter = np.asarray(ra.to_numpy(zero_copy_only=False), dtype=object)
    domain = np.full(n, -1, np.int64)
    sampling = np.ones(n, np.int64)
    for s in uniq.tolist():
        m = sysid == s
        if s in info.address:
            exporter[m] = info.address[s]
        if s in info.domain:
            domain[m] = info.domain[s]
        if info.interval.get(s, 0) > 1:
            sampling[m] = info.interval[s]
    if (sampling > 1).any():
        stats.count("sampled_records", int((sampling > 1).sum()))
    vlan = _ints(col["svln"], np.int64)
    cols = {
        "src_ip": pc.utf8_trim_whitespace(col["sa"]),
        "dst_ip": pc.utf8_trim_whitespace(col["da"]),
        "protocol": proto,
        "src_port": sp,
        "dst_port": dp,
        "first_seen": first,
        "last_seen": last,
        "src_packets": _ints(col["ipkt"], np.uint64),
        "src_bytes": _ints(col["ibyt"], np.uint64),
        "dst_packets": _ints(col["opkt"], np.uint64),
        "dst_bytes": _ints(col["obyt"], np.uint64),
        "tcp_flags_src": np.where(proto == 6, flags, 0),
        "vlan_id": np.where(vlan > 0, vlan, -1),
        "direction": "exporter",
        "sampling": sampling,
        "exporter": pa.array(exporter, pa.string()),
        "observation_domain": domain,
    }
    return flow_table(cols, source_kind="nfcapd", stats=stats)


def _code(parts: pa.Array) -> Any:
    """The text after the '.' of nfdump's ICMP "type.code" (or "0" when there is none)."""
    n = len(parts)
    lens = np.asarray(pc.list_value_length(parts).to_numpy(zero_copy_only=False))
    out = np.zeros(n, np.int64)
    idx = np.flatnonzero(lens > 1)
    if len(idx):
        sub = pc.list_element(parts.take(pa.array(idx)), 1)
        out[idx] = _ints(sub, np.int64)
    return out


__all__ = [
    "NFDUMP_HINT",
    "ExporterInfo",
    "check_nfcapd",
    "exporter_info",
    "iter_nfcapd_tables",
    "nfcapd_files",
    "nfdump_path",
]
