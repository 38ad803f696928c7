"""pair_unidirectional / iter_paired on literal record tables with known answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from flowaudit.flows.community_id import community_id
from flowaudit.records.common import flow_table, state_from_flags
from flowaudit.records.pairing import _packed, iter_paired, pair_unidirectional

S = 1_000_000  # µs per second
T0 = 1_700_000_000 * S


def recs(*rows: tuple[Any, ...], exporter: str = "192.0.2.1") -> pa.Table:
    """rows: (src, dst, proto, sport, dport, first_s, last_s, packets, bytes, flags)."""
    cols = list(zip(*rows, strict=True))
    return flow_table(
        {
            "src_ip": list(cols[0]), "dst_ip": list(cols[1]), "protocol": list(cols[2]),
            "src_port": list(cols[3]), "dst_port": list(cols[4]),
            "first_seen": [T0 + int(x * S) for x in cols[5]],
            "last_seen": [T0 + int(x * S) for x in cols[6]],
            "src_packets": list(cols[7]), "src_bytes": list(cols[8]),
            "tcp_flags_src": list(cols[9]), "direction": "exporter",
            "exporter": exporter, "observation_domain": [0] * len(rows),
        },
        source_kind="netflow9",
    )  # fmt: skip


A, B, C = "10.25.233.4", "10.25.233.5", "10.25.232.155"


def test_tcp_pair_initiator_is_earlier_record() -> None:
    t = recs(
        (B, A, 6, 6443, 51000, 10.2, 20, 8, 9000, 0x1B),  # the answer, listed first
        (A, B, 6, 51000, 6443, 10.0, 20, 10, 1200, 0x1B),
    )
    (r,) = pair_unidirectional(t).to_pylist()
    assert (r["src_ip"], r["dst_ip"], r["src_port"], r["dst_port"]) == (A, B, 51000, 6443)
    assert (r["src_packets"], r["src_bytes"], r["dst_packets"], r["dst_bytes"]) == (
        10,
        1200,
        8,
        9000,
    )
    assert (r["tcp_flags_src"], r["tcp_flags_dst"]) == (0x1B, 0x1B)
    assert r["state"] == "SF" and r["direction"] == "exporter"
    assert r["first_seen"].timestamp() == 1_700_000_010.0
    assert r["flow_id"] == community_id(A, B, 6, 51000, 6443)


def test_tie_service_port_side_is_responder() -> None:
    t = recs(
        (B, A, 17, 53, 40000, 5, 5, 1, 120, 0),
        (A, B, 17, 40000, 53, 5, 5, 1, 60, 0),
    )
    (r,) = pair_unidirectional(t).to_pylist()
    assert (r["src_ip"], r["dst_port"], r["src_bytes"], r["dst_bytes"]) == (A, 53, 60, 120)
    assert r["state"] == "SF"


def test_icmp_request_sender_is_initiator() -> None:
    # echo reply (type 0) starts earlier than the request (exporter clock skew)
    t = recs(
        (B, A, 1, 0, 0, 1.0, 1.0, 1, 84, 0),
        (A, B, 1, 8, 0, 1.5, 1.5, 1, 84, 0),
    )
    (r,) = pair_unidirectional(t).to_pylist()
    assert (r["src_ip"], r["src_port"], r["dst_port"]) == (A, 8, 0)


def test_no_pair_beyond_gap_and_other_exporter() -> None:
    t = recs(
        (A, B, 6, 51000, 443, 0, 1, 1, 60, 0x02),
        (B, A, 6, 443, 51000, 200, 201, 1, 40, 0x14),  # 199 s later: another conversation
    )
    out = pair_unidirectional(t)
    assert out.num_rows == 2
    assert out["state"].to_pylist() == ["S0", "OTH"]
    other = pa.concat_tables([
        recs((A, B, 6, 51000, 443, 0, 1, 1, 60, 0x02)),
        recs((B, A, 6, 443, 51000, 0, 1, 1, 40, 0x14), exporter="192.0.2.2"),
    ])  # fmt: skip
    assert pair_unidirectional(other).num_rows == 2


def test_active_timeout_slices_pair_in_order() -> None:
    t = recs(
        (A, B, 6, 51000, 443, 0, 60, 100, 10000, 0x1A),
        (B, A, 6, 443, 51000, 0.1, 60, 90, 90000, 0x1A),
        (A, B, 6, 51000, 443, 60, 120, 50, 5000, 0x1B),
        (B, A, 6, 443, 51000, 60.1, 120, 40, 40000, 0x1B),
    )
    out = pair_unidirectional(t).to_pylist()
    assert [(r["src_packets"], r["dst_packets"]) for r in out] == [(100, 90), (50, 40)]
    assert [r["state"] for r in out] == ["S1", "SF"]


def test_rejected_and_bidirectional_passthrough() -> None:
    t = recs(
        (A, C, 6, 40001, 22, 3, 3, 1, 60, 0x02),
        (C, A, 6, 22, 40001, 3, 3, 1, 40, 0x14),  # RST+ACK
    )
    (r,) = pair_unidirectional(t).to_pylist()
    assert r["state"] == "REJ" and r["src_ip"] == A
    both = t.set_column(t.schema.get_field_index("dst_packets"), t.schema.field("dst_packets"),
                        pa.array([1, 1], pa.uint64()))  # fmt: skip
    assert pair_unidirectional(both).num_rows == 2  # already bidirectional: untouched


def test_iter_paired_across_chunks_and_horizon() -> None:
    first = recs((A, B, 17, 40000, 53, 0, 0, 1, 60, 0))
    second = recs(
        (B, A, 17, 53, 40000, 0.01, 0.01, 1, 120, 0), (A, C, 17, 1, 2, 5000, 5000, 1, 1, 0)
    )
    out = pa.concat_tables(list(iter_paired([first, second])))
    assert out.num_rows == 2
    paired = [r for r in out.to_pylist() if r["dst_packets"] == 1]
    assert len(paired) == 1 and paired[0]["dst_port"] == 53
    # an unpaired record older than the horizon is emitted before the stream ends
    chunks = list(iter_paired([first, recs((A, C, 17, 1, 2, 5000, 5000, 1, 1, 0))], horizon_s=900))
    assert [c.num_rows for c in chunks] == [1, 1]


def test_state_from_flags_table() -> None:
    p = pa.array([6, 6, 6, 6, 6, 6, 6, 17, 17]).to_numpy()
    fs = pa.array([0x10, 0x02, 0x02, 0x13, 0x16, 0x1A, 0x02, 0, 0]).to_numpy()
    fd = pa.array([0x10, 0x00, 0x14, 0x13, 0x12, 0x16, 0x10, 0, 0]).to_numpy()
    dp = pa.array([1, 0, 1, 1, 1, 1, 1, 0, 1]).to_numpy()
    got = state_from_flags(p, fs, fd, dp).to_pylist()
    assert got == ["OTH", "S0", "REJ", "SF", "RSTO", "RSTR", "OTH", "S0", "SF"]


@pytest.mark.slow
def test_million_records_pair_each_record_with_its_reply() -> None:
    """A million records (500k client→:443 and their replies, 10 µs later) pair into 500k
    flows, each with one packet each way, oriented client → 443. (Speed is measured in
    benchmarks/bench_netflow.py, never here.)"""
    import numpy as np

    n = 500_000
    rng = np.random.default_rng(3)
    a = rng.integers(1, 1 << 24, n, dtype=np.uint64) | np.uint64(0xFFFF0A000000)
    sp = rng.integers(1024, 65535, n)
    t0 = np.arange(n, dtype=np.int64) * 1000 + T0
    cols = {
        "ip_version": np.full(2 * n, 4), "src_hi": np.zeros(2 * n, np.uint64),
        "dst_hi": np.zeros(2 * n, np.uint64),
        "src_lo": np.concatenate([a, np.full(n, 0xFFFF0A19E905, np.uint64)]),
        "dst_lo": np.concatenate([np.full(n, 0xFFFF0A19E905, np.uint64), a]),
        "protocol": np.full(2 * n, 6), "src_port": np.concatenate([sp, np.full(n, 443)]),
        "dst_port": np.concatenate([np.full(n, 443), sp]),
        "first_seen": np.concatenate([t0, t0 + 10]), "last_seen": np.concatenate([t0, t0]) + 99,
        "src_packets": np.ones(2 * n, np.uint64), "direction": "exporter",
    }  # fmt: skip
    t = flow_table(cols, source_kind="netflow9", flow_ids=False)
    out = pair_unidirectional(t)
    assert out.num_rows == n
    for col in ("src_packets", "dst_packets"):
        assert out.column(col).to_numpy().tolist() == [1] * n
    assert set(out.column("dst_port").to_pylist()) == {443}
    assert sorted(out.column("src_port").to_pylist()) == sorted(sp.tolist())


@pytest.mark.parametrize("seed", range(6))
def test_packed_keys_sort_and_compare_like_the_keys(seed: int) -> None:
    """``_packed`` (the pairing's sort keys in few uint64 words) orders rows exactly as
    the separate keys do, ties included, over narrow, wide, negative and constant keys."""
    rng = np.random.default_rng(seed)
    n = 5000
    u64 = np.iinfo(np.uint64).max
    keys = [
        rng.integers(0, 3, n).astype(np.int64),  # narrow (protocol-like)
        np.full(n, 7, np.int64),  # constant: dropped
        rng.choice(np.array([0, u64 - 5, u64], np.uint64), n),  # extreme uint64
        rng.integers(0xFFFF00000000, 0xFFFF00000000 + 40, n, dtype=np.uint64),  # IPv4-mapped
        rng.integers(-(1 << 62), 1 << 62, n).astype(np.int64) * rng.integers(0, 2, n),
        rng.integers(-1, 2, n).astype(np.int64),  # negative values (vlan −1)
    ]
    first = rng.integers(0, 10, n)
    words = _packed(keys)
    assert len(words) < len(keys)
    expect = np.lexsort((first, *keys[::-1]))
    got = np.lexsort((first, *words[::-1]))
    assert (expect == got).all()
    same_keys = np.ones(n - 1, bool)
    for k in keys:
        same_keys &= k[expect][1:] == k[expect][:-1]
    same_words = np.ones(n - 1, bool)
    for w in words:
        same_words &= w[got][1:] == w[got][:-1]
    assert (same_keys == same_words).all() and same_keys.any()
    # the time as the least significant key, packed with the others: the same order
    with_time = _packed([*keys, first])
    assert (np.lexsort(with_time[::-1]) == expect).all()
