"""Pair unidirectional exporter records into bidirectional flows (vectorised, numpy).

NetFlow v5/v9, most IPFIX exporters and nfcapd files carry one record per direction.
``pair_unidirectional(table)`` joins the two records of one conversation into one
FLOW_SCHEMA row; ``iter_paired(tables)`` does the same over a stream of tables with
bounded memory (unpaired records wait for their partner only within a time horizon).

Rules (for ARCHITECTURE.md):

* **Candidates** are rows with ``dst_packets == 0`` and ``dst_bytes == 0`` (records
  that already carry both directions, e.g. IPFIX biflows, pass through untouched).
* **Same conversation**: same exporter, observation domain, VLAN and protocol, and
  reversed endpoints (address, port) — for ICMP the ports are type/counterpart type as
  Community ID maps them, so an echo request record pairs with its reply record.
* **Time**: the later record must start no later than ``max_gap_s`` after the earlier
  one ends (overlapping or adjacent within the timeout).
* **Matching**: records of one conversation are sorted by start; two neighbours of
  opposite orientation that meet the time rule are paired, greedily from the earliest
  (so the active-timeout slices A1 B1 A2 B2 of a long flow give two flows). A record
  that finds no partner stays a unidirectional flow as the exporter oriented it.
* **Initiator**: an ICMP request type's sender; else the record that starts first;
  on a tie the record *from* a service port (port < 1024 or an approved-matrix port,
  ``flows.ports.service_port_mask``: the higher level) is the responder's, else the one
  from the lower port.
* **Output row**: tuple, flags, exporter and extensions from the initiator's record;
  ``dst_*`` counters, ``tcp_flags_dst`` and ``dst_ip_bytes`` from the reverse record;
  ``first_seen``/``last_seen`` span both; ``sampling`` the larger of the two;
  ``state`` recomputed from both flag sets (``records.state_from_flags``);
  ``direction`` = ``exporter``. ``flow_id`` is unchanged (Community ID is symmetric).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flowaudit._util import arrow as _arrow
from flowaudit.flows.ports import service_port_mask
from flowaudit.kernels.icmp import ICMP4_REQUESTS, ICMP6_REQUESTS
from flowaudit.records.common import halves, state_from_flags, take_rows
from flowaudit.schema import TS, empty_flows, validate_flows

DEFAULT_MAX_GAP_S = 60.0
DEFAULT_HORIZON_S = 900.0

_REQ4 = np.zeros(256, bool)
_REQ4[list(ICMP4_REQUESTS)] = True
_REQ6 = np.zeros(256, bool)
_REQ6[list(ICMP6_REQUESTS)] = True

I64 = npt.NDArray[np.int64]


def _ints(col: pa.ChunkedArray, fill: int = -1) -> I64:
    return _arrow.int_values(col, fill)


def _us(col: pa.ChunkedArray) -> I64:
    return _arrow.int_values(col, 0)


def _packed(keys: list[npt.NDArray[np.integer]]) -> list[npt.NDArray[np.uint64]]:
    """Sort keys (most significant first) packed into as few uint64 words as their value
    ranges allow, in the same order: each key minus its minimum, constant keys dropped,
    neighbours sharing a word while their bits fit. Sorting or comparing the words is
    sorting or comparing the keys (the packing is order-preserving and one-to-one), with
    fewer passes: IPv4 records of one exporter need two or three words instead of seven."""
    words: list[npt.NDArray[np.uint64]] = []
    cur: npt.NDArray[np.uint64] | None = None
    used = 0
    for k in keys:
        if len(k) == 0:
            continue
        lo, hi = int(k.min()), int(k.max())
        bits = (hi - lo).bit_length()
        if bits == 0:
            continue
        # (k − lo) mod 2^64 is the exact offset: 0 <= k − lo < 2^64
        v = k.astype(np.uint64) - np.uint64(lo % (1 << 64))
        if cur is not None and used + bits <= 64:
            cur = (cur << np.uint64(bits)) | v
            used += bits
        else:
            if cur is not None:
                words.append(cur)
            cur, used = v, bits
    if cur is not None:
        words.append(cur)
    return words


def _match(
    table: pa.Table, max_gap_s: float, svc: npt.NDArray[np.uint8]
) -> tuple[I64, I64, npt.NDArray[np.bool_]]:
    """(initiator rows, reverse rows, candidate mask) of the pairs found in ``table``."""
    empty = np.zeros(0, np.int64)
    cand = (_ints(table["dst_packets"], 0) == 0) & (_ints(table["dst_bytes"], 0) == 0)
    idx = np.flatnonzero(cand)
    if len(idx) < 2:
        return empty, empty, cand
    need = ["src_addr", "dst_addr", "src_port", "dst_port", "protocol", "exporter"]
    need += ["observation_domain", "vlan_id", "first_seen", "last_seen"]
    t = table.select(need)
    if len(idx) < table.num_rows:
        t = t.take(_arrow.ints(pa.int64(), idx))
    shi, slo = halves(t["src_addr"])
    dhi, dlo = halves(t["dst_addr"])
    sp, dp = _ints(t["src_port"], 0), _ints(t["dst_port"], 0)
    proto = _ints(t["protocol"])
    fwd = (shi < dhi) | ((shi == dhi) & (slo < dlo)) | ((shi == dhi) & (slo == dlo) & (sp <= dp))
    ahi, alo, ap = np.where(fwd, shi, dhi), np.where(fwd, slo, dlo), np.where(fwd, sp, dp)
    bhi, blo, bp = np.where(fwd, dhi, shi), np.where(fwd, dlo, slo), np.where(fwd, dp, sp)
    exporter = pc.dictionary_encode(t["exporter"]).combine_chunks()
    exp = _arrow.int_values(exporter.indices, -1)
    if (exp < 0).any():  # null exporter: grouped with "" (fill_null imports pandas)
        names = exporter.dictionary.to_pylist()
        exp[exp < 0] = names.index("") if "" in names else len(names)
    dom = _ints(t["observation_domain"])
    vlan = _ints(t["vlan_id"])
    first, last = _us(t["first_seen"]), _us(t["last_seen"])
    k1 = (exp << 32) | ((vlan + 1) << 16) | proto  # exporter index < 2^31, vlan < 4096
    ports = (ap << 16) | bp
    words = _packed([k1, dom, ahi, alo, bhi, blo, ports])
    # = lexsort((first, ports, blo, …, k1)); first shares the last word when its bits fit
    by = _packed([k1, dom, ahi, alo, bhi, blo, ports, first])
    order = np.lexsort(by[::-1]) if by else np.arange(len(first))
    same = np.ones(len(order) - 1, bool)
    for k in words:
        ks = k[order]
        same &= ks[1:] == ks[:-1]
    f_o = fwd[order]
    first_o, last_o = first[order], last[order]
    gap = round(max_gap_s * 1e6)
    ok = same & (f_o[1:] != f_o[:-1]) & (first_o[1:] <= last_o[:-1] + gap)
    # greedy from the left: in each run of consecutive candidate links, take every other
    pos = np.arange(len(ok))
    start = np.where(ok & ~np.concatenate([[False], ok[:-1]]), pos, 0)
    start = np.maximum.accumulate(start)
    take = ok & ((pos - start) % 2 == 0)
    a = order[:-1][take]
    b = order[1:][take]
    # initiator: ICMP request sender; else earlier start; tie → responder from service port
    is_req = np.where(proto == 1, _REQ4[np.clip(sp, 0, 255)], _REQ6[np.clip(sp, 0, 255)])
    is_req &= (proto == 1) | (proto == 58)
    a_first = first[a] < first[b]
    tie = first[a] == first[b]
    has_ports = (proto[a] == 6) | (proto[a] == 17) | (proto[a] == 132)
    a_svc, b_svc = svc[sp[a]], svc[sp[b]]
    tie_a = np.where(a_svc != b_svc, b_svc > a_svc, sp[a] >= sp[b]) & has_ports
    a_init = np.where(is_req[a] != is_req[b], is_req[a], a_first | (tie & tie_a))
    init = np.where(a_init, a, b)
    rev = np.where(a_init, b, a)
    return idx[init], idx[rev], cand


def _merge(table: pa.Table, init: I64, rev: I64) -> pa.Table:
    i_rows = take_rows(table, init)
    r_cols = ["src_packets", "src_bytes", "tcp_flags_src", "src_ip_bytes", "first_seen"]
    r_rows = table.select([*r_cols, "last_seen", "sampling"]).take(_arrow.ints(pa.int64(), rev))
    cols = {name: i_rows[name] for name in table.column_names}
    cols["dst_packets"] = r_rows["src_packets"]
    cols["dst_bytes"] = r_rows["src_bytes"]
    cols["tcp_flags_dst"] = r_rows["tcp_flags_src"]
    cols["dst_ip_bytes"] = r_rows["src_ip_bytes"]
    first = np.minimum(_us(i_rows["first_seen"]), _us(r_rows["first_seen"]))
    last = np.maximum(_us(i_rows["last_seen"]), _us(r_rows["last_seen"]))
    cols["first_seen"] = _arrow.ints(TS, first)
    cols["last_seen"] = _arrow.ints(TS, last)
    cols["sampling"] = pc.max_element_wise(i_rows["sampling"], r_rows["sampling"])
    cols["state"] = state_from_flags(
        _ints(i_rows["protocol"]),
        _ints(i_rows["tcp_flags_src"], 0),
        _ints(r_rows["tcp_flags_src"], 0),
        _ints(r_rows["src_packets"], 0),
    )
    cols["direction"] = _arrow.constant("exporter", len(init))
    return pa.Table.from_arrays(list(cols.values()), names=list(cols))


def _pair(
    table: pa.Table, max_gap_s: float, svc: npt.NDArray[np.uint8]
) -> tuple[pa.Table, pa.Table]:
    """(rows final now: pairs and bidirectional records, unpaired candidates)."""
    table = validate_flows(table)
    init, rev = np.zeros(0, np.int64), np.zeros(0, np.int64)
    if table.num_rows >= 2:
        init, rev, cand = _match(table, max_gap_s, svc)
    else:
        cand = (_ints(table["dst_packets"], 0) == 0) & (_ints(table["dst_bytes"], 0) == 0)
    used = np.zeros(table.num_rows, bool)
    used[init] = True
    used[rev] = True
    merged = validate_flows(_merge(table, init, rev))
    passthrough = table.filter(_arrow.bools(~cand))
    unpaired = table.filter(_arrow.bools(cand & ~used))
    done = pa.concat_tables([merged, passthrough])
    return done, unpaired


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([("first_seen", "ascending"), ("flow_id", "ascending")])


def pair_unidirectional(
    table: pa.Table,
    *,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    service_ports: Sequence[int | tuple[int, int]] = (),
) -> pa.Table:
    """Pair the unidirectional records of ``table`` (FLOW_SCHEMA) into bidirectional flows.

    Returns a FLOW_SCHEMA table sorted by (first_seen, flow_id): pairs, records that were
    already bidirectional, and the records that found no partner. ``service_ports``
    (besides the well-known ones) decide the initiator of a pair that started at once.
    """
    if table.num_rows == 0:
        return empty_flows()
    done, unpaired = _pair(table, max_gap_s, service_port_mask(service_ports))
    return _sorted(pa.concat_tables([done, unpaired]))


def iter_paired(
    tables: Iterable[pa.Table],
    *,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    horizon_s: float = DEFAULT_HORIZON_S,
    sort: bool = True,
    service_ports: Sequence[int | tuple[int, int]] = (),
) -> Iterator[pa.Table]:
    """Stream version of ``pair_unidirectional`` with bounded memory.

    A record without a partner is held back while its ``last_seen`` is within
    ``horizon_s`` of the newest ``last_seen`` seen so far (exporters send a record when
    the flow ends or its active timeout fires, so a partner arrives within that window);
    older ones are emitted unpaired. Empty tables are never yielded. Each table is sorted
    by (first_seen, flow_id) unless ``sort`` is False.
    """
    svc = service_port_mask(service_ports)
    carry = empty_flows()
    newest: int | None = None
    horizon = round(horizon_s * 1e6)
    for table in tables:
        if table.num_rows == 0:
            continue
        table = validate_flows(table)
        top = int(_us(table["last_seen"]).max())
        newest = top if newest is None else max(newest, top)
        # one chunk per column: a take from two chunks costs several times one from one
        both = pa.concat_tables([carry, table]).combine_chunks() if carry.num_rows else table
        done, unpaired = _pair(both, max_gap_s, svc)
        keep = _us(unpaired["last_seen"]) >= newest - horizon
        carry = unpaired.filter(_arrow.bools(keep))
        out = pa.concat_tables([done, unpaired.filter(_arrow.bools(~keep))])
        if out.num_rows:
            yield _sorted(out) if sort else out
    if carry.num_rows:
        yield _sorted(carry) if sort else carry


__all__ = ["DEFAULT_HORIZON_S", "DEFAULT_MAX_GAP_S", "iter_paired", "pair_unidirectional"]
